//! Locks and friends that work across processes: [`Lock`], [`RLock`], [`Semaphore`],
//! [`BoundedSemaphore`], [`Condition`], [`Event`], [`Barrier`].
//!
//! Each lives in a small shared memory segment; clones are handles to the same primitive, and a
//! handle passed to a [`Process`](crate::Process) reaches the same one. Every blocking call comes as
//! a family: `acquire`, `try_acquire`, `acquire_timeout`, `acquire_deadline` (`wait`, ... likewise;
//! see [the crate's docs](crate#waiting) for the rule).
//!
//! Unlike Python's, a lock knows which process holds it: when that process dies holding it (even by
//! SIGKILL), the next acquirer gets [`AcquireError::OwnerDied`] with the guard, within
//! a bounded time, instead of waiting forever.

mod barrier;
mod condition;
mod error;
mod event;
mod lock;
#[allow(unsafe_code)] // the raw states in shared memory
pub(crate) mod raw;
mod semaphore;

pub use barrier::Barrier;
pub use condition::{Condition, ConditionGuard};
pub use error::{
    AcquireError, AcquireTimeoutError, BarrierTimeoutError, BrokenBarrier, LockFailure,
    ReleaseError, WaitError, WaitTimeoutError,
};
pub use event::Event;
pub use lock::{Lock, LockGuard, RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore};

use raw::{Acquired, Refused};

/// A lock taken, with the guard that holds it, or why it was not.
pub(crate) type Taken<G> = Result<(G, Acquired), Refused>;

/// The outcome of a blocking acquire as its error type.
pub(crate) fn acquired<G>(taken: Taken<G>) -> Result<G, AcquireError<G>> {
    match taken {
        Ok((guard, Acquired::Clean)) => Ok(guard),
        Ok((guard, Acquired::OwnerDied)) => Err(AcquireError::OwnerDied(guard)),
        Err(Refused::NotRecoverable) => Err(AcquireError::NotRecoverable),
        Err(Refused::Busy) => unreachable!("a wait without deadline ends holding the lock"),
    }
}

/// The outcome of an acquire with a deadline (`try_`: the deadline is now) as its error type.
pub(crate) fn timed<G>(taken: Taken<G>) -> Result<G, AcquireTimeoutError<G>> {
    match taken {
        Ok((guard, Acquired::Clean)) => Ok(guard),
        Ok((guard, Acquired::OwnerDied)) => Err(AcquireTimeoutError::OwnerDied(guard)),
        Err(Refused::NotRecoverable) => Err(AcquireTimeoutError::NotRecoverable),
        Err(Refused::Busy) => Err(AcquireTimeoutError::Timeout),
    }
}
