//! The waiting objects' suite, one source for every backend: locks and recursive locks (a dead
//! holder's lock is the next taker's, who is told), semaphores, conditions, events, barriers (a
//! dead party breaks it) and queues (joinable or not) across processes, as `manager_sync.rs` runs it on a
//! manager process and `redis.rs` on a real redis-server. The file that includes it gives
//! `backend::manager()`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use multiproc::{
    BarrierProxy, BoundedSemaphoreProxy, ConditionProxy, DictProxy, ErrorCode, EventProxy,
    JoinableQueueProxy, LockProxy, ManagerError, Process, QueueProxy, RLockProxy, ValueProxy,
};

use super::backend::manager;
use crate::common::{DEADLINE, join, park_forever, refused, sigkill, wait_until};

/// A local queue on which children say that they got somewhere.
type Signal = multiproc::Queue<u32>;

#[test]
fn a_manager_lock_excludes_across_processes() {
    let manager = manager();
    let lock = manager.lock().unwrap();
    let d = manager.dict::<String, i64>().unwrap();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            Process::spawn(
                (lock.clone(), d.clone()),
                |(lock, d): (LockProxy, DictProxy<String, i64>)| {
                    let key = "n".to_string();
                    for _ in 0..100 {
                        let _held = lock.acquire().unwrap();
                        let n = d.get(&key).unwrap().unwrap_or(0);
                        d.insert(&key, n + 1).unwrap(); // read then write, safe under the lock
                    }
                },
            )
            .unwrap()
        })
        .collect();
    for w in workers {
        join(w);
    }
    assert_eq!(d.get("n").unwrap(), Some(400));
    let held = lock.acquire().unwrap();
    let other = lock.clone();
    assert!(matches!(other.try_acquire(), Err(ManagerError::Timeout)));
    assert!(
        other
            .acquire_timeout(Duration::from_millis(50))
            .unwrap_err()
            .is_timeout()
    );
    assert!(lock.is_locked().unwrap());
    drop(held);
    assert!(other.try_acquire().is_ok());
}

#[test]
fn a_manager_queue_carries_items_between_processes_with_bounds_and_timeouts() {
    let manager = manager();
    let q = manager.queue::<String>().unwrap();
    let producer = Process::spawn(q.clone(), |q: QueueProxy<String>| {
        for i in 0..50 {
            q.put(format!("item {i}")).unwrap();
        }
    })
    .unwrap();
    for i in 0..50 {
        assert_eq!(q.get().unwrap(), format!("item {i}"));
    }
    join(producer);
    assert!(q.is_empty().unwrap());
    let started = Instant::now();
    assert!(matches!(
        q.get_timeout(Duration::from_millis(50)),
        Err(ManagerError::Empty)
    ));
    assert!(started.elapsed() >= Duration::from_millis(50));

    let bounded = manager.queue_bounded::<u32>(1).unwrap();
    bounded.put(1).unwrap();
    assert!(matches!(
        bounded.put_timeout(2, Duration::from_millis(50)),
        Err(ManagerError::Full)
    ));
    assert!(bounded.is_full().unwrap());
    assert_eq!(bounded.max_items().unwrap(), Some(1));
    // A getter in another process makes room.
    let getter = Process::spawn(bounded.clone(), |q: QueueProxy<u32>| q.get().unwrap()).unwrap();
    bounded.put_timeout(2, DEADLINE).expect("room came");
    assert_eq!(join(getter), 1);
    assert_eq!(bounded.len().unwrap(), 1);
}

#[test]
fn a_recursive_lock_is_taken_again_by_its_handle_and_excludes_the_others() {
    let manager = manager();
    let lock = manager.rlock().unwrap();
    let first = lock.acquire().unwrap();
    let second = lock.acquire().unwrap();
    let other = lock.clone();
    assert_eq!(lock.depth().unwrap(), 2);
    assert_eq!(other.depth().unwrap(), 0);
    assert!(other.try_acquire().unwrap_err().is_timeout());
    drop(second);
    assert!(other.try_acquire().is_err(), "still held once");
    drop(first);
    assert!(other.try_acquire().is_ok());

    // A holder that dies: released, and the next taker told.
    let taken = Signal::new().unwrap();
    let mut holder = Process::spawn(
        (lock.clone(), taken.clone()),
        |(lock, taken): (RLockProxy, Signal)| -> () {
            let _once = lock.acquire().unwrap();
            let _twice = lock.acquire().unwrap();
            taken.put(1).unwrap();
            park_forever()
        },
    )
    .unwrap();
    taken.get_timeout(DEADLINE).unwrap();
    sigkill(holder.pid());
    let _ = holder.join_timeout(DEADLINE);
    let guard = lock.acquire_timeout(DEADLINE).expect("released");
    assert!(guard.owner_died());
}

#[test]
fn a_bounded_semaphore_admits_at_most_its_value_across_processes() {
    let manager = manager();
    let slots = manager.bounded_semaphore(2).unwrap();
    let inside = manager.value(&0i64).unwrap();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            Process::spawn(
                (slots.clone(), inside.clone()),
                |(slots, inside): (BoundedSemaphoreProxy, ValueProxy<i64>)| {
                    let mut most = 0;
                    for _ in 0..50 {
                        slots.acquire().unwrap();
                        most = most.max(inside.fetch_add(1).unwrap() + 1);
                        inside.fetch_add(-1).unwrap();
                        slots.release().unwrap();
                    }
                    most
                },
            )
            .unwrap()
        })
        .collect();
    let most = workers.into_iter().map(join).max().unwrap();
    assert!((1..=2).contains(&most), "{most} inside at once");
    assert_eq!(slots.value().unwrap(), 2);
    assert_eq!(refused(slots.release()), ErrorCode::TooManyReleases);
    assert!(slots.try_acquire().is_ok() && slots.try_acquire().is_ok());
    assert!(matches!(slots.try_acquire(), Err(ManagerError::Timeout)));
    assert!(
        slots
            .acquire_timeout(Duration::from_millis(20))
            .unwrap_err()
            .is_timeout()
    );
    // A plain semaphore has no bound.
    let signals = manager.semaphore(0).unwrap();
    signals.release().unwrap();
    signals.release().unwrap();
    assert_eq!(signals.value().unwrap(), 2);
}

#[test]
fn an_event_wakes_its_waiters_in_other_processes() {
    let manager = manager();
    let go = manager.event().unwrap();
    assert!(!go.is_set().unwrap());
    assert!(matches!(
        go.wait_timeout(Duration::from_millis(20)),
        Err(ManagerError::Timeout)
    ));
    assert!(go.try_wait().unwrap_err().is_timeout());
    let waiters: Vec<_> = (0..3)
        .map(|_| Process::spawn(go.clone(), |go: EventProxy| go.wait().unwrap()).unwrap())
        .collect();
    go.set().unwrap();
    for w in waiters {
        join(w);
    }
    assert!(go.is_set().unwrap() && go.try_wait().is_ok());
    go.clear().unwrap();
    assert!(!go.is_set().unwrap());
}

#[test]
fn a_joinable_queue_is_joined_when_every_item_is_done() {
    let manager = manager();
    let jobs = manager.joinable_queue::<u32>().unwrap();
    let done = manager.dict::<u32, u32>().unwrap();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            Process::spawn(
                (jobs.clone(), done.clone()),
                |(jobs, done): (JoinableQueueProxy<u32>, DictProxy<u32, u32>)| {
                    while let Ok(job) = jobs.get_timeout(Duration::from_millis(200)) {
                        done.insert(job, job * 2).unwrap();
                        jobs.task_done().unwrap();
                    }
                },
            )
            .unwrap()
        })
        .collect();
    for job in 0..20 {
        jobs.put(job).unwrap();
    }
    jobs.join_timeout(DEADLINE).expect("every item done");
    assert_eq!(jobs.unfinished().unwrap(), 0);
    assert_eq!(
        done.len().unwrap(),
        20,
        "join returned once every item was done"
    );
    for w in workers {
        join(w);
    }
    assert_eq!(refused(jobs.task_done()), ErrorCode::TooManyTaskDone);
    let full = manager.queue_bounded::<u32>(1).unwrap();
    full.try_put(1).unwrap();
    assert!(full.try_put(2).unwrap_err().is_full());
    assert_eq!(full.try_get().unwrap(), 1);
    assert!(full.try_get().unwrap_err().is_empty());
}

#[test]
fn a_barrier_releases_its_parties_together_and_breaks_when_one_cannot_come() {
    let manager = manager();
    let barrier = manager.barrier(3).unwrap();
    assert_eq!(barrier.parties().unwrap(), 3);
    let children: Vec<_> = (0..2)
        .map(|_| Process::spawn(barrier.clone(), |b: BarrierProxy| b.wait().unwrap()).unwrap())
        .collect();
    let mine = barrier.wait_timeout(DEADLINE).unwrap();
    let indexes: BTreeSet<usize> = children.into_iter().map(join).chain([mine]).collect();
    assert_eq!(indexes, BTreeSet::from([0, 1, 2]));

    // A timeout breaks it for everyone, until a reset: this waiter is told it timed out.
    assert!(matches!(
        barrier.wait_timeout(Duration::from_millis(20)),
        Err(ManagerError::Timeout)
    ));
    assert!(barrier.is_broken().unwrap());
    assert_eq!(refused(barrier.wait()), ErrorCode::BrokenBarrier);
    barrier.reset().unwrap();
    assert!(!barrier.is_broken().unwrap());

    // A waiter that dies breaks it too: the others are not left waiting for it.
    let mut doomed = Process::spawn(barrier.clone(), |b: BarrierProxy| -> () {
        let _ = b.wait();
        park_forever()
    })
    .unwrap();
    assert!(wait_until(|| barrier.n_waiting().unwrap() == 1));
    sigkill(doomed.pid());
    let _ = doomed.join_timeout(DEADLINE);
    assert_eq!(
        refused(barrier.wait_timeout(DEADLINE)),
        ErrorCode::BrokenBarrier
    );

    // An abort wakes a waiter with the error; a reset wakes one with the error too.
    for end in ["abort", "reset"] {
        barrier.reset().unwrap();
        let waiter = Process::spawn(barrier.clone(), |b: BarrierProxy| b.wait().is_err()).unwrap();
        assert!(wait_until(|| barrier.n_waiting().unwrap() == 1));
        if end == "abort" {
            barrier.abort().unwrap();
        } else {
            barrier.reset().unwrap();
        }
        assert!(join(waiter), "{end}: the waiter got BrokenBarrier");
    }
}

#[test]
fn notify_one_wakes_one_waiter_and_notify_all_the_rest() {
    let manager = manager();
    let condition = manager.condition().unwrap();
    let woken = Signal::new().unwrap();
    let ready = Signal::new().unwrap();
    let waiters: Vec<_> = (0..2)
        .map(|i| {
            Process::spawn(
                (condition.clone(), ready.clone(), woken.clone(), i),
                |(condition, ready, woken, i): (ConditionProxy, Signal, Signal, u32)| {
                    let mut held = condition.acquire().unwrap();
                    ready.put(i).unwrap();
                    held.wait().unwrap();
                    // The lock is ours again: nobody else holds it now.
                    woken.put(i).unwrap();
                },
            )
            .unwrap()
        })
        .collect();
    for _ in 0..2 {
        ready.get_timeout(DEADLINE).unwrap();
    }
    // Both said they were ready while holding the lock, and release it only by waiting: once we
    // hold it, both wait.
    let held = condition.acquire().unwrap();
    condition.notify_one().unwrap();
    drop(held);
    let first = woken.get_timeout(DEADLINE).unwrap();
    assert!(
        woken.get_timeout(Duration::from_millis(100)).is_err(),
        "notify_one woke one waiter"
    );
    condition.notify_all().unwrap();
    let second = woken.get_timeout(DEADLINE).unwrap();
    assert_eq!(BTreeSet::from([first, second]), BTreeSet::from([0, 1]));
    for w in waiters {
        join(w);
    }
    // Nobody notifies: the wait times out, with the lock taken back.
    let mut held = condition.acquire().unwrap();
    assert!(matches!(
        held.wait_timeout(Duration::from_millis(20)),
        Err(ManagerError::Timeout)
    ));
    assert!(condition.clone().try_acquire().unwrap_err().is_timeout());
    assert!(
        held.wait_timeout_while(Duration::from_millis(20), || true)
            .unwrap_err()
            .is_timeout()
    );
}

#[test]
fn a_condition_waits_while_a_predicate_holds() {
    let manager = manager();
    let (ready, count) = (manager.condition().unwrap(), manager.value(&0u32).unwrap());
    let producers: Vec<_> = (0..3)
        .map(|_| {
            Process::spawn(
                (ready.clone(), count.clone()),
                |(ready, count): (ConditionProxy, ValueProxy<u32>)| {
                    let _held = ready.acquire().unwrap();
                    count.fetch_add(1).unwrap();
                    ready.notify_all().unwrap();
                },
            )
            .unwrap()
        })
        .collect();
    let mut held = ready.acquire().unwrap();
    held.wait_while(|| count.get().unwrap() < 3).unwrap();
    drop(held);
    for p in producers {
        join(p);
    }
    assert_eq!(count.get().unwrap(), 3);
}

#[test]
fn every_acquisition_of_a_lock_has_a_larger_fencing_token_in_any_process() {
    let manager = manager();
    let lock = manager.lock_named("fenced").unwrap();
    let guard = lock.acquire().unwrap();
    assert!(guard.is_still_held().unwrap());
    let first = guard.fencing_token();
    drop(guard);
    let theirs = join(
        Process::spawn(lock.clone(), |lock: LockProxy| {
            lock.acquire().unwrap().fencing_token()
        })
        .unwrap(),
    );
    assert!(theirs > first, "{theirs} after {first}");
    let again = lock.acquire().unwrap();
    assert!(again.fencing_token() > theirs);
    // A recursive lock: the handle that holds it takes it again under the same token.
    let rlock = manager.rlock().unwrap();
    let outer = rlock.acquire().unwrap();
    let inner = rlock.acquire().unwrap();
    assert_eq!(inner.fencing_token(), outer.fencing_token());
    let token = outer.fencing_token();
    drop((inner, outer));
    assert!(rlock.acquire().unwrap().fencing_token() > token);
}

#[test]
fn a_fenced_write_of_an_earlier_holder_is_refused_once_a_later_one_wrote() {
    let manager = manager();
    let lock = manager.lock().unwrap();
    let d = manager.dict::<String, u32>().unwrap();
    let l = manager.list::<u32>().unwrap();
    let v = manager.value(&0u32).unwrap();
    let old = lock.acquire().unwrap().fencing_token();
    // A later holder, in another process, writes with its token.
    let new = join(
        Process::spawn(
            (lock.clone(), d.clone(), l.clone(), v.clone()),
            |(lock, d, l, v): (
                LockProxy,
                DictProxy<String, u32>,
                multiproc::ListProxy<u32>,
                ValueProxy<u32>,
            )| {
                let guard = lock.acquire().unwrap();
                let token = guard.fencing_token();
                d.fenced(token).insert("k", 2).unwrap();
                l.fenced(token).push(2).unwrap();
                v.fenced(token).set(2).unwrap();
                token
            },
        )
        .unwrap(),
    );
    assert!(new > old);
    // The earlier holder's fenced calls are refused, and change nothing.
    assert_eq!(refused(d.fenced(old).insert("k", 1)), ErrorCode::StaleFence);
    assert_eq!(refused(l.fenced(old).push(1)), ErrorCode::StaleFence);
    assert_eq!(refused(v.fenced(old).set(1)), ErrorCode::StaleFence);
    assert_eq!(refused(d.fenced(old).get("k")), ErrorCode::StaleFence);
    assert_eq!(
        (d.get("k").unwrap(), l.to_vec().unwrap(), v.get().unwrap()),
        (Some(2), vec![2], 2)
    );
    // The later token, and a larger one, still pass; a view's clone keeps its token.
    d.fenced(new).insert("k", 3).unwrap();
    let newest = d.fenced(new + 1);
    newest.clone().insert("k", 4).unwrap();
    assert_eq!(refused(d.fenced(new).insert("k", 5)), ErrorCode::StaleFence);
    // Unfenced calls are not checked.
    d.insert("k", 6).unwrap();
    assert_eq!(d.get("k").unwrap(), Some(6));
}
