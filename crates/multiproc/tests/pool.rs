//! `Pool` across real processes: results in order and as they come, panics as one task's error,
//! workers killed mid-task (SIGKILL, abort) during `map`, `imap` and `apply_async` failing only
//! their own task and replaced, task limits, the initializer, the fork start method, and no
//! process left behind after drop, `terminate`, or the parent's SIGKILL.

multiproc::test_support!();

mod common;

use std::collections::BTreeSet;

use common::{DEADLINE, Unserializable, park_forever, sigkill, watch};
use multiproc::{Pool, PoolError, Process, Queue, StartMethod, current_process};

fn square(x: u64) -> u64 {
    x * x
}

fn pid_of(_: u64) -> u32 {
    std::process::id()
}

#[test]
fn map_imap_apply_give_every_result() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.processes(), 2);
    let expected: Vec<u64> = (0..100).map(square).collect();
    assert_eq!(pool.map(square, 0..100).unwrap(), expected);
    let ordered: Vec<u64> = pool.imap(square, 0..100).map(Result::unwrap).collect();
    assert_eq!(ordered, expected);
    let mut unordered: Vec<u64> = pool
        .imap_unordered(square, 0..100)
        .map(Result::unwrap)
        .collect();
    unordered.sort();
    assert_eq!(unordered, expected);
    assert_eq!(pool.apply(7, square).unwrap(), 49);
    let mut pending = pool.apply_async(8, square).unwrap();
    assert_eq!(pending.get_timeout(DEADLINE).unwrap(), 64);
    assert_eq!(pending.get_timeout(DEADLINE), Err(PoolError::AlreadyTaken));
    let all = pool.map_async(square, 0..10).unwrap();
    all.wait();
    assert!(all.ready());
    assert_eq!(all.get().unwrap(), expected[..10]);
    assert_eq!(pool.map(square, Vec::new()).unwrap(), Vec::<u64>::new());
}

#[test]
fn a_panic_is_that_tasks_error_and_the_others_complete() {
    let pool = Pool::builder().processes(2).chunksize(1).build().unwrap();
    let results: Vec<Result<u64, PoolError>> = pool
        .imap(
            |x: u64| {
                assert!(x != 3, "three is right out");
                x
            },
            0..6,
        )
        .collect();
    for (x, result) in results.iter().enumerate() {
        if x == 3 {
            assert!(
                matches!(result, Err(PoolError::Panicked { message }) if message.contains("three is right out")),
                "{result:?}"
            );
        } else {
            assert_eq!(result, &Ok(x as u64));
        }
    }
    // map reports the failure; the pool goes on.
    assert!(matches!(
        pool.map(|x: u64| if x == 1 { panic!("no") } else { x }, 0..4),
        Err(PoolError::Panicked { .. })
    ));
    assert_eq!(pool.apply(2, square).unwrap(), 4);
}

/// Every result is its item, except item `killed`, whose worker was SIGKILLed.
fn assert_only_killed(results: &[Result<u64, PoolError>], killed: usize) {
    for (x, result) in results.iter().enumerate() {
        if x == killed {
            assert!(
                matches!(
                    result,
                    Err(PoolError::WorkerDied {
                        signal: Some(9),
                        ..
                    })
                ),
                "{result:?}"
            );
        } else {
            assert_eq!(result, &Ok(x as u64));
        }
    }
}

/// A task that reports its worker's pid on `pids`, then never returns if `x` is the victim.
fn report_then_hang((x, victim, pids): (u64, u64, Queue<u32>)) -> u64 {
    if x == victim {
        pids.put(std::process::id()).unwrap();
        park_forever();
    }
    x
}

#[test]
fn a_worker_killed_mid_task_fails_only_its_task_during_map_imap_and_apply_async() {
    for method in [StartMethod::Spawn, StartMethod::ForkServer] {
        a_worker_killed_mid_task_fails_only_its_task(method);
    }
}

fn a_worker_killed_mid_task_fails_only_its_task(method: StartMethod) {
    let pool = Pool::builder()
        .processes(2)
        .chunksize(1)
        .start_method(method)
        .build()
        .unwrap();
    let pids = Queue::<u32>::new().unwrap();

    // map: the whole call reports the death, after the other tasks ran.
    let pending = pool
        .map_async(report_then_hang, (0..8).map(|x| (x, 5, pids.clone())))
        .unwrap();
    let victim = pids.get_timeout(DEADLINE).unwrap();
    sigkill(victim);
    let mut pending = pending;
    assert!(matches!(
        pending.get_timeout(DEADLINE),
        Err(PoolError::WorkerDied { pid, signal: Some(9), .. }) if pid == victim
    ));

    // imap: exactly the killed task fails, every other result comes.
    let mut results = pool.imap(report_then_hang, (0..8).map(|x| (x, 2, pids.clone())));
    let mut got = Vec::new();
    for _ in 0..8 {
        if got.len() == 2 {
            sigkill(pids.get_timeout(DEADLINE).unwrap());
        }
        got.push(results.next_timeout(DEADLINE).expect("eight results"));
    }
    assert_only_killed(&got, 2);

    // apply_async, with an abort: the signal is SIGABRT's.
    let mut aborted = pool
        .apply_async((), |()| -> u64 { std::process::abort() })
        .unwrap();
    assert!(matches!(
        aborted.get_timeout(DEADLINE),
        Err(PoolError::WorkerDied {
            signal: Some(6),
            ..
        })
    ));
    // Replaced: the pool still has two working workers.
    let pids: BTreeSet<u32> = pool
        .map(|x: u64| (x, std::process::id()).1, 0..50)
        .unwrap()
        .into_iter()
        .collect();
    assert!(!pids.is_empty());
    assert_eq!(pool.map(square, 0..20).unwrap().len(), 20);
}

#[test]
fn max_tasks_per_child_replaces_workers() {
    let pool = Pool::builder()
        .processes(2)
        .chunksize(1)
        .max_tasks_per_child(2)
        .build()
        .unwrap();
    let pids: Vec<u32> = pool.map(pid_of, 0..12).unwrap();
    let distinct: BTreeSet<u32> = pids.iter().copied().collect();
    assert!(
        distinct.len() >= 6,
        "each worker ran at most 2 tasks: {pids:?}"
    );
    for pid in distinct {
        assert!(pids.iter().filter(|&&p| p == pid).count() <= 2);
    }
}

#[test]
fn the_initializer_runs_in_each_worker_and_its_failure_fails_the_tasks() {
    let pool = Pool::builder()
        .processes(2)
        .initializer(7u32, |n: u32| {
            // The worker's environment for its tasks: a name the tasks can see.
            assert_eq!(n, 7);
            let _ = current_process().name();
        })
        .build()
        .unwrap();
    assert_eq!(pool.map(square, 0..4).unwrap(), [0, 1, 4, 9]);

    let broken = Pool::builder()
        .processes(2)
        .initializer((), |()| panic!("no database"))
        .build()
        .unwrap();
    assert!(matches!(
        broken.map(square, 0..4),
        Err(PoolError::InitializerFailed { message }) if message.contains("no database")
    ));
}

#[test]
fn every_start_method_works() {
    for method in [
        StartMethod::Spawn,
        StartMethod::Fork,
        StartMethod::ForkServer,
    ] {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .build()
            .unwrap();
        assert_eq!(pool.map(square, 0..10).unwrap()[9], 81, "{method:?}");
    }
}

#[test]
fn close_join_and_bad_arguments() {
    let mut pool = Pool::new(2).unwrap();
    assert!(matches!(
        pool.apply(Unserializable, |_: Unserializable| 0u8),
        Err(PoolError::Encode { .. })
    ));
    let pending = pool.map_async(square, 0..10).unwrap();
    pool.close();
    assert!(matches!(pool.apply(1, square), Err(PoolError::Closed)));
    pool.join();
    assert_eq!(
        pending.get().unwrap().len(),
        10,
        "close lets submitted work finish"
    );
}

#[test]
fn no_worker_is_left_after_drop_or_terminate() {
    for end_with_terminate in [false, true] {
        let mut pool = Pool::new(2).unwrap();
        let pids: BTreeSet<u32> = pool.map(pid_of, 0..20).unwrap().into_iter().collect();
        let watched: Vec<_> = pids.iter().map(|&pid| watch(pid)).collect();
        let hanging = pool.apply_async((), |()| -> u8 { park_forever() }).unwrap();
        // Ending the pool returns within the deadline, whatever its workers do.
        let (ended, is_ended) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            if end_with_terminate {
                pool.terminate();
            } else {
                drop(pool);
            }
            let _ = ended.send(());
        });
        is_ended
            .recv_timeout(DEADLINE)
            .expect("the pool ended within the deadline");
        assert_eq!(hanging.get(), Err(PoolError::Terminated));
        for w in &watched {
            w.assert_dies("a pool worker after the pool ended");
        }
    }
}

#[test]
fn no_worker_is_left_after_the_parent_is_killed() {
    for method in [StartMethod::Spawn, StartMethod::ForkServer] {
        no_worker_is_left_after_the_parent_of(method);
    }
}

fn no_worker_is_left_after_the_parent_of(method: StartMethod) {
    let pids = Queue::<u32>::new().unwrap();
    let mut parent = Process::spawn(
        (method, pids.clone()),
        |(method, pids): (StartMethod, Queue<u32>)| -> () {
            let pool = Pool::builder()
                .processes(2)
                .start_method(method)
                .build()
                .unwrap();
            let mine: BTreeSet<u32> = pool.map(pid_of, 0..20).unwrap().into_iter().collect();
            pids.put(mine.len() as u32).unwrap();
            for pid in mine {
                pids.put(pid).unwrap();
            }
            park_forever()
        },
    )
    .unwrap();
    let count = pids.get_timeout(DEADLINE).unwrap();
    let watched: Vec<_> = (0..count)
        .map(|_| watch(pids.get_timeout(DEADLINE).unwrap()))
        .collect();
    sigkill(parent.pid());
    let _ = parent.join_timeout(DEADLINE);
    for w in &watched {
        w.assert_dies("a pool worker whose parent was killed");
    }
}

#[test]
fn a_worker_killed_while_holding_the_inbox_lock_fails_only_its_task() {
    // The task arms a failpoint: its worker dies by SIGKILL in the middle of putting the result
    // on the pool's shared inbox, holding the inbox's lock. The other worker's results still
    // get through (the lock is taken over), and the task fails with WorkerDied.
    let pool = Pool::builder().processes(2).chunksize(1).build().unwrap();
    let results: Vec<Result<u64, PoolError>> = pool
        .imap(
            |x: u64| {
                if x == 4 {
                    multiproc::failpoint::arm(multiproc::failpoint::Failpoint::QueueRingWritten);
                }
                x
            },
            0..10,
        )
        .collect();
    assert_only_killed(&results, 4);
}
