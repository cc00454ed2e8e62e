//! Locks across processes: exclusion under contention, the blocking families, re-entrance, and a
//! holder's death (SIGKILL mid-update) reported as `OwnerDied` instead of a deadlock.

multiproc::test_support!();

mod common;

use std::time::{Duration, Instant};

use common::{DEADLINE, join, park_forever, sigkill};
use multiproc::{
    AcquireError, AcquireTimeoutError, Event, JoinError, Lock, Process, RLock, ReleaseError,
    ShmSafe, Value,
};

/// A pair that the lock keeps equal; a holder killed between the two writes leaves it unequal.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C)]
struct Pair {
    a: u64,
    b: u64,
}

#[allow(unsafe_code)] // ShmSafe is an unsafe trait; the SAFETY lines say why it holds
// SAFETY: repr(C), two integers.
unsafe impl ShmSafe for Pair {}

#[test]
fn a_lock_excludes_across_processes_exact_total() {
    const PROCESSES: u64 = 4;
    const EACH: u64 = 20_000;
    let pair = Value::new(Pair::default()).unwrap();
    let workers: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Process::spawn(pair.clone(), |pair: Value<Pair>| {
                for _ in 0..EACH {
                    let mut guard = pair.lock().expect("nobody dies here");
                    // Two separate writes: without exclusion, increments are lost and a != b.
                    let next = guard.a + 1;
                    guard.a = next;
                    std::hint::black_box(&mut *guard);
                    guard.b = next;
                }
            })
            .unwrap()
        })
        .collect();
    for worker in workers {
        join(worker);
    }
    assert_eq!(
        pair.get(),
        Pair {
            a: PROCESSES * EACH,
            b: PROCESSES * EACH
        }
    );
}

#[test]
fn fetch_add_is_exact_without_the_lock() {
    let counter = Value::new(0u64).unwrap();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            Process::spawn(counter.clone(), |c: Value<u64>| {
                for _ in 0..50_000 {
                    c.fetch_add(1);
                }
            })
            .unwrap()
        })
        .collect();
    for worker in workers {
        join(worker);
    }
    assert_eq!(counter.get(), 200_000);
    assert_eq!(counter.compare_exchange(200_000, 7), Ok(200_000));
    assert_eq!(counter.compare_exchange(200_000, 8), Err(7));
}

/// Starts a child that takes `lock` (through `take`), sets `holding`, and parks.
fn holder_of<A: serde::Serialize + serde::de::DeserializeOwned>(
    args: A,
    take: fn(A),
) -> Process<()> {
    Process::spawn(args, take).unwrap()
}

#[test]
fn a_value_whose_holder_is_killed_mid_update_reports_owner_died_and_recovers() {
    let pair = Value::new(Pair::default()).unwrap();
    let holding = Event::new().unwrap();
    let mut holder = holder_of(
        (pair.clone(), holding.clone()),
        |(pair, holding): (Value<Pair>, Event)| {
            let mut guard = pair.lock().expect("free");
            guard.a = 1; // half of the update
            holding.set();
            park_forever()
        },
    );
    holding
        .wait_timeout(DEADLINE)
        .expect("holder never took the lock");
    sigkill(holder.pid());
    assert!(matches!(
        holder.join_timeout(DEADLINE),
        Err(JoinError::Signaled { signal: 9 })
    ));

    match pair.lock_timeout(DEADLINE) {
        Err(AcquireTimeoutError::OwnerDied(mut guard)) => {
            assert_eq!(
                *guard,
                Pair { a: 1, b: 0 },
                "the dead holder's half update is visible"
            );
            guard.b = 1; // repair
            guard.mark_consistent();
        }
        Err(e) => panic!("expected OwnerDied, got {e:?}"),
        Ok(_) => panic!("expected OwnerDied, got a clean lock"),
    }
    // Repaired and marked: usable again.
    assert_eq!(*pair.lock().expect("consistent again"), Pair { a: 1, b: 1 });
}

#[test]
fn a_holder_that_panics_mid_update_is_taken_for_dead_while_its_process_lives() {
    // Issue "Thirteen ways to break it", item 9: Rust's Mutex poisons here; so do we, by the
    // OwnerDied path. The holder's process catches its panic and lives on.
    let pair = Value::new(Pair::default()).unwrap();
    let lock = Lock::new().unwrap();
    let rlock = RLock::new().unwrap();
    let panicked = Event::new().unwrap();
    let holder = holder_of(
        (pair.clone(), lock.clone(), rlock.clone(), panicked.clone()),
        |(pair, lock, rlock, panicked): (Value<Pair>, Lock, RLock, Event)| {
            let _ = std::panic::catch_unwind(|| {
                let mut guard = pair.lock().expect("free");
                guard.a = 1; // half of the update
                panic!("in the middle of the update");
            });
            let _ = std::panic::catch_unwind(|| {
                let _held = lock.acquire().expect("free");
                panic!("holding the lock");
            });
            let _ = std::panic::catch_unwind(|| {
                let _outer = rlock.acquire().expect("free");
                let _inner = rlock.acquire().expect("re-entrant");
                panic!("holding the recursive lock twice");
            });
            panicked.set();
            park_forever()
        },
    );
    panicked
        .wait_timeout(DEADLINE)
        .expect("the holder panicked three times");
    assert!(!lock.is_locked(), "abandoned: free for the next taker");
    match pair.lock_timeout(DEADLINE) {
        Err(AcquireTimeoutError::OwnerDied(mut guard)) => {
            assert_eq!(*guard, Pair { a: 1, b: 0 }, "the half update is visible");
            guard.b = 1;
            guard.mark_consistent();
        }
        Err(e) => panic!("expected OwnerDied, got {e:?}"),
        Ok(_) => panic!("expected OwnerDied, got a clean lock: the panic went unnoticed"),
    }
    assert_eq!(*pair.lock().expect("repaired"), Pair { a: 1, b: 1 });
    match lock.acquire_timeout(DEADLINE) {
        Err(AcquireTimeoutError::OwnerDied(guard)) => guard.mark_consistent(),
        other => panic!("expected OwnerDied, got {:?}", other.map(drop)),
    }
    drop(lock.acquire().expect("repaired"));
    match rlock.acquire_timeout(DEADLINE) {
        Err(AcquireTimeoutError::OwnerDied(guard)) => guard.mark_consistent(),
        other => panic!("expected OwnerDied, got {:?}", other.map(drop)),
    }
    drop(rlock.acquire().expect("repaired"));
    holder.kill().unwrap();
}

#[test]
fn a_lock_left_unrepaired_becomes_not_recoverable() {
    let lock = Lock::new().unwrap();
    let holding = Event::new().unwrap();
    let mut holder = holder_of(
        (lock.clone(), holding.clone()),
        |(lock, holding): (Lock, Event)| {
            let _guard = lock.acquire().expect("free");
            holding.set();
            park_forever()
        },
    );
    holding
        .wait_timeout(DEADLINE)
        .expect("the holder took the lock");
    holder.kill().unwrap();
    let _ = holder.join_timeout(DEADLINE);
    let err = lock.acquire().expect_err("the holder died");
    assert!(err.is_owner_died(), "{err:?}");
    drop(err); // releases the lock without mark_consistent
    assert!(matches!(lock.acquire(), Err(AcquireError::NotRecoverable)));
    assert!(matches!(
        lock.try_acquire(),
        Err(AcquireTimeoutError::NotRecoverable)
    ));
}

#[test]
fn an_rlock_whose_holder_is_killed_reports_owner_died() {
    let lock = RLock::new().unwrap();
    let holding = Event::new().unwrap();
    let mut holder = holder_of(
        (lock.clone(), holding.clone()),
        |(lock, holding): (RLock, Event)| {
            let _outer = lock.acquire().expect("free");
            let _inner = lock.acquire().expect("re-entered");
            holding.set();
            park_forever()
        },
    );
    holding
        .wait_timeout(DEADLINE)
        .expect("the holder took the lock");
    holder.kill().unwrap();
    let _ = holder.join_timeout(DEADLINE);
    let guard = lock
        .acquire()
        .expect_err("the holder died")
        .into_guard()
        .expect("OwnerDied carries the guard");
    guard.mark_consistent();
    assert_eq!(lock.depth(), 1, "the dead holder's depth is not inherited");
    drop(guard);
    assert_eq!(lock.depth(), 0);
    drop(lock.acquire().expect("clean after repair"));
}

#[test]
fn try_and_timeout_forms_see_another_process_holding() {
    let lock = Lock::new().unwrap();
    let holding = Event::new().unwrap();
    let release = Event::new().unwrap();
    let holder = Process::spawn(
        (lock.clone(), holding.clone(), release.clone()),
        |(lock, holding, release): (Lock, Event, Event)| {
            let _guard = lock.acquire().expect("free");
            holding.set();
            release.wait_timeout(DEADLINE).is_ok()
        },
    )
    .unwrap();
    holding
        .wait_timeout(DEADLINE)
        .expect("the holder took the lock");
    assert!(lock.is_locked());
    assert!(matches!(
        lock.try_acquire(),
        Err(AcquireTimeoutError::Timeout)
    ));
    let t0 = Instant::now();
    assert!(matches!(
        lock.acquire_timeout(Duration::from_millis(50)),
        Err(AcquireTimeoutError::Timeout)
    ));
    assert!(t0.elapsed() >= Duration::from_millis(50));
    release.set();
    assert!(join(holder), "the holder was released by the event");
    drop(lock.acquire_timeout(DEADLINE).expect("free again"));
}

#[test]
fn an_rlock_is_reentrant_and_refuses_release_by_a_non_holder() {
    let lock = RLock::new().unwrap();
    let a = lock.acquire().expect("free");
    let b = lock.try_acquire().expect("re-entrant for this thread");
    assert_eq!(lock.depth(), 2);
    // Another thread of this process does not hold it.
    let other = lock.clone();
    let (released, tried) =
        std::thread::spawn(move || (other.release(), other.try_acquire().is_err()))
            .join()
            .unwrap();
    assert_eq!(released, Err(ReleaseError::NotOwner));
    assert!(
        tried,
        "another thread cannot take it while this one holds it"
    );
    // Another process neither.
    let outcome = join(
        Process::spawn(lock.clone(), |lock: RLock| {
            (lock.release(), lock.try_acquire().is_err())
        })
        .unwrap(),
    );
    assert_eq!(outcome, (Err(ReleaseError::NotOwner), true));
    drop(b);
    drop(a);
    assert_eq!(lock.depth(), 0);
    // Python style: forget the guard, release by hand.
    std::mem::forget(lock.acquire().expect("free"));
    assert_eq!(lock.release(), Ok(()));
    assert_eq!(lock.release(), Err(ReleaseError::NotOwner));
}
