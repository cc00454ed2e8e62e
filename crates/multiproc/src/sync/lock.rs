//! [`Lock`] and [`RLock`].

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::raw::{RawMutex, RawRLock};
use super::{AcquireError, AcquireTimeoutError, ReleaseError, acquired, timed};
use crate::deadline;
use crate::shm::{Object, ShmError};

/// A lock shared between processes. [`acquire`](Self::acquire) returns a guard; dropping it
/// releases the lock.
///
/// If the holding process dies (even by SIGKILL), the next acquirer gets
/// [`AcquireError::OwnerDied`] carrying the guard, within a bounded time (tens of milliseconds):
/// it holds the lock, repairs what the lock protects, and calls [`LockGuard::mark_consistent`].
/// Python's `multiprocessing.Lock` deadlocks forever there. A holder that panics (its guard
/// dropped while its thread unwinds) is taken for dead in the same way: the update it protected
/// may be half done, as Rust's `std::sync::Mutex` says by poisoning.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{Lock, Process};
///
/// let lock = Lock::new()?;
/// let child = Process::spawn(lock.clone(), |lock: Lock| {
///     let _guard = lock.acquire().expect("nobody died");
///     // ... work under the lock ...
/// })?;
/// child.join()?;
/// assert!(!lock.is_locked());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Lock {
    object: Object<RawMutex>,
}

/// Holds a [`Lock`]; releases it when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    mutex: &'a RawMutex,
}

impl Lock {
    /// A new, free lock.
    pub fn new() -> Result<Lock, ShmError> {
        Ok(Lock {
            object: Object::create(RawMutex::new(), &[])?,
        })
    }

    fn raw(&self) -> &RawMutex {
        self.object.state()
    }

    fn guard(&self) -> LockGuard<'_> {
        LockGuard { mutex: self.raw() }
    }

    /// Waits for the lock and takes it.
    #[inline]
    pub fn acquire(&self) -> Result<LockGuard<'_>, AcquireError<LockGuard<'_>>> {
        acquired(self.raw().lock(None).map(|how| (self.guard(), how)))
    }

    /// Takes the lock if it is free now; [`AcquireTimeoutError::Timeout`] if another holds it.
    pub fn try_acquire(&self) -> Result<LockGuard<'_>, AcquireTimeoutError<LockGuard<'_>>> {
        timed(self.raw().try_lock().map(|how| (self.guard(), how)))
    }

    /// Waits at most `timeout` for the lock (`Duration::MAX`: as long as it takes).
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<LockGuard<'_>, AcquireTimeoutError<LockGuard<'_>>> {
        self.acquire_until(deadline::after(timeout))
    }

    /// Waits until `deadline` for the lock.
    pub fn acquire_deadline(
        &self,
        deadline: Instant,
    ) -> Result<LockGuard<'_>, AcquireTimeoutError<LockGuard<'_>>> {
        self.acquire_until(Some(deadline))
    }

    fn acquire_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<LockGuard<'_>, AcquireTimeoutError<LockGuard<'_>>> {
        timed(self.raw().lock(deadline).map(|how| (self.guard(), how)))
    }

    /// Whether some process holds it (a snapshot).
    pub fn is_locked(&self) -> bool {
        self.raw().is_locked()
    }
}

impl LockGuard<'_> {
    /// After [`AcquireError::OwnerDied`]: declares the protected data repaired, so that releasing
    /// the lock leaves it usable. Without this the lock becomes not recoverable when released.
    pub fn mark_consistent(&self) {
        self.mutex.mark_consistent();
    }
}

impl Drop for LockGuard<'_> {
    /// Releases the lock; dropped while its thread panics, abandons it (see [`Lock`]).
    #[inline]
    fn drop(&mut self) {
        self.mutex.release();
    }
}

/// A re-entrant lock shared between processes: the thread that holds it may acquire it again, and
/// it is free once every guard is dropped (or [`release`](Self::release)d). Python's `RLock`.
///
/// A holder's death gives [`AcquireError::OwnerDied`] as with [`Lock`].
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::RLock;
///
/// let lock = RLock::new()?;
/// let outer = lock.acquire().expect("free");
/// let inner = lock.acquire().expect("same thread: re-entered");
/// drop(inner);
/// drop(outer);
/// // A thread that does not hold it cannot release it (Python: AssertionError).
/// assert!(lock.release().is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RLock {
    object: Object<RawRLock>,
}

/// Holds one level of an [`RLock`]; releases it when dropped. Stays on the thread that took it.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RawRLock,
    _not_send: PhantomData<*const ()>,
}

impl RLock {
    /// A new, free re-entrant lock.
    pub fn new() -> Result<RLock, ShmError> {
        Ok(RLock {
            object: Object::create(RawRLock::new(), &[])?,
        })
    }

    fn raw(&self) -> &RawRLock {
        self.object.state()
    }

    fn guard(&self) -> RLockGuard<'_> {
        RLockGuard {
            lock: self.raw(),
            _not_send: PhantomData,
        }
    }

    /// Waits for the lock and takes it (at once, if this thread holds it already).
    pub fn acquire(&self) -> Result<RLockGuard<'_>, AcquireError<RLockGuard<'_>>> {
        acquired(self.raw().lock(false, None).map(|how| (self.guard(), how)))
    }

    /// Takes the lock if it is free or held by this thread; [`AcquireTimeoutError::Timeout`] if
    /// another holds it.
    pub fn try_acquire(&self) -> Result<RLockGuard<'_>, AcquireTimeoutError<RLockGuard<'_>>> {
        timed(self.raw().lock(true, None).map(|how| (self.guard(), how)))
    }

    /// Waits at most `timeout` for the lock (`Duration::MAX`: as long as it takes).
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<RLockGuard<'_>, AcquireTimeoutError<RLockGuard<'_>>> {
        self.acquire_until(deadline::after(timeout))
    }

    /// Waits until `deadline` for the lock.
    pub fn acquire_deadline(
        &self,
        deadline: Instant,
    ) -> Result<RLockGuard<'_>, AcquireTimeoutError<RLockGuard<'_>>> {
        self.acquire_until(Some(deadline))
    }

    fn acquire_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<RLockGuard<'_>, AcquireTimeoutError<RLockGuard<'_>>> {
        timed(
            self.raw()
                .lock(false, deadline)
                .map(|how| (self.guard(), how)),
        )
    }

    /// Releases one level held by the calling thread, Python style: for a level whose guard was
    /// given up with `std::mem::forget`. [`ReleaseError::NotOwner`] if this thread does not hold it.
    pub fn release(&self) -> Result<(), ReleaseError> {
        if self.raw().unlock() {
            Ok(())
        } else {
            Err(ReleaseError::NotOwner)
        }
    }

    /// How many times the calling thread holds it (0: not at all).
    pub fn depth(&self) -> u32 {
        self.raw().depth()
    }
}

impl RLockGuard<'_> {
    /// See [`LockGuard::mark_consistent`].
    pub fn mark_consistent(&self) {
        self.lock.mark_consistent();
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        // False only if the level was already given back with `RLock::release`.
        let _ = self.lock.unlock();
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.is_locked())
            .finish()
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("depth_here", &self.depth())
            .finish()
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockGuard")
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RLockGuard")
    }
}
