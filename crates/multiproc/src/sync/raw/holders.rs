//! [`Holders`]: which processes hold a joinable queue's items, so that the items of one that dies
//! before declaring them done are known lost, instead of counted unfinished forever.
//!
//! A slot per process that took items: how many it took, declared done, and lost (with its
//! death). What a process holds is `taken - done - lost`. Every change happens under the queue's
//! get lock, after the getters' counters are committed, so that:
//!
//! - `Σ taken == gets.items` and `Σ (done + lost) == gets.done`
//!
//! hold whenever the get lock is free. A holder killed between its commit and its slot's update
//! leaves a difference, which the next taker of the lock (told that its holder died) gives to the
//! slot the dead one was using ([`Holders::repair`]): `current` names it, written before any
//! change. Resolving a dead holder's items (counting them done, and lost) names its slot in
//! `resolving` first, so that a repair puts the difference where it belongs.
//!
//! At most [`TRACKED`] processes have a slot at once (a dead one's, once it holds nothing, is
//! taken over); the items of processes beyond that are counted in one shared slot, which is
//! never found dead: their loss goes unnoticed, as in Python.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::SeqCst;

use crate::sys::ProcessId;

/// Processes with a slot of their own, at most.
pub(crate) const TRACKED: usize = 64;

/// One process's items.
#[repr(C)]
struct Holder {
    /// The [`ProcessId`] (0: free; the shared slot's stays 0).
    process: AtomicU64,
    taken: AtomicU64,
    done: AtomicU64,
    lost: AtomicU64,
}

impl Holder {
    const fn new() -> Holder {
        Holder {
            process: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            done: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        }
    }

    /// Items taken and neither declared done nor lost.
    fn holds(&self) -> u64 {
        let taken = self.taken.load(SeqCst);
        taken.saturating_sub(self.done.load(SeqCst) + self.lost.load(SeqCst))
    }
}

/// The slots, and the bookkeeping of changes in progress (see the module's notes).
#[repr(C)]
pub(crate) struct Holders {
    /// 1 + the slot the get lock's holder changes, 0 for none.
    current: AtomicU64,
    /// 1 + the slot whose items are being counted lost, 0 for none.
    resolving: AtomicU64,
    /// Items lost that a `join` has reported.
    reported: AtomicU64,
    /// [`TRACKED`] slots, then the shared one.
    slots: [Holder; TRACKED + 1],
}

const SHARED: usize = TRACKED;

/// When this process last looked for a dead process's slot, in [`coarse_now`] seconds.
static LAST_SEARCH: AtomicU64 = AtomicU64::new(0);

/// Seconds since this process first asked, plus one (so that the first search is allowed).
fn coarse_now() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs()
        + 2
}

impl Holders {
    pub(crate) const fn new() -> Holders {
        Holders {
            current: AtomicU64::new(0),
            resolving: AtomicU64::new(0),
            reported: AtomicU64::new(0),
            slots: [const { Holder::new() }; TRACKED + 1],
        }
    }

    /// This process's slot (claimed if it has none: a free one, or a dead process's that holds
    /// nothing; else the shared one), recorded as the one the get lock's holder changes. The get
    /// lock is held.
    pub(crate) fn enter(&self) -> usize {
        let me = ProcessId::own();
        let slot = self.find(me).unwrap_or(SHARED);
        self.current.store(slot as u64 + 1, SeqCst);
        slot
    }

    fn find(&self, me: ProcessId) -> Option<usize> {
        let tracked = &self.slots[..TRACKED];
        if let Some(mine) = tracked
            .iter()
            .position(|s| s.process.load(SeqCst) == me.to_u64())
        {
            return Some(mine);
        }
        // A free slot, else one whose process died holding nothing (what it took, did and lost
        // stays counted: only the difference matters). Looking for the dead costs a read of /proc
        // each: a process finds none at most once a second, and uses the shared slot meanwhile.
        let reusable = tracked
            .iter()
            .position(|s| s.process.load(SeqCst) == 0)
            .or_else(|| {
                let now = coarse_now();
                let last = LAST_SEARCH.load(SeqCst);
                if now.saturating_sub(last) < 1
                    || LAST_SEARCH
                        .compare_exchange(last, now, SeqCst, SeqCst)
                        .is_err()
                {
                    return None;
                }
                tracked.iter().position(|s| {
                    s.holds() == 0
                        && ProcessId::from_u64(s.process.load(SeqCst))
                            .is_some_and(|p| !p.is_alive())
                })
            })?;
        self.slots[reusable].process.store(me.to_u64(), SeqCst);
        Some(reusable)
    }

    /// Records, after the commit, that `slot`'s process took `items` and declared `done` done.
    /// A process declaring done what it does not hold declares it for another holder (Python
    /// allows any process to call `task_done`).
    pub(crate) fn record(&self, slot: usize, items: u64, done: u64) {
        if items > 0 {
            self.slots[slot].taken.fetch_add(items, SeqCst);
        }
        for _ in 0..done {
            let holder = if self.slots[slot].holds() > 0 {
                slot
            } else {
                (0..=TRACKED)
                    .find(|&s| self.slots[s].holds() > 0)
                    .unwrap_or(slot)
            };
            self.slots[holder].done.fetch_add(1, SeqCst);
        }
    }

    /// After a get lock holder's death: gives the differences between the getters' counters
    /// (`items` taken, `done`) and the slots to the slot it was changing.
    pub(crate) fn repair(&self, items: u64, done: u64) {
        let sum = |f: fn(&Holder) -> u64| self.slots.iter().map(f).sum::<u64>();
        let taken = sum(|s| s.taken.load(SeqCst));
        let accounted = sum(|s| s.done.load(SeqCst) + s.lost.load(SeqCst));
        let current = self.current.load(SeqCst);
        let current = current.checked_sub(1).map_or(SHARED, |s| s as usize);
        if items > taken {
            self.slots[current].taken.fetch_add(items - taken, SeqCst);
        }
        if done > accounted {
            match self.resolving.load(SeqCst).checked_sub(1) {
                Some(dead) => self.slots[dead as usize]
                    .lost
                    .fetch_add(done - accounted, SeqCst),
                None => self.slots[current].done.fetch_add(done - accounted, SeqCst),
            };
        }
        self.resolving.store(0, SeqCst);
    }

    /// A slot whose process died holding items, and how many: to be counted lost.
    pub(crate) fn dead_holder(&self) -> Option<(usize, u64)> {
        self.slots[..TRACKED].iter().enumerate().find_map(|(i, s)| {
            let holds = s.holds();
            let dead = holds > 0
                && ProcessId::from_u64(s.process.load(SeqCst)).is_some_and(|p| !p.is_alive());
            dead.then_some((i, holds))
        })
    }

    /// Counts `items` of `slot` lost: `commit` publishes them as done in the getters' counters,
    /// between the marks that let a repair finish the job.
    pub(crate) fn resolve(&self, slot: usize, items: u64, commit: impl FnOnce()) {
        self.resolving.store(slot as u64 + 1, SeqCst);
        commit();
        self.slots[slot].lost.fetch_add(items, SeqCst);
        self.resolving.store(0, SeqCst);
    }

    /// The items lost and not yet reported, now marked reported: a `join` that ends tells them
    /// (one `join` does, if several end together).
    pub(crate) fn report_lost(&self) -> u64 {
        let lost: u64 = self.slots.iter().map(|s| s.lost.load(SeqCst)).sum();
        let reported = self.reported.load(SeqCst);
        if lost > reported
            && self
                .reported
                .compare_exchange(reported, lost, SeqCst, SeqCst)
                .is_ok()
        {
            lost - reported
        } else {
            0
        }
    }
}
