//! [`RawMutex`]: a lock that knows which process holds it, so that its holder's death is noticed;
//! [`RawRLock`]: the same, re-entrant for the thread that holds it.
//!
//! # States of `owner`
//!
//! | value | meaning |
//! |---|---|
//! | `0` | free |
//! | a packed [`ProcessId`] | held by that process |
//! | `ABANDONED` | free, released by a holder that panicked: the next taker is told, as after a death |
//! | `NOT_RECOVERABLE` | a holder died, the next one released it without repairing: unusable |
//!
//! `inconsistent` is 1 while the holder is one that took the lock from a dead holder (or from one
//! that panicked) and has not yet marked the data repaired; released so, the lock becomes
//! `NOT_RECOVERABLE` (the semantics of POSIX robust mutexes). A guard dropped while its thread
//! panics releases with [`RawMutex::release`], which abandons the lock: the update it protected
//! may be half done, as Rust's `std::sync::Mutex` says by poisoning. Waiters sleep on `wake`, bumped by a release that sees `waiters > 0`; a
//! sleeper wakes every [`LIVENESS_CHECK`] to see whether the holder still lives, and takes the lock
//! over (CAS from the dead holder's id) if not.
//!
//! No lost wake-up: a waiter increments `waiters` then reads `owner`; a releaser writes `owner` then
//! reads `waiters`, all SeqCst. Either the releaser sees the waiter and wakes it (the waiter read
//! `wake` before checking `owner` again, so a bump in between fails its futex wait at once), or the
//! waiter sees the lock free.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use crate::deadline::remaining;
use crate::shm::{Kind, SharedState};
use crate::sys::{ProcessId, futex_wait, futex_wake, thread_id};

const FREE: u64 = 0;
const NOT_RECOVERABLE: u64 = u64::MAX;
/// No packed process id is this: its pid would be 2^32 - 1, above any the kernel gives.
const ABANDONED: u64 = u64::MAX - 1;

/// How often a waiter checks that the holder still lives: the bound on noticing a dead holder.
pub(crate) const LIVENESS_CHECK: Duration = Duration::from_millis(20);

/// How many times a contended `lock` looks again before it sleeps.
const SPINS: u32 = 200;

/// How a lock was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// From a holder that released it.
    Clean,
    /// From a holder that died holding it: the data it protects may be half-changed.
    OwnerDied,
}

/// Why a lock was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Held by another (try), or still held at the deadline.
    Busy,
    /// Unusable: see `NOT_RECOVERABLE`.
    NotRecoverable,
}

#[repr(C)]
pub(crate) struct RawMutex {
    owner: AtomicU64,
    wake: AtomicU32,
    waiters: AtomicU32,
    inconsistent: AtomicU32,
}

// SAFETY: repr(C), atomics only, all-zero is the free state, alignment 8.
unsafe impl SharedState for RawMutex {
    const KIND: Kind = Kind::Lock;
}

impl RawMutex {
    pub(crate) const fn new() -> RawMutex {
        RawMutex {
            owner: AtomicU64::new(FREE),
            wake: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            inconsistent: AtomicU32::new(0),
        }
    }

    /// Takes the lock without waiting.
    pub(crate) fn try_lock(&self) -> Result<Acquired, Refused> {
        let me = ProcessId::own().to_u64();
        match self.owner.compare_exchange(FREE, me, SeqCst, SeqCst) {
            Ok(_) => Ok(Acquired::Clean),
            Err(NOT_RECOVERABLE) => Err(Refused::NotRecoverable),
            Err(ABANDONED) => self.take_abandoned(me).ok_or(Refused::Busy),
            Err(holder) => self.take_from_dead(holder, me).ok_or(Refused::Busy),
        }
    }

    /// Takes the lock, waiting until `deadline` (`None`: as long as it takes).
    #[inline]
    pub(crate) fn lock(&self, deadline: Option<Instant>) -> Result<Acquired, Refused> {
        let me = ProcessId::own().to_u64();
        if self
            .owner
            .compare_exchange(FREE, me, SeqCst, SeqCst)
            .is_ok()
        {
            return Ok(Acquired::Clean);
        }
        self.lock_contended(me, deadline)
    }

    /// [`lock`](Self::lock) when the lock was not free at once.
    #[cold]
    fn lock_contended(&self, me: u64, deadline: Option<Instant>) -> Result<Acquired, Refused> {
        // Critical sections are short: spin a little before paying for a sleep and a wake-up.
        for _ in 0..SPINS {
            std::hint::spin_loop();
            match self.owner.load(SeqCst) {
                FREE if self
                    .owner
                    .compare_exchange(FREE, me, SeqCst, SeqCst)
                    .is_ok() =>
                {
                    return Ok(Acquired::Clean);
                }
                ABANDONED => {
                    if let Some(taken) = self.take_abandoned(me) {
                        return Ok(taken);
                    }
                }
                _ => {}
            }
        }
        self.waiters.fetch_add(1, SeqCst);
        let taken = self.lock_slow(me, deadline);
        self.waiters.fetch_sub(1, SeqCst);
        taken
    }

    fn lock_slow(&self, me: u64, deadline: Option<Instant>) -> Result<Acquired, Refused> {
        loop {
            let holder = self.owner.load(SeqCst);
            match holder {
                FREE => {
                    if self
                        .owner
                        .compare_exchange(FREE, me, SeqCst, SeqCst)
                        .is_ok()
                    {
                        return Ok(Acquired::Clean);
                    }
                    continue;
                }
                NOT_RECOVERABLE => return Err(Refused::NotRecoverable),
                ABANDONED => {
                    if let Some(taken) = self.take_abandoned(me) {
                        return Ok(taken);
                    }
                    continue;
                }
                _ => {}
            }
            let seen = self.wake.load(SeqCst);
            if self.owner.load(SeqCst) != holder {
                continue;
            }
            let left = remaining(deadline);
            if left == Some(Duration::ZERO) {
                return Err(Refused::Busy);
            }
            let nap = left.map_or(LIVENESS_CHECK, |left| left.min(LIVENESS_CHECK));
            if !futex_wait(&self.wake, seen, Some(nap)) {
                if let Some(taken) = self.take_from_dead(holder, me) {
                    return Ok(taken);
                }
            }
        }
    }

    /// Takes the lock from `holder` if that process is dead.
    fn take_from_dead(&self, holder: u64, me: u64) -> Option<Acquired> {
        let dead = ProcessId::from_u64(holder).is_some_and(|p| !p.is_alive());
        if dead
            && self
                .owner
                .compare_exchange(holder, me, SeqCst, SeqCst)
                .is_ok()
        {
            self.inconsistent.store(1, SeqCst);
            return Some(Acquired::OwnerDied);
        }
        None
    }

    /// Takes the lock that a holder abandoned by panicking: the data it protects may be
    /// half-changed, as after a death.
    fn take_abandoned(&self, me: u64) -> Option<Acquired> {
        self.owner
            .compare_exchange(ABANDONED, me, SeqCst, SeqCst)
            .ok()?;
        self.inconsistent.store(1, SeqCst);
        Some(Acquired::OwnerDied)
    }

    /// Releases the lock (held by this process). Still inconsistent, it becomes unusable.
    #[inline]
    pub(crate) fn unlock(&self) {
        self.release_as(FREE);
    }

    /// Releases the lock as a guard does: abandoned if this thread is panicking (the next taker
    /// is told, as after a death), else free.
    #[inline]
    pub(crate) fn release(&self) {
        self.release_as(if std::thread::panicking() {
            ABANDONED
        } else {
            FREE
        });
    }

    #[inline]
    fn release_as(&self, next: u64) {
        let poisoned = self.inconsistent.load(SeqCst) != 0;
        self.owner
            .store(if poisoned { NOT_RECOVERABLE } else { next }, SeqCst);
        if self.waiters.load(SeqCst) != 0 {
            self.wake.fetch_add(1, SeqCst);
            futex_wake(&self.wake, if poisoned { u32::MAX } else { 1 });
        }
    }

    /// The holder declares the protected data repaired after [`Acquired::OwnerDied`].
    pub(crate) fn mark_consistent(&self) {
        self.inconsistent.store(0, SeqCst);
    }

    pub(crate) fn is_locked(&self) -> bool {
        !matches!(self.owner.load(SeqCst), FREE | ABANDONED)
    }

    /// Whether this process holds it (any of its threads).
    pub(crate) fn is_held_by_this_process(&self) -> bool {
        self.owner.load(SeqCst) == ProcessId::own().to_u64()
    }
}

/// A re-entrant lock: the thread that holds it may take it again; it is free once released as many
/// times. `owner_thread` and `count` are written only by the holding thread.
#[repr(C)]
pub(crate) struct RawRLock {
    mutex: RawMutex,
    owner_thread: AtomicU32,
    count: AtomicU32,
}

// SAFETY: repr(C), atomics only, all-zero is the free state.
unsafe impl SharedState for RawRLock {
    const KIND: Kind = Kind::RLock;
}

impl RawRLock {
    pub(crate) const fn new() -> RawRLock {
        RawRLock {
            mutex: RawMutex::new(),
            owner_thread: AtomicU32::new(0),
            count: AtomicU32::new(0),
        }
    }

    /// Whether the calling thread holds it.
    pub(crate) fn is_mine(&self) -> bool {
        self.mutex.is_held_by_this_process() && self.owner_thread.load(SeqCst) == thread_id()
    }

    /// Takes it (again, if this thread holds it); `try_only` never waits.
    pub(crate) fn lock(
        &self,
        try_only: bool,
        deadline: Option<Instant>,
    ) -> Result<Acquired, Refused> {
        if self.is_mine() {
            let count = self.count.load(SeqCst);
            self.count.store(
                count.checked_add(1).expect("RLock taken 2^32 times"),
                SeqCst,
            );
            return Ok(Acquired::Clean);
        }
        let taken = if try_only {
            self.mutex.try_lock()?
        } else {
            self.mutex.lock(deadline)?
        };
        self.owner_thread.store(thread_id(), SeqCst);
        self.count.store(1, SeqCst);
        Ok(taken)
    }

    /// Releases one level; false if the calling thread does not hold it. The last level goes as
    /// [`RawMutex::release`] does: abandoned if this thread is panicking.
    pub(crate) fn unlock(&self) -> bool {
        if !self.is_mine() {
            return false;
        }
        let count = self.count.load(SeqCst) - 1;
        self.count.store(count, SeqCst);
        if count == 0 {
            // Cleared before the release, so that no thread mistakes itself for the next holder.
            self.owner_thread.store(0, SeqCst);
            self.mutex.release();
        }
        true
    }

    pub(crate) fn mark_consistent(&self) {
        self.mutex.mark_consistent();
    }

    /// How many times the calling thread holds it.
    pub(crate) fn depth(&self) -> u32 {
        if self.is_mine() {
            self.count.load(SeqCst)
        } else {
            0
        }
    }
}
