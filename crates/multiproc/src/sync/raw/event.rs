//! [`RawEvent`]: a flag that waiters sleep on until it is set. `flag` (0 or 1) is the futex word.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use crate::deadline::remaining;
use crate::shm::{Kind, SharedState};
use crate::sys::{futex_wait, futex_wake_all};

#[repr(C)]
pub(crate) struct RawEvent {
    flag: AtomicU32,
}

// SAFETY: repr(C), one atomic, zero is "not set".
unsafe impl SharedState for RawEvent {
    const KIND: Kind = Kind::Event;
}

impl RawEvent {
    pub(crate) const fn new() -> RawEvent {
        RawEvent {
            flag: AtomicU32::new(0),
        }
    }

    pub(crate) fn set(&self) {
        if self.flag.swap(1, SeqCst) == 0 {
            futex_wake_all(&self.flag);
        }
    }

    pub(crate) fn clear(&self) {
        self.flag.store(0, SeqCst);
    }

    pub(crate) fn is_set(&self) -> bool {
        self.flag.load(SeqCst) != 0
    }

    /// Waits until set or `deadline`; returns whether it is set.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.is_set() {
                return true;
            }
            let left = remaining(deadline);
            if left == Some(Duration::ZERO) {
                return false;
            }
            futex_wait(&self.flag, 0, left);
        }
    }
}
