//! What can go wrong taking, waiting on and releasing the synchronization primitives.

use std::fmt;

use serde::{Deserialize, Serialize};

/// [`Lock::acquire`](crate::Lock::acquire) (and the same on [`RLock`](crate::RLock) and
/// [`Condition`](crate::Condition)) did not give a clean guard.
///
/// It carries the guard, which borrows the lock, so it cannot itself go up into a
/// `Box<dyn Error>` (that needs `'static`). Take the guard out ([`into_guard`](Self::into_guard))
/// to repair, or drop it with a clear error, [`LockFailure`], which goes up anywhere:
///
/// ```
/// # multiproc::init();
/// fn work(lock: &multiproc::Lock) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
///     let _held = lock.acquire().map_err(multiproc::LockFailure::from)?;
///     Ok(())
/// }
/// work(&multiproc::Lock::new().unwrap()).unwrap();
/// ```
pub enum AcquireError<G> {
    /// The previous holder died holding the lock. You hold it now: the guard is here. Repair what
    /// the lock protects, then call `mark_consistent()` on the guard; released without that, the
    /// lock becomes [`NotRecoverable`](Self::NotRecoverable) (as POSIX robust mutexes do).
    OwnerDied(G),
    /// A holder died, and the one after it released the lock without marking it consistent: the
    /// lock can no longer be used.
    NotRecoverable,
}

/// `try_acquire`, `acquire_timeout` or `acquire_deadline` did not give a clean guard. `try_acquire`
/// is a wait whose deadline has already come: it says [`Timeout`](Self::Timeout) when another
/// holds the lock, as the timed forms do when they held it until the deadline.
#[doc(alias = "TryAcquireError")]
#[doc(alias = "WouldBlock")]
pub enum AcquireTimeoutError<G> {
    /// Still held by someone else at the deadline (for `try_acquire`: now).
    Timeout,
    /// See [`AcquireError::OwnerDied`].
    OwnerDied(G),
    /// See [`AcquireError::NotRecoverable`].
    NotRecoverable,
}

macro_rules! guard_error_impls {
    ($name:ident { $($unit:ident => $text:literal),* }) => {
        impl<G> $name<G> {
            /// The guard, when the lock was taken from a dead holder.
            pub fn into_guard(self) -> Option<G> {
                match self {
                    $name::OwnerDied(guard) => Some(guard),
                    _ => None,
                }
            }

            /// Whether the previous holder died holding the lock.
            pub fn is_owner_died(&self) -> bool {
                matches!(self, $name::OwnerDied(_))
            }
        }

        impl<G> fmt::Debug for $name<G> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $name::OwnerDied(_) => f.write_str("OwnerDied(..)"),
                    $name::NotRecoverable => f.write_str("NotRecoverable"),
                    $($name::$unit => f.write_str(stringify!($unit)),)*
                }
            }
        }

        impl<G> fmt::Display for $name<G> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    $name::OwnerDied(_) => "the previous holder died holding the lock; it is yours now",
                    $name::NotRecoverable => "the lock is not recoverable: a holder died and it was never marked consistent",
                    $($name::$unit => $text,)*
                })
            }
        }

        impl<G> std::error::Error for $name<G> {}
    };
}

guard_error_impls!(AcquireError {});
guard_error_impls!(AcquireTimeoutError { Timeout => "the lock was still held at the deadline" });

impl<G> AcquireTimeoutError<G> {
    /// Whether another holder kept the lock until the deadline.
    pub fn is_timeout(&self) -> bool {
        matches!(self, AcquireTimeoutError::Timeout)
    }
}

/// A [`Condition`](crate::Condition) wait woke up, but taking the lock back went wrong. On
/// `OwnerDied` the guard holds the lock again, inconsistent: repair, then `mark_consistent()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WaitError {
    /// See [`AcquireError::OwnerDied`]; the guard that waited holds the lock.
    #[error("the holder of the condition's lock died; the lock is yours again")]
    OwnerDied,
    /// See [`AcquireError::NotRecoverable`].
    #[error("the condition's lock is not recoverable")]
    NotRecoverable,
}

/// A timed [`Condition`](crate::Condition) wait (`wait_timeout`, `wait_deadline` and their
/// `_while` forms) ended without its notification, or taking the lock back went wrong. The guard
/// holds the lock again in every case but `NotRecoverable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WaitTimeoutError {
    /// No notification came before the deadline (for the `_while` forms: the condition still
    /// held). The lock is held again.
    #[error("no notification came before the deadline")]
    Timeout,
    /// See [`WaitError::OwnerDied`].
    #[error("the holder of the condition's lock died; the lock is yours again")]
    OwnerDied,
    /// See [`WaitError::NotRecoverable`].
    #[error("the condition's lock is not recoverable")]
    NotRecoverable,
}

impl WaitTimeoutError {
    /// Whether the deadline came first.
    pub fn is_timeout(&self) -> bool {
        matches!(self, WaitTimeoutError::Timeout)
    }
}

impl From<WaitError> for WaitTimeoutError {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::OwnerDied => WaitTimeoutError::OwnerDied,
            WaitError::NotRecoverable => WaitTimeoutError::NotRecoverable,
        }
    }
}

/// A release that is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ReleaseError {
    /// A [`BoundedSemaphore`](crate::BoundedSemaphore) released more times than acquired (or a
    /// [`Semaphore`](crate::Semaphore) past `u32::MAX`). Python: `ValueError`.
    #[error("semaphore or lock released too many times")]
    TooManyReleases,
    /// An [`RLock`](crate::RLock) released by a thread that does not hold it. Python:
    /// `AssertionError`.
    #[error("cannot release an RLock that this thread does not hold")]
    NotOwner,
}

/// A [`Barrier`](crate::Barrier) wait failed: the barrier is broken (a wait timed out, or `abort`
/// or `reset` was called). It stays broken until `reset`. Python: `BrokenBarrierError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("the barrier is broken")]
#[doc(alias = "BrokenBarrierError")]
pub struct BrokenBarrier;

/// A timed [`Barrier`](crate::Barrier) wait failed. Either way the barrier is broken until
/// `reset`, as Python's is after a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum BarrierTimeoutError {
    /// This wait reached its deadline before every party came; that broke the barrier for the
    /// others (they get [`BrokenBarrier`]).
    #[error("the barrier wait timed out, which broke the barrier")]
    Timeout,
    /// The barrier is or became broken by something else: another waiter's timeout or death,
    /// `abort`, or a `reset` during the wait.
    #[error("the barrier is broken")]
    Broken,
}

impl BarrierTimeoutError {
    /// Whether this wait's deadline came first.
    pub fn is_timeout(&self) -> bool {
        matches!(self, BarrierTimeoutError::Timeout)
    }
}

impl From<BrokenBarrier> for BarrierTimeoutError {
    fn from(_: BrokenBarrier) -> Self {
        BarrierTimeoutError::Broken
    }
}

/// A lock failure without its guard, as it is kept in [`multiproc::Error`](crate::Error). Converting
/// drops an `OwnerDied` guard unrepaired, which makes the lock not recoverable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LockFailure {
    /// See [`AcquireError::OwnerDied`].
    #[error("the previous holder died holding the lock")]
    OwnerDied,
    /// See [`AcquireError::NotRecoverable`].
    #[error("the lock is not recoverable")]
    NotRecoverable,
    /// See [`AcquireTimeoutError::Timeout`] and [`WaitTimeoutError::Timeout`].
    #[error("the lock was still held at the deadline, or no notification came")]
    Timeout,
}

impl<G> From<AcquireError<G>> for LockFailure {
    fn from(e: AcquireError<G>) -> Self {
        match e {
            AcquireError::OwnerDied(_) => LockFailure::OwnerDied,
            AcquireError::NotRecoverable => LockFailure::NotRecoverable,
        }
    }
}

impl<G> From<AcquireTimeoutError<G>> for LockFailure {
    fn from(e: AcquireTimeoutError<G>) -> Self {
        match e {
            AcquireTimeoutError::OwnerDied(_) => LockFailure::OwnerDied,
            AcquireTimeoutError::NotRecoverable => LockFailure::NotRecoverable,
            AcquireTimeoutError::Timeout => LockFailure::Timeout,
        }
    }
}

impl From<WaitError> for LockFailure {
    fn from(e: WaitError) -> Self {
        match e {
            WaitError::OwnerDied => LockFailure::OwnerDied,
            WaitError::NotRecoverable => LockFailure::NotRecoverable,
        }
    }
}

impl From<WaitTimeoutError> for LockFailure {
    fn from(e: WaitTimeoutError) -> Self {
        match e {
            WaitTimeoutError::Timeout => LockFailure::Timeout,
            WaitTimeoutError::OwnerDied => LockFailure::OwnerDied,
            WaitTimeoutError::NotRecoverable => LockFailure::NotRecoverable,
        }
    }
}
