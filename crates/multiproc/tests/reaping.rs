//! A child whose `Process` handle was dropped while it ran is reaped when it ends: no zombie is
//! left (issue "Thirteen ways to break it", item 8). Alone in its test binary, so that no other
//! test's spawn reaps it by chance.

multiproc::test_support!();

mod common;

use common::wait_until;
use multiproc::{Event, Process};

/// The state letter of `/proc/PID/stat`, `None` once the process is gone (reaped).
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn a_dropped_handles_child_is_reaped_when_it_ends() {
    let go = Event::new().unwrap();
    let child = Process::spawn(go.clone(), |go: Event| go.wait()).unwrap();
    let pid = child.pid();
    drop(child); // still running: detached
    assert!(state(pid).is_some(), "it runs");
    go.set();
    assert!(
        wait_until(|| state(pid).is_none()),
        "process {pid} is still there ({:?}: Z is a zombie nobody reaps)",
        state(pid)
    );
}
