//! `multiproc clean` removes named shared memory whose owners died, and only that.

multiproc::test_support!();

mod common;

use multiproc::{SharedMemory, ShmError};

#[test]
fn clean_removes_a_dead_owners_segment_and_keeps_a_live_one() {
    let dead = format!("cli-dead-{}", std::process::id());
    let live = SharedMemory::create_named(&format!("cli-live-{}", std::process::id()), 16).unwrap();
    common::abandoned_block(&dead);

    let printed = common::multiproc(&["clean"]);
    assert!(
        printed.lines().any(|l| l == format!("removed {dead}")),
        "{printed}"
    );
    assert!(
        !printed.contains(live.name().unwrap()),
        "a live segment was removed: {printed}"
    );
    assert!(matches!(
        SharedMemory::open(&dead),
        Err(ShmError::NotFound { .. })
    ));
    assert!(SharedMemory::open(live.name().unwrap()).is_ok());
    live.unlink().unwrap();
}
