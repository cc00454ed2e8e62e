//! [`RawBarrier`]: `parties` waiters meet; the last to arrive releases the others.
//!
//! `state` packs `generation << 32 | broken << 31 | arrived`. The last arrival starts the next
//! generation (arrived 0). A timeout or `abort` sets `broken` in the current generation: its waiters
//! and every later arrival fail until `reset`, which starts a new generation and records the one it
//! ended in `reset_generation`, so that the waiters it released know they were broken, not passed.
//! Waiters sleep on `epoch`, bumped at each of these changes.
//!
//! # Dead parties
//!
//! Each arrival records who it is in the [`Parties`] after the state, at its arrival index, with
//! its generation, one word: `pid << 32 | generation`. It records itself *before* it counts
//! itself: it claims the word of the index it is about to take (a CAS from what it saw), counts
//! itself (the CAS on `state`), and if the count went to another, puts the word back as it found
//! it (a CAS from its own). So a counted party is always on record, even one killed the instant
//! after it counted; a word may name for a moment an arrival that lost the race for its index,
//! and names it for good only if that one dies in between: a party that dies arriving.
//!
//! A sleeping waiter wakes every [`LIVENESS_CHECK`] and checks one other party, the next by
//! arrival index (cyclically): if that process is dead, it breaks the generation. Some survivor is
//! always just before a dead party in that order, so a death is noticed within an interval or two,
//! at the cost of one check per waiter per interval, whatever the number of parties.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use super::mutex::LIVENESS_CHECK;
use crate::deadline::remaining;
use crate::shm::{Kind, Object, SharedState};
use crate::sys::{futex_wait, futex_wake_all, own_pid, process_runs};

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

/// The most parties a barrier takes: each waits on a thread of its own, and a machine has at most
/// 2^22 threads (Linux's ceiling on `pid_max`).
pub(crate) const MAX_PARTIES: u32 = 1 << 22;

/// Who arrived at a barrier: for each arrival index, one word after the state,
/// `pid << 32 | generation` of the arrival (0: none yet).
pub(crate) struct Parties<'a> {
    words: *mut u64,
    len: usize,
    _object: PhantomData<&'a Object<RawBarrier, u64>>,
}

impl<'a> Parties<'a> {
    /// The words each arrival takes.
    pub(crate) const WORDS_PER_PARTY: usize = 1;

    /// The parties of the barrier `object`: the words after its state, which nothing but
    /// `Parties` uses, atomically, in every process.
    pub(crate) fn of(object: &'a Object<RawBarrier, u64>) -> Parties<'a> {
        let (words, len) = object.values();
        Parties {
            words,
            len,
            _object: PhantomData,
        }
    }

    /// Word `index`, if there is one.
    fn word(&self, index: u32) -> Option<&AtomicU64> {
        let k = index as usize;
        // SAFETY: in bounds (checked), aligned (the values of an `Object` are aligned for their
        // type), in the mapping that the borrowed object keeps for 'a, and accessed only
        // atomically, by `Parties`, in every process (see `of`).
        (k < self.len).then(|| unsafe { AtomicU64::from_ptr(self.words.add(k)) })
    }

    /// This process, arriving in `generation`, as a word.
    fn me(generation: u32) -> u64 {
        u64::from(own_pid()) << 32 | u64::from(generation)
    }

    /// What word `index` holds now.
    fn seen(&self, index: u32) -> u64 {
        self.word(index).map_or(0, |w| w.load(SeqCst))
    }

    /// Claims word `index` for this process in `generation`, if it still holds `seen`.
    fn claim(&self, index: u32, seen: u64, generation: u32) -> bool {
        self.word(index).is_none_or(|w| {
            w.compare_exchange(seen, Self::me(generation), SeqCst, SeqCst)
                .is_ok()
        })
    }

    /// Puts word `index` back to `seen`, if it still holds this process's claim.
    fn unclaim(&self, index: u32, seen: u64, generation: u32) {
        if let Some(w) = self.word(index) {
            let _ = w.compare_exchange(Self::me(generation), seen, SeqCst, SeqCst);
        }
    }

    /// Records this process as arrival `index` of `generation` (after it counted itself: a
    /// racer's claim may be in the word meanwhile).
    fn record(&self, index: u32, generation: u32) {
        if let Some(w) = self.word(index) {
            w.store(Self::me(generation), SeqCst);
        }
    }

    /// The process on record as arrival `index` of `generation`, if any.
    fn party(&self, index: u32, generation: u32) -> Option<u32> {
        let word = self.seen(index);
        let pid = (word >> 32) as u32;
        (pid != 0 && word as u32 == generation).then_some(pid)
    }
}

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

    /// Waits for the other parties until `deadline`; a timeout breaks the barrier, and so does a
    /// dead party (see the module's notes).
    pub(crate) fn wait(&self, parties: &Parties<'_>, deadline: Option<Instant>) -> BarrierWait {
        let mut state = self.state.load(SeqCst);
        let (mine, index) = loop {
            if state & BROKEN != 0 {
                return BarrierWait::Broken;
            }
            let arrived = (state & ARRIVED) as u32;
            let last = arrived + 1 == self.parties;
            if last {
                let next = u64::from(generation(state).wrapping_add(1)) << 32;
                match self.state.compare_exchange(state, next, SeqCst, SeqCst) {
                    Ok(_) => {
                        self.wake_all();
                        return BarrierWait::Passed(arrived);
                    }
                    Err(now) => state = now,
                }
                continue;
            }
            // On record first, then counted (see the module's notes).
            let round = generation(state);
            let seen = parties.seen(arrived);
            if !parties.claim(arrived, seen, round) {
                state = self.state.load(SeqCst);
                continue;
            }
            match self
                .state
                .compare_exchange(state, state + 1, SeqCst, SeqCst)
            {
                Ok(_) => break (round, arrived),
                Err(now) => {
                    parties.unclaim(arrived, seen, round);
                    state = now;
                }
            }
        };
        parties.record(index, mine);
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
            let nap = left.map_or(LIVENESS_CHECK, |left| left.min(LIVENESS_CHECK));
            if !futex_wait(&self.epoch, epoch, Some(nap))
                && self.next_party_died(parties, mine, index, state)
                && self.break_generation(mine)
            {
                return BarrierWait::Broken;
            }
        }
    }

    /// Whether the party after arrival `index` (cyclically, among those counted in `state`) is a
    /// process that died.
    fn next_party_died(
        &self,
        parties: &Parties<'_>,
        generation: u32,
        index: u32,
        state: u64,
    ) -> bool {
        let arrived = (state & ARRIVED) as u32;
        if arrived < 2 {
            return false;
        }
        let next = (index + 1) % arrived;
        parties
            .party(next, generation)
            .is_some_and(|pid| pid != own_pid() && !process_runs(pid))
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
