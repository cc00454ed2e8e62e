//! Semaphores, events, conditions and barriers across processes, with the errors CPython has
//! where they are sound. Several cases follow CPython's `_TestSemaphore`, `_TestEvent`,
//! `_TestCondition` and `_TestBarrier`.
//!
//! Children wait without a timeout where a wake-up is expected: a lost wake-up then fails the
//! parent's join deadline, instead of passing late when a child's own timeout expires.

multiproc::test_support!();

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{DEADLINE, join};
use multiproc::{
    Barrier, BarrierTimeoutError, BoundedSemaphore, BrokenBarrier, Condition, Event, Process,
    ReleaseError, Semaphore, Timeout, Value, WaitTimeoutError,
};

#[test]
fn a_semaphore_counts_across_processes() {
    let sem = Semaphore::new(0).unwrap();
    let taken = Process::spawn(sem.clone(), |sem: Semaphore| {
        (0..3)
            .filter(|_| sem.acquire_timeout(Duration::from_secs(30)).is_ok())
            .count()
    })
    .unwrap();
    for _ in 0..3 {
        sem.release().unwrap();
    }
    assert_eq!(
        join(taken),
        3,
        "the child took the three units released here"
    );
    assert_eq!(sem.value(), 0);
    assert_eq!(sem.try_acquire(), Err(Timeout));
    let t0 = Instant::now();
    assert_eq!(sem.acquire_timeout(Duration::from_millis(50)), Err(Timeout));
    assert!(t0.elapsed() >= Duration::from_millis(50));
}

#[test]
fn a_bounded_semaphore_refuses_a_release_past_its_bound() {
    let sem = BoundedSemaphore::new(2).unwrap();
    sem.acquire();
    let child = Process::spawn(sem.clone(), |sem: BoundedSemaphore| {
        (sem.release(), sem.release())
    })
    .unwrap();
    assert_eq!(join(child), (Ok(()), Err(ReleaseError::TooManyReleases)));
    assert_eq!(sem.value(), 2);
}

#[test]
fn an_event_wakes_every_waiting_process() {
    let event = Event::new().unwrap();
    let arrived = Semaphore::new(0).unwrap();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            Process::spawn(
                (event.clone(), arrived.clone()),
                |(event, arrived): (Event, Semaphore)| {
                    arrived.release().unwrap();
                    event.wait();
                    event.is_set()
                },
            )
            .unwrap()
        })
        .collect();
    for _ in 0..3 {
        arrived
            .acquire_timeout(DEADLINE)
            .expect("every waiter arrived");
    }
    event.set();
    for waiter in waiters {
        assert!(join(waiter), "a waiter saw the event set");
    }
    event.clear();
    assert!(!event.is_set());
    let t0 = Instant::now();
    assert_eq!(event.wait_timeout(Duration::from_millis(50)), Err(Timeout));
    assert!(t0.elapsed() >= Duration::from_millis(50));
}

#[test]
fn a_condition_carries_notifications_between_processes() {
    // Two children wait until the counter reaches 3; the parent raises it one step at a time.
    let cond = Condition::new().unwrap();
    let counter = Value::new(0u32).unwrap();
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            Process::spawn(
                (cond.clone(), counter.clone()),
                |(cond, counter): (Condition, Value<u32>)| {
                    let mut guard = cond.acquire().expect("nobody died");
                    guard.wait_while(|| counter.get() < 3).expect("nobody died");
                    counter.get()
                },
            )
            .unwrap()
        })
        .collect();
    for _ in 0..3 {
        let _guard = cond.acquire().expect("nobody died");
        counter.fetch_add(1);
        cond.notify_all();
    }
    for waiter in waiters {
        assert_eq!(join(waiter), 3, "each waiter saw the counter reach 3");
    }
}

#[test]
fn notify_one_wakes_one_waiter_at_a_time() {
    let cond = Condition::new().unwrap();
    let tickets = Value::new(0u32).unwrap();
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            Process::spawn(
                (cond.clone(), tickets.clone()),
                |(cond, tickets): (Condition, Value<u32>)| {
                    let mut guard = cond.acquire().expect("nobody died");
                    guard
                        .wait_while(|| tickets.get() == 0)
                        .expect("nobody died");
                    tickets.fetch_add(u32::MAX); // take a ticket (wrapping -1)
                },
            )
            .unwrap()
        })
        .collect();
    for _ in 0..2 {
        let _guard = cond.acquire().expect("nobody died");
        tickets.fetch_add(1);
        cond.notify_one();
    }
    for waiter in waiters {
        join(waiter);
    }
    assert_eq!(tickets.get(), 0, "each waiter took one ticket");
}

#[test]
fn a_condition_wait_times_out_holding_the_lock_again() {
    let cond = Condition::new().unwrap();
    let mut guard = cond.acquire().expect("free");
    let t0 = Instant::now();
    assert_eq!(
        guard.wait_timeout(Duration::from_millis(50)),
        Err(WaitTimeoutError::Timeout)
    );
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert!(
        cond.try_acquire().is_err(),
        "the lock is held again after the wait"
    );
    drop(guard);
    assert!(cond.try_acquire().is_ok());
}

#[test]
fn a_barrier_releases_all_parties_with_distinct_indices() {
    const PARTIES: usize = 4;
    let barrier = Barrier::new(PARTIES).unwrap();
    let workers: Vec<_> = (1..PARTIES)
        .map(|_| Process::spawn(barrier.clone(), |b: Barrier| b.wait()).unwrap())
        .collect();
    let mine = barrier.wait_timeout(DEADLINE).expect("everybody arrived");
    let mut indices: BTreeSet<usize> = workers
        .into_iter()
        .map(|w| join(w).expect("passed"))
        .collect();
    indices.insert(mine);
    assert_eq!(
        indices,
        (0..PARTIES).collect(),
        "each party had its own index"
    );
    // Reusable: a second round.
    let again: Vec<_> = (1..PARTIES)
        .map(|_| Process::spawn(barrier.clone(), |b: Barrier| b.wait()).unwrap())
        .collect();
    barrier.wait_timeout(DEADLINE).expect("second round");
    again.into_iter().for_each(|w| assert!(join(w).is_ok()));
}

#[test]
fn abort_breaks_a_barrier_for_waiters_and_later_arrivals_until_reset() {
    let barrier = Barrier::new(3).unwrap();
    let waiter = Process::spawn(barrier.clone(), |b: Barrier| b.wait()).unwrap();
    let deadline = Instant::now() + DEADLINE;
    while barrier.n_waiting() < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(barrier.n_waiting(), 1);
    barrier.abort();
    assert_eq!(join(waiter), Err(BrokenBarrier));
    assert!(barrier.is_broken());
    assert_eq!(barrier.wait(), Err(BrokenBarrier), "broken until reset");
    barrier.reset();
    assert!(!barrier.is_broken());
    let pair = Barrier::new(2).unwrap();
    let other = Process::spawn(pair.clone(), |b: Barrier| b.wait()).unwrap();
    assert!(pair.wait_timeout(DEADLINE).is_ok());
    assert!(join(other).is_ok());
}

#[test]
fn a_timeout_breaks_the_barrier_and_reset_fails_current_waiters() {
    let barrier = Barrier::new(2).unwrap();
    let t0 = Instant::now();
    assert_eq!(
        barrier.wait_timeout(Duration::from_millis(50)),
        Err(BarrierTimeoutError::Timeout)
    );
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert!(barrier.is_broken());
    barrier.reset();

    let waiter = Process::spawn(barrier.clone(), |b: Barrier| b.wait()).unwrap();
    let deadline = Instant::now() + DEADLINE;
    while barrier.n_waiting() < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    barrier.reset();
    assert_eq!(
        join(waiter),
        Err(BrokenBarrier),
        "a reset fails the current waiters"
    );
    assert!(!barrier.is_broken(), "and leaves the barrier whole");
}

#[test]
fn a_dead_party_breaks_the_barrier_for_those_waiting_and_those_to_come() {
    let barrier = Barrier::new(3).unwrap();
    let arrived = |n: usize| {
        let deadline = Instant::now() + DEADLINE;
        while barrier.n_waiting() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(barrier.n_waiting(), n);
    };
    // Killed while waiting, with a survivor waiting beside it.
    let victim = Process::spawn(barrier.clone(), |b: Barrier| b.wait()).unwrap();
    arrived(1);
    let survivor = Process::spawn(barrier.clone(), |b: Barrier| b.wait_timeout(DEADLINE)).unwrap();
    arrived(2);
    common::sigkill(victim.pid());
    assert!(common::join_result(victim).is_err(), "the victim died");
    assert_eq!(
        join(survivor),
        Err(BarrierTimeoutError::Broken),
        "the survivor is told, long before its deadline"
    );
    assert!(barrier.is_broken());
    assert_eq!(
        barrier.wait_timeout(DEADLINE),
        Err(BarrierTimeoutError::Broken),
        "a third arrival does not pass"
    );
    // Killed while waiting alone: the next to arrive finds it dead.
    barrier.reset();
    let victim = Process::spawn(barrier.clone(), |b: Barrier| b.wait()).unwrap();
    arrived(1);
    common::sigkill(victim.pid());
    assert!(common::join_result(victim).is_err(), "the victim died");
    assert_eq!(
        barrier.wait_timeout(DEADLINE),
        Err(BarrierTimeoutError::Broken)
    );
    // Whole again after a reset: three live parties pass.
    barrier.reset();
    let others: Vec<_> = (0..2)
        .map(|_| Process::spawn(barrier.clone(), |b: Barrier| b.wait()).unwrap())
        .collect();
    assert!(barrier.wait_timeout(DEADLINE).is_ok());
    for other in others {
        assert!(join(other).is_ok());
    }
}
