//! [`Barrier`].

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::raw::{BarrierWait, MAX_PARTIES, Parties, RawBarrier};
use super::{BarrierTimeoutError, BrokenBarrier};
use crate::deadline;
use crate::shm::{Object, ShmError};

/// A meeting point for a fixed number of parties, across processes. Python's `Barrier`.
///
/// Each [`wait`](Self::wait) blocks until `parties` waits are under way, then all return, each with
/// a different index (the order of arrival, from 0). A wait that times out breaks the barrier, as do
/// [`abort`](Self::abort) and a [`reset`](Self::reset) during a wait: the waiters get
/// [`BrokenBarrier`], and so does every later wait until `reset`. So does a party's death: the
/// waiters notice a dead process among those that arrived (or were arriving) within a few tens of
/// milliseconds.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{Barrier, Process};
///
/// let barrier = Barrier::new(2)?;
/// let child = Process::spawn(barrier.clone(), |b: Barrier| b.wait().is_ok())?;
/// barrier.wait()?;
/// assert!(child.join()?);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Barrier {
    /// The state, then who arrived (see [`Parties`]).
    object: Object<RawBarrier, u64>,
}

impl Barrier {
    /// A barrier for `parties` waiters, 1 to 2^22 (each waits on a thread of its own, and a
    /// machine has at most 2^22 threads); another number is [`ShmError::InvalidArgument`] (Python
    /// raises `ValueError`).
    pub fn new(parties: usize) -> Result<Barrier, ShmError> {
        let parties = u32::try_from(parties)
            .ok()
            .filter(|&p| (1..=MAX_PARTIES).contains(&p))
            .ok_or(ShmError::InvalidArgument {
                reason: "a barrier takes 1 to 2^22 parties",
            })?;
        let words = parties as usize * Parties::WORDS_PER_PARTY;
        Ok(Barrier {
            object: Object::create_zeroed(RawBarrier::new(parties), words)?,
        })
    }

    fn raw(&self) -> &RawBarrier {
        self.object.state()
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize, BarrierTimeoutError> {
        match self.raw().wait(&Parties::of(&self.object), deadline) {
            BarrierWait::Passed(index) => Ok(index as usize),
            BarrierWait::Broken => Err(BarrierTimeoutError::Broken),
            BarrierWait::TimedOut => Err(BarrierTimeoutError::Timeout),
        }
    }

    /// Waits for all parties, as long as it takes; returns this waiter's arrival index.
    pub fn wait(&self) -> Result<usize, BrokenBarrier> {
        self.wait_until(None).map_err(|_| BrokenBarrier)
    }

    /// Waits at most `timeout` (`Duration::MAX`: as long as it takes). A timeout breaks the
    /// barrier, as in Python: this waiter gets [`BarrierTimeoutError::Timeout`], the others
    /// [`BrokenBarrier`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, BarrierTimeoutError> {
        self.wait_until(deadline::after(timeout))
    }

    /// Waits until `deadline`; passing it breaks the barrier (see
    /// [`wait_timeout`](Self::wait_timeout)).
    ///
    /// There is no `try_wait`: arriving cannot be undone, so a wait that may not block could only
    /// break the barrier.
    pub fn wait_deadline(&self, deadline: Instant) -> Result<usize, BarrierTimeoutError> {
        self.wait_until(Some(deadline))
    }

    /// Breaks the barrier: current and later waits fail until [`reset`](Self::reset).
    pub fn abort(&self) {
        self.raw().abort();
    }

    /// Empties and repairs the barrier; current waiters get [`BrokenBarrier`].
    pub fn reset(&self) {
        self.raw().reset();
    }

    /// How many waits it takes to pass.
    pub fn parties(&self) -> usize {
        self.raw().parties() as usize
    }

    /// How many are waiting now.
    pub fn n_waiting(&self) -> usize {
        self.raw().n_waiting() as usize
    }

    /// Whether it is broken.
    #[doc(alias = "broken")]
    pub fn is_broken(&self) -> bool {
        self.raw().is_broken()
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.is_broken())
            .finish()
    }
}
