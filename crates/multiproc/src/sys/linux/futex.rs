//! Futexes shared between processes (not `FUTEX_PRIVATE`): the word lives in shared memory.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::thread::futex;

/// Sleeps while `word` holds `expected`, until woken or `timeout` passes (`None`: no limit).
/// Returns false only on timeout; a wake, a changed value or a signal all return true, and the
/// caller re-checks its condition either way.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
    let timeout = timeout.map(|d| rustix::event::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos() as _,
    });
    !matches!(
        futex::wait(word, futex::Flags::empty(), expected, timeout.as_ref()),
        Err(rustix::io::Errno::TIMEDOUT)
    )
}

/// Wakes up to `count` sleepers on `word`, in any process.
pub(crate) fn futex_wake(word: &AtomicU32, count: u32) {
    // The kernel reads the count as an `int`: `u32::MAX` would be -1, which wakes only one.
    let count = count.min(i32::MAX as u32);
    let _ = futex::wake(word, futex::Flags::empty(), count);
}

/// Wakes every sleeper on `word`.
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    futex_wake(word, u32::MAX);
}
