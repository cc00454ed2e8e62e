//! The manager's waiting objects across processes: locks and recursive locks (a dead holder's
//! released, its waiters told: faults.md row 17), semaphores, conditions, events, barriers and
//! queues, and their named twins. A waiter whose process dies takes nothing with it.

multiproc::test_support!();

mod common;

/// The waits suite's backend here: a manager process of its own for each test.
mod backend {
    pub fn manager() -> multiproc::Manager {
        multiproc::Manager::start().unwrap()
    }
}

#[path = "suite/waits.rs"]
mod waits;

use common::{DEADLINE, join, park_forever, refused, sigkill};
use multiproc::{
    ErrorCode, JoinableQueueProxy, LockProxy, Manager, ManagerError, Process, QueueProxy,
    SemaphoreProxy,
};

/// A local queue on which children say that they got somewhere.
type Signal = multiproc::Queue<u32>;

#[test]
fn a_dead_holders_manager_lock_is_released_and_the_waiter_told() {
    let manager = Manager::start().unwrap();
    let lock = manager.lock().unwrap();
    let taken = multiproc::Queue::<u32>::new().unwrap();
    let mut holder = Process::spawn(
        (lock.clone(), taken.clone()),
        |(lock, taken): (LockProxy, multiproc::Queue<u32>)| -> () {
            let _held = lock.acquire().unwrap();
            taken.put(std::process::id()).unwrap();
            common::park_forever()
        },
    )
    .unwrap();
    taken.get_timeout(DEADLINE).unwrap();
    // A waiter in another process, blocked in acquire when the holder dies.
    let waiter = Process::spawn(lock.clone(), |lock: LockProxy| {
        lock.acquire().unwrap().owner_died()
    })
    .unwrap();
    sigkill(holder.pid());
    let _ = holder.join_timeout(DEADLINE);
    assert!(
        join(waiter),
        "the waiter took the lock and was told its holder died"
    );
    // Released again by the waiter: a clean take now.
    let guard = lock.acquire_timeout(DEADLINE).expect("free");
    assert!(!guard.owner_died());
}

#[test]
fn a_waiter_killed_while_it_waits_takes_no_permit_and_no_item() {
    let manager = Manager::start().unwrap();
    let none_yet = manager.semaphore(0).unwrap();
    let empty = manager.queue::<u32>().unwrap();
    let waiting = Signal::new().unwrap();
    let mut waiters = [
        Process::spawn(
            (none_yet.clone(), waiting.clone()),
            |(s, waiting): (SemaphoreProxy, Signal)| -> () {
                waiting.put(1).unwrap();
                s.acquire().unwrap();
                park_forever()
            },
        )
        .unwrap(),
        Process::spawn(
            (empty.clone(), waiting.clone()),
            |(q, waiting): (QueueProxy<u32>, Signal)| -> () {
                waiting.put(2).unwrap();
                q.get().unwrap();
                park_forever()
            },
        )
        .unwrap(),
    ];
    for _ in 0..2 {
        waiting.get_timeout(DEADLINE).unwrap();
    }
    for waiter in &mut waiters {
        sigkill(waiter.pid());
        let _ = waiter.join_timeout(DEADLINE);
    }
    none_yet.release().unwrap();
    empty.put(7).unwrap();
    none_yet
        .acquire_timeout(DEADLINE)
        .expect("the permit is still there");
    assert_eq!(empty.get_timeout(DEADLINE).unwrap(), 7, "so is the item");
}

#[test]
fn a_consumer_killed_holding_items_makes_the_managers_join_report_them() {
    let manager = Manager::start().unwrap();
    let jobs = manager.joinable_queue::<u32>().unwrap();
    for job in 0..5 {
        jobs.put(job).unwrap();
    }
    let holding = Signal::new().unwrap();
    let victim = Process::spawn(
        (jobs.clone(), holding.clone()),
        |(jobs, holding): (JoinableQueueProxy<u32>, Signal)| -> () {
            jobs.get().unwrap();
            jobs.get().unwrap();
            holding.put(1).unwrap();
            park_forever()
        },
    )
    .unwrap();
    holding.get_timeout(DEADLINE).unwrap();
    sigkill(victim.pid());
    assert!(common::join_result(victim).is_err(), "the victim died");
    join(
        Process::spawn(jobs.clone(), |jobs: JoinableQueueProxy<u32>| {
            for _ in 0..3 {
                jobs.get().unwrap();
                jobs.task_done().unwrap();
            }
        })
        .unwrap(),
    );
    // Python's manager waits forever here.
    assert!(matches!(
        jobs.join_timeout(DEADLINE),
        Err(ManagerError::TasksLost(multiproc::TasksLost { items: 2 }))
    ));
    assert_eq!(jobs.unfinished().unwrap(), 0);
    jobs.join().expect("reported once");
}

#[test]
fn a_handle_dropped_holding_a_lock_releases_it_and_the_next_taker_is_told() {
    let manager = Manager::start().unwrap();
    let lock = manager.lock().unwrap();
    let other = lock.clone();
    std::mem::forget(lock.acquire().unwrap());
    assert!(other.try_acquire().unwrap_err().is_timeout(), "still held");
    drop(lock);
    let taken = other.acquire_timeout(DEADLINE).unwrap();
    assert!(taken.owner_died());
    // Ownership is the handle's, whichever connection carried its calls: the two handles share
    // this process's.
    drop(taken);
    let rlock = manager.rlock().unwrap();
    let outer = rlock.acquire().unwrap();
    let inner = rlock.acquire().unwrap();
    assert_eq!(rlock.depth().unwrap(), 2);
    assert!(rlock.clone().try_acquire().is_err());
    drop((inner, outer));
    assert_eq!(rlock.depth().unwrap(), 0);
}

#[test]
fn named_objects_are_the_same_in_every_process_and_keep_their_kind() {
    let manager = Manager::start().unwrap();
    let address = (manager.address().clone(), manager.authkey().to_vec());
    let held = Signal::new().unwrap();
    let mut holder = Process::spawn(
        (address, held.clone()),
        |((address, key), held): ((multiproc::Address, Vec<u8>), Signal)| -> () {
            let manager = Manager::connect(address, &key).unwrap();
            let lock = manager.lock_named("the lock").unwrap();
            let _guard = lock.acquire().unwrap();
            manager.event_named("the event").unwrap().set().unwrap();
            held.put(1).unwrap();
            park_forever()
        },
    )
    .unwrap();
    held.get_timeout(DEADLINE).unwrap();
    assert!(
        manager
            .lock_named("the lock")
            .unwrap()
            .try_acquire()
            .unwrap_err()
            .is_timeout()
    );
    assert!(manager.event_named("the event").unwrap().is_set().unwrap());
    assert_eq!(
        refused(manager.dict_named::<u8, u8>("the lock")),
        ErrorCode::WrongKind
    );
    assert_eq!(
        refused(manager.semaphore_named("the event", 1)),
        ErrorCode::WrongKind
    );
    sigkill(holder.pid());
    let _ = holder.join_timeout(DEADLINE);
    let lock = manager.lock_named("the lock").unwrap();
    let guard = lock
        .acquire_timeout(DEADLINE)
        .expect("released at the death");
    assert!(guard.owner_died());
}
