//! [`RawBarrier`]: `parties` waiters meet; the last to arrive releases the others.
//!
//! `state` packs `generation << 32 | broken << 31 | arrived`. The last arrival starts the next
//! generation (arrived 0). A timeout or `abort` sets `broken` in the current generation: its waiters
//! and every later arrival fail until `reset`, which starts a new generation and records the one it
//! ended in `reset_generation`, so that the waiters it released know they were broken, not passed.
//! Waiters sleep on `epoch`, bumped at each of these changes.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use crate::deadline::remaining;
use crate::shm::{Kind, SharedState};
use crate::sys::{futex_wait, futex_wake_all};

const BROKEN: u64 = 1 << 31;
const ARRIVED: u64 = BROKEN - 1;

#[repr(C)]
pub(crate) struct RawBarrier {
    parties: u32,
    epoch: AtomicU32,
    state: AtomicU64,
    reset_generation: AtomicU32,
}

// SAFETY: repr(C), atomics and a field written once before sharing; zero state is generation 0,
// nobody arrived, not broken.
unsafe impl SharedState for RawBarrier {
    const KIND: Kind = Kind::Barrier;
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BarrierWait {
    /// Everybody arrived; this waiter arrived `index`-th (from 0).
    Passed(u32),
    /// The barrier is broken (another's timeout, abort, or reset during the wait).
    Broken,
    /// This wait's deadline came first; it broke the barrier.
    TimedOut,
}

/// The most parties a barrier takes.
pub(crate) const MAX_PARTIES: u32 = (1 << 31) - 1;

fn generation(state: u64) -> u32 {
    (state >> 32) as u32
}

impl RawBarrier {
    /// A barrier of `parties`, 1 to [`MAX_PARTIES`] (checked by the caller).
    pub(crate) fn new(parties: u32) -> RawBarrier {
        debug_assert!(parties > 0 && parties <= MAX_PARTIES);
        RawBarrier {
            parties,
            epoch: AtomicU32::new(0),
            state: AtomicU64::new(0),
            reset_generation: AtomicU32::new(u32::MAX),
        }
    }

    pub(crate) fn parties(&self) -> u32 {
        self.parties
    }

    /// Waits for the other parties until `deadline`; a timeout breaks the barrier.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> BarrierWait {
        let mut state = self.state.load(SeqCst);
        let (mine, index) = loop {
            if state & BROKEN != 0 {
                return BarrierWait::Broken;
            }
            let arrived = (state & ARRIVED) as u32;
            let last = arrived + 1 == self.parties;
            let next = if last {
                u64::from(generation(state).wrapping_add(1)) << 32
            } else {
                state + 1
            };
            match self.state.compare_exchange(state, next, SeqCst, SeqCst) {
                Ok(_) if last => {
                    self.wake_all();
                    return BarrierWait::Passed(arrived);
                }
                Ok(_) => break (generation(state), arrived),
                Err(now) => state = now,
            }
        };
        loop {
            let epoch = self.epoch.load(SeqCst);
            let state = self.state.load(SeqCst);
            if generation(state) != mine {
                let was_reset = self.reset_generation.load(SeqCst) == mine;
                return if was_reset {
                    BarrierWait::Broken
                } else {
                    BarrierWait::Passed(index)
                };
            }
            if state & BROKEN != 0 {
                return BarrierWait::Broken;
            }
            let left = remaining(deadline);
            if left == Some(Duration::ZERO) {
                if self.break_generation(mine) {
                    return BarrierWait::TimedOut;
                }
                // The last party came (or a reset, or a break) just before: look again.
                continue;
            }
            futex_wait(&self.epoch, epoch, left);
        }
    }

    /// Breaks generation `which` if it is current and whole; whether this call broke it.
    fn break_generation(&self, which: u32) -> bool {
        let mut state = self.state.load(SeqCst);
        let broke = loop {
            if generation(state) != which || state & BROKEN != 0 {
                break false;
            }
            match self
                .state
                .compare_exchange(state, state | BROKEN, SeqCst, SeqCst)
            {
                Ok(_) => break true,
                Err(now) => state = now,
            }
        };
        self.wake_all();
        broke
    }

    /// Breaks the barrier: waiters and later arrivals fail until `reset`.
    pub(crate) fn abort(&self) {
        self.break_generation(generation(self.state.load(SeqCst)));
    }

    /// Empties the barrier and repairs it; current waiters fail.
    pub(crate) fn reset(&self) {
        let mut state = self.state.load(SeqCst);
        while state & (ARRIVED | BROKEN) != 0 {
            self.reset_generation.store(generation(state), SeqCst);
            let next = u64::from(generation(state).wrapping_add(1)) << 32;
            match self.state.compare_exchange(state, next, SeqCst, SeqCst) {
                Ok(_) => {
                    self.wake_all();
                    return;
                }
                Err(now) => state = now, // someone arrived meanwhile: reset what is there now
            }
        }
    }

    pub(crate) fn n_waiting(&self) -> u32 {
        let state = self.state.load(SeqCst);
        if state & BROKEN != 0 {
            0
        } else {
            (state & ARRIVED) as u32
        }
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.state.load(SeqCst) & BROKEN != 0
    }

    fn wake_all(&self) {
        self.epoch.fetch_add(1, SeqCst);
        futex_wake_all(&self.epoch);
    }
}
