//! Starting processes, getting their results back, and telling apart how they ended.
//! Several cases follow CPython's `test_multiprocessing` (`_TestProcess`).

multiproc::test_support!();

mod common;

use std::time::{Duration, Instant};

use common::{
    DEADLINE, Unserializable, flag, is_raised, join_result, park_forever, raise, wait_until,
};
use multiproc::{ExitStatus, JoinError, Process, SharedMemory, SpawnError, StartMethod};
use serde::{Deserialize, Serialize};

const METHODS: [StartMethod; 3] = [
    StartMethod::Spawn,
    StartMethod::Fork,
    StartMethod::ForkServer,
];

fn square(n: u64) -> u64 {
    n * n
}

#[test]
fn the_functions_return_value_comes_back() {
    for method in METHODS {
        let p = Process::builder()
            .start_method(method)
            .spawn(12, square)
            .unwrap();
        assert_eq!(join_result(p).unwrap(), 144, "{method:?}");
        let p = Process::builder()
            .start_method(method)
            .spawn((2, 5), |(a, b): (i32, i32)| a.pow(b as u32))
            .unwrap();
        assert_eq!(join_result(p).unwrap(), 32, "{method:?}");
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Circle { r: f64 },
    Polygon(Vec<(i32, i32)>),
}

#[test]
fn structured_arguments_and_results_travel() {
    let shapes = vec![
        Shape::Circle { r: 1.5 },
        Shape::Polygon(vec![(0, 0), (3, 0), (0, 4)]),
    ];
    let p = Process::spawn(
        (shapes.clone(), "label".to_string(), Some(7u8)),
        |(shapes, label, n)| {
            (
                shapes.into_iter().rev().collect::<Vec<Shape>>(),
                format!("{label}!"),
                n.map(|n: u8| n + 1),
            )
        },
    )
    .unwrap();
    let (back, label, n) = join_result(p).unwrap();
    assert_eq!(back, vec![shapes[1].clone(), shapes[0].clone()]);
    assert_eq!((label.as_str(), n), ("label!", Some(8)));
}

#[test]
fn large_arguments_and_results_travel_whole() {
    let big: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 253) as u8).collect();
    for method in METHODS {
        let p = Process::builder()
            .start_method(method)
            .spawn(big.clone(), |mut v: Vec<u8>| {
                v.reverse();
                v
            });
        let mut back = join_result(p.unwrap()).unwrap();
        back.reverse();
        assert!(back == big, "{method:?}: 8 MiB round trip differs");
    }
}

#[test]
fn a_panic_is_reported_with_its_message() {
    for method in METHODS {
        let p = Process::builder()
            .start_method(method)
            .spawn(41, |n: i32| -> i32 {
                if n == 41 {
                    panic!("the answer is not {n}");
                }
                n
            });
        match join_result(p.unwrap()) {
            Err(JoinError::Panicked { message }) => {
                assert_eq!(message, "the answer is not 41", "{method:?}")
            }
            other => panic!("{method:?}: expected a panic, got {other:?}"),
        }
    }
}

#[test]
fn an_exit_code_is_reported() {
    for method in METHODS {
        let mut p = Process::builder()
            .start_method(method)
            .spawn(3, |code: i32| -> () { std::process::exit(code) })
            .unwrap();
        let err = p.join_timeout(DEADLINE).unwrap_err();
        assert!(
            matches!(err, JoinError::Exited { code: 3 }),
            "{method:?}: {err:?}"
        );
        assert_eq!(err.exit_code(), Some(3));
        assert_eq!(p.exit_status(), Some(ExitStatus::Exited(3)));
        assert!(!p.is_alive());
    }
}

#[test]
fn terminate_and_kill_are_told_apart() {
    for (force, signal) in [(false, 15), (true, 9)] {
        let started = flag();
        let mut p = Process::spawn(started.clone(), |started: SharedMemory| -> () {
            raise(&started);
            park_forever()
        })
        .unwrap();
        assert!(wait_until(|| is_raised(&started)), "child never started");
        assert!(p.is_alive());
        assert_eq!(p.exit_status(), None);
        if force {
            p.kill().unwrap()
        } else {
            p.terminate().unwrap()
        }
        let err = p.join_timeout(DEADLINE).unwrap_err();
        assert!(
            matches!(err, JoinError::Signaled { signal: s } if s == signal),
            "{err:?}"
        );
        assert_eq!(err.signal(), Some(signal));
        assert_eq!(p.exit_status(), Some(ExitStatus::Signaled(signal)));
        assert_eq!(p.exit_status().unwrap().python_exitcode(), -signal);
        assert!(!p.is_alive());
        // Signalling a process that has ended is not an error, as in Python.
        p.terminate().unwrap();
        p.kill().unwrap();
    }
}

#[test]
fn join_timeout_gives_up_and_a_later_join_succeeds() {
    let go = flag();
    let mut p =
        Process::spawn(go.clone(), |go: SharedMemory| wait_until(|| is_raised(&go))).unwrap();
    let t0 = Instant::now();
    let err = p.join_timeout(Duration::from_millis(100)).unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(t0.elapsed() >= Duration::from_millis(100));
    assert!(p.is_alive());
    raise(&go);
    assert!(p.join_timeout(DEADLINE).unwrap(), "the child saw the flag");
    assert!(matches!(
        p.join_timeout(DEADLINE),
        Err(JoinError::AlreadyJoined)
    ));
}

#[test]
fn names_pids_and_default_names() {
    let p = Process::builder()
        .name("worker-a")
        .spawn((), |()| std::process::id())
        .unwrap();
    assert_eq!(p.name(), "worker-a");
    let pid = p.pid();
    assert_eq!(join_result(p).unwrap(), pid, "pid() is the child's own id");
    // Default names count up in this process (other tests start processes meanwhile).
    let number = |p: &Process<()>| -> u32 {
        p.name()
            .strip_prefix("Process-")
            .and_then(|n| n.parse().ok())
            .expect("Process-N")
    };
    let p = Process::spawn((), |()| ()).unwrap();
    let q = Process::spawn((), |()| ()).unwrap();
    assert!(number(&q) > number(&p), "{} then {}", p.name(), q.name());
    join_result(p).unwrap();
    join_result(q).unwrap();
}

#[test]
fn a_child_can_start_children_named_after_it() {
    for method in METHODS {
        let p = Process::builder()
            .start_method(method)
            .spawn(method, |method: StartMethod| {
                let grandchild = Process::builder()
                    .start_method(method)
                    .spawn(5, |n: u64| n + 1)
                    .unwrap();
                let name = grandchild.name().to_string();
                (name, grandchild.join().unwrap())
            });
        let p = p.unwrap();
        let parent_name = p.name().to_string();
        let (name, value) = join_result(p).unwrap();
        assert_eq!(value, 6);
        assert_eq!(name, format!("{parent_name}:1"), "{method:?}");
    }
}

#[test]
fn a_child_outlives_the_thread_that_started_it() {
    // PR_SET_PDEATHSIG fires when the starting *thread* ends; the child must not die with it.
    let go = flag();
    let p = std::thread::spawn({
        let go = go.clone();
        move || Process::spawn(go, |go: SharedMemory| wait_until(|| is_raised(&go))).unwrap()
    })
    .join()
    .unwrap();
    // The thread has ended. Let the child see that happen before it may finish.
    let watched = common::watch(p.pid());
    assert!(watched.is_running());
    raise(&go);
    assert!(join_result(p).unwrap(), "the child ran to the end");
}

#[test]
fn arguments_that_do_not_serialize_fail_in_the_caller() {
    let err = Process::spawn(Unserializable, |_: Unserializable| ()).unwrap_err();
    assert!(matches!(err, SpawnError::Encode(_)), "{err:?}");
}

/// Serializes fine, refuses to deserialize: the child cannot rebuild its arguments.
struct Undeserializable;

impl Serialize for Undeserializable {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for Undeserializable {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("this value refuses to arrive"))
    }
}

#[test]
fn arguments_that_do_not_deserialize_in_the_child_are_reported() {
    for method in METHODS {
        let p = Process::builder()
            .start_method(method)
            .spawn(Undeserializable, |_: Undeserializable| 1)
            .unwrap();
        let err = join_result(p).expect_err("must fail");
        assert!(
            matches!(err, JoinError::Bootstrap { .. }),
            "{method:?}: {err:?}"
        );
        assert!(err.to_string().contains("arguments"), "{err}");
    }
}

#[test]
fn a_result_that_does_not_serialize_is_reported() {
    for method in METHODS {
        let p = Process::builder()
            .start_method(method)
            .spawn((), |()| Unserializable)
            .unwrap();
        let err = join_result(p).expect_err("must fail");
        assert!(
            matches!(err, JoinError::ResultEncode { .. }),
            "{method:?}: {err:?}"
        );
    }
}

#[test]
fn a_child_that_cannot_be_started_is_an_error_not_a_hang() {
    // In a child, so the lowered descriptor limit touches no other test: with no descriptor left,
    // starting a grandchild must fail at once with the operating system's error.
    let p = Process::spawn((), |()| {
        let lowest_free = std::fs::File::open("/dev/null").map(|f| {
            use std::os::fd::AsRawFd;
            f.as_raw_fd() as u64
        });
        let limit = rustix::process::Rlimit {
            current: Some(lowest_free.unwrap()),
            maximum: None,
        };
        let maximum = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
        rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit { maximum, ..limit },
        )
        .unwrap();
        match Process::spawn((), |()| ()) {
            Err(SpawnError::Start(e)) => format!("start error: {e}"),
            Err(other) => format!("other error: {other}"),
            Ok(_) => "started".to_string(),
        }
    })
    .unwrap();
    let outcome = join_result(p).unwrap();
    assert!(outcome.starts_with("start error:"), "{outcome}");
}

#[test]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Process<String>>();
    send_sync::<SharedMemory>();
    send_sync::<JoinError>();
    send_sync::<SpawnError>();
    send_sync::<multiproc::Error>();
    send_sync::<multiproc::Value<u64>>();
    send_sync::<multiproc::Array<f64>>();
    send_sync::<multiproc::Lock>();
    send_sync::<multiproc::LockGuard<'static>>();
    send_sync::<multiproc::RLock>();
    send_sync::<multiproc::Semaphore>();
    send_sync::<multiproc::BoundedSemaphore>();
    send_sync::<multiproc::Condition>();
    send_sync::<multiproc::Event>();
    send_sync::<multiproc::Barrier>();
}

#[test]
fn a_dropped_handle_does_not_stop_its_process() {
    // Python's detached process: the handle goes, the process runs on (and is reaped for us).
    for method in METHODS {
        let done = flag();
        drop(
            Process::builder()
                .start_method(method)
                .spawn(done.clone(), |done: SharedMemory| raise(&done))
                .unwrap(),
        );
        assert!(
            wait_until(|| is_raised(&done)),
            "{method:?}: the child ran although its handle was dropped at once"
        );
    }
}

#[test]
fn join_all_starts_them_all_then_joins_them_all_in_order() {
    let squares = multiproc::join_all((0..4).map(|n| Process::spawn(n, square))).unwrap();
    assert_eq!(squares, [0, 1, 4, 9]);

    // Side by side: each waits for all three at a barrier, which a start-join-start loop
    // would never pass.
    let barrier = multiproc::Barrier::new(3).unwrap();
    let passed = multiproc::join_all((0..3).map(|_| {
        Process::spawn(barrier.clone(), |b: multiproc::Barrier| {
            b.wait_timeout(DEADLINE).is_ok()
        })
    }))
    .unwrap();
    assert_eq!(passed, [true, true, true]);
}

#[test]
fn join_all_joins_every_process_even_after_one_failed() {
    // The first panics at once; the others end only after all of them reached a barrier, so a
    // join_all that returned at the first failure would find them still running.
    let barrier = multiproc::Barrier::new(3).unwrap();
    let done = multiproc::Value::new(0u32).unwrap();
    let result = multiproc::join_all((0..4).map(|i| {
        Process::spawn(
            (i, barrier.clone(), done.clone()),
            |(i, barrier, done): (u32, multiproc::Barrier, multiproc::Value<u32>)| {
                assert!(i != 0, "the first one fails");
                barrier.wait_timeout(DEADLINE).unwrap();
                done.fetch_add(1);
            },
        )
    }));
    match result {
        Err(multiproc::Error::Join(JoinError::Panicked { message })) => {
            assert!(message.contains("the first one fails"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(done.get(), 3, "every other process was joined");
}

#[test]
fn join_all_returns_a_failed_start_at_once_and_starts_no_more() {
    let mut asked = 0;
    let result = multiproc::join_all((0..3).map(|i| {
        asked += 1;
        if i == 1 {
            Process::spawn(Unserializable, |_: Unserializable| 0)
        } else {
            Process::spawn(i, square)
        }
    }));
    assert!(
        matches!(result, Err(multiproc::Error::Spawn(SpawnError::Encode(_)))),
        "{result:?}"
    );
    assert_eq!(asked, 2, "nothing is started after the failed start");
}
