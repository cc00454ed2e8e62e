//! Failpoints: named places where a test makes this process die by SIGKILL, to prove that a death
//! exactly there loses nothing. Disarmed, each costs one relaxed atomic load.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

/// A place where a process can be made to die.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Failpoint {
    /// Queue put: a side item's datagram is sent, its record not yet committed.
    QueueSideSent = 1,
    /// Queue get: a side record's removal is committed, its datagram not yet received.
    QueueSideTaken,
    /// Queue put: a ring record is written, not yet committed.
    QueueRingWritten,
    /// Queue put: a record is committed, waiters not yet notified.
    QueueCommitted,
    /// Joinable queue get or `task_done`: the getters' counters are committed, the holder's slot
    /// not yet updated.
    QueueHoldersBehind,
}

static ARMED: AtomicU8 = AtomicU8::new(0);

/// Makes this process die by SIGKILL the next time it reaches `point`. For tests.
#[doc(hidden)]
pub fn arm(point: Failpoint) {
    ARMED.store(point as u8, Relaxed);
}

/// Dies here if `point` is armed.
pub(crate) fn check(point: Failpoint) {
    if ARMED.load(Relaxed) == point as u8 {
        crate::sys::kill_self();
    }
}
