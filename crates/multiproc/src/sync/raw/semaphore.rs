//! [`RawSemaphore`]: a counter that `acquire` takes down (waiting at zero) and `release` puts up,
//! up to `bound`.
//!
//! `count` is the futex word. A waiter increments `waiters` then reads `count`; a releaser raises
//! `count` then reads `waiters` (SeqCst): a release never misses a sleeper.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use crate::deadline::remaining;
use crate::shm::{Kind, SharedState};
use crate::sys::{futex_wait, futex_wake};

#[repr(C)]
pub(crate) struct RawSemaphore {
    count: AtomicU32,
    waiters: AtomicU32,
    /// The most `count` may reach (`u32::MAX` for an unbounded semaphore). Fixed at creation.
    bound: u32,
}

// SAFETY: repr(C), the changing fields are atomics, `bound` is written once before sharing.
unsafe impl SharedState for RawSemaphore {
    const KIND: Kind = Kind::Semaphore;
}

impl RawSemaphore {
    pub(crate) fn new(value: u32, bound: u32) -> RawSemaphore {
        RawSemaphore {
            count: AtomicU32::new(value),
            waiters: AtomicU32::new(0),
            bound,
        }
    }

    pub(crate) fn try_acquire(&self) -> bool {
        let mut count = self.count.load(SeqCst);
        while count > 0 {
            match self
                .count
                .compare_exchange_weak(count, count - 1, SeqCst, SeqCst)
            {
                Ok(_) => return true,
                Err(now) => count = now,
            }
        }
        false
    }

    /// Takes one unit, waiting until `deadline`; false if none came in time.
    pub(crate) fn acquire(&self, deadline: Option<Instant>) -> bool {
        if self.try_acquire() {
            return true;
        }
        self.waiters.fetch_add(1, SeqCst);
        let taken = loop {
            if self.try_acquire() {
                break true;
            }
            let left = remaining(deadline);
            if left == Some(Duration::ZERO) {
                break false;
            }
            futex_wait(&self.count, 0, left);
        };
        self.waiters.fetch_sub(1, SeqCst);
        taken
    }

    /// Gives one unit back; false (and nothing changes) if that would pass the bound.
    pub(crate) fn release(&self) -> bool {
        let mut count = self.count.load(SeqCst);
        loop {
            if count >= self.bound {
                return false;
            }
            match self
                .count
                .compare_exchange_weak(count, count + 1, SeqCst, SeqCst)
            {
                Ok(_) => break,
                Err(now) => count = now,
            }
        }
        if self.waiters.load(SeqCst) != 0 {
            futex_wake(&self.count, 1);
        }
        true
    }

    pub(crate) fn value(&self) -> u32 {
        self.count.load(SeqCst)
    }
}
