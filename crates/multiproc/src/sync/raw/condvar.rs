//! [`RawCondition`]: a lock and a condition variable. Waiters sleep on `sequence`, which every
//! notification bumps; `waiters` lets a notification with nobody waiting skip the system call.
//! A waiter registers and reads `sequence` while it holds the lock, so a notification made after it
//! released the lock changes the word it sleeps on and is never lost.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use super::RawMutex;
use crate::deadline::remaining;
use crate::shm::{Kind, SharedState};
use crate::sys::{futex_wait, futex_wake};

#[repr(C)]
pub(crate) struct RawCondition {
    pub(crate) mutex: RawMutex,
    condvar: RawCondvar,
}

// SAFETY: repr(C), atomics only, all-zero is a free lock with nobody waiting.
unsafe impl SharedState for RawCondition {
    const KIND: Kind = Kind::Condition;
}

impl RawCondition {
    pub(crate) const fn new() -> RawCondition {
        RawCondition {
            mutex: RawMutex::new(),
            condvar: RawCondvar::new(),
        }
    }

    pub(crate) fn condvar(&self) -> &RawCondvar {
        &self.condvar
    }
}

/// A condition variable's state: a sequence number bumped by each notification, and the number of
/// sleepers (so that a notification with nobody waiting makes no system call).
#[repr(C)]
pub(crate) struct RawCondvar {
    sequence: AtomicU32,
    waiters: AtomicU32,
}

impl RawCondvar {
    pub(crate) const fn new() -> RawCondvar {
        RawCondvar {
            sequence: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
        }
    }

    /// Called with the lock held: registers as a sleeper and returns the sequence to wait on.
    pub(crate) fn prepare_wait(&self) -> u32 {
        self.waiters.fetch_add(1, SeqCst);
        self.sequence.load(SeqCst)
    }

    /// Undoes [`prepare_wait`](Self::prepare_wait) for a waiter that found its condition true on
    /// a last look and will not sleep.
    pub(crate) fn cancel_wait(&self) {
        self.waiters.fetch_sub(1, SeqCst);
    }

    /// Called with the lock released: sleeps until notified (the sequence moved on) or `deadline`.
    /// Returns false on timeout. Spurious wake-ups are possible, as with any condition variable.
    pub(crate) fn wait(&self, seen: u32, deadline: Option<Instant>) -> bool {
        let left = remaining(deadline);
        let notified = left != Some(Duration::ZERO) && futex_wait(&self.sequence, seen, left);
        self.waiters.fetch_sub(1, SeqCst);
        notified || self.sequence.load(SeqCst) != seen
    }

    pub(crate) fn notify(&self, all: bool) {
        if self.waiters.load(SeqCst) != 0 {
            self.sequence.fetch_add(1, SeqCst);
            futex_wake(&self.sequence, if all { u32::MAX } else { 1 });
        }
    }
}
