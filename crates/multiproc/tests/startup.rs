//! What a program that forgot `init()` gets: a clear error, never a hang. This file deliberately has
//! no `multiproc::test_support!()`, so a child re-executing this binary runs the test harness, which
//! rejects the bootstrap arguments and exits: the child never starts its task.

use std::time::Duration;

use multiproc::{JoinError, Process, SpawnError};

// One test: the order matters (before and after `init`), and `init` is process-wide.
#[test]
fn starting_without_init_is_an_error_and_a_child_without_init_is_reported() {
    let err = Process::spawn(1, |n: i32| n).unwrap_err();
    assert!(matches!(err, SpawnError::NotInitialized), "{err:?}");
    assert!(err.to_string().contains("multiproc::init()"), "{err}");

    multiproc::init(); // a parent: returns at once
    let mut child = Process::spawn(1, |n: i32| n).unwrap();
    let err = child.join_timeout(Duration::from_secs(30)).unwrap_err();
    match &err {
        JoinError::NotStarted { status } => assert!(!status.success(), "{status}"),
        other => panic!("expected NotStarted, got {other:?}"),
    }
    assert!(err.to_string().contains("test_support!"), "{err}");
}
