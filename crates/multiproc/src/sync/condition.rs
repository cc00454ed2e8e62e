//! [`Condition`].

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::raw::{Acquired, RawCondition, Refused};
use super::{AcquireError, AcquireTimeoutError, WaitError, WaitTimeoutError, acquired, timed};
use crate::deadline;
use crate::shm::{Object, ShmError};

/// A condition variable shared between processes, with its own lock. Python's `Condition`.
///
/// Take the lock with [`acquire`](Self::acquire); the guard's [`wait`](ConditionGuard::wait)
/// releases it, sleeps until [`notify_one`](Self::notify_one) or [`notify_all`](Self::notify_all),
/// and takes it back. As with every condition variable, wake-ups can be spurious: wait in a loop on
/// the state you expect, or use [`wait_while`](ConditionGuard::wait_while).
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{Condition, Process, Value};
///
/// let cond = Condition::new()?;
/// let ready = Value::new(0u8)?;
/// let child = Process::spawn((cond.clone(), ready.clone()), |(cond, ready): (Condition, Value<u8>)| {
///     let _guard = cond.acquire().expect("nobody died");
///     ready.set(1);
///     cond.notify_all();
/// })?;
/// let mut guard = cond.acquire().expect("nobody died");
/// guard.wait_while(|| ready.get() == 0)?;
/// drop(guard);
/// child.join()?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Condition {
    object: Object<RawCondition>,
}

/// Holds a [`Condition`]'s lock; waits on it.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a> {
    cond: &'a RawCondition,
    /// False after a wait found the lock not recoverable: nothing to release then.
    held: bool,
}

impl Condition {
    /// A new condition with a free lock.
    pub fn new() -> Result<Condition, ShmError> {
        Ok(Condition {
            object: Object::create(RawCondition::new(), &[])?,
        })
    }

    fn raw(&self) -> &RawCondition {
        self.object.state()
    }

    fn guard(&self) -> ConditionGuard<'_> {
        ConditionGuard {
            cond: self.raw(),
            held: true,
        }
    }

    /// Waits for the lock and takes it.
    pub fn acquire(&self) -> Result<ConditionGuard<'_>, AcquireError<ConditionGuard<'_>>> {
        acquired(self.raw().mutex.lock(None).map(|how| (self.guard(), how)))
    }

    /// Takes the lock if it is free now; [`AcquireTimeoutError::Timeout`] if another holds it.
    pub fn try_acquire(
        &self,
    ) -> Result<ConditionGuard<'_>, AcquireTimeoutError<ConditionGuard<'_>>> {
        timed(self.raw().mutex.try_lock().map(|how| (self.guard(), how)))
    }

    /// Waits at most `timeout` for the lock (`Duration::MAX`: as long as it takes).
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ConditionGuard<'_>, AcquireTimeoutError<ConditionGuard<'_>>> {
        self.acquire_until(deadline::after(timeout))
    }

    /// Waits until `deadline` for the lock.
    pub fn acquire_deadline(
        &self,
        deadline: Instant,
    ) -> Result<ConditionGuard<'_>, AcquireTimeoutError<ConditionGuard<'_>>> {
        self.acquire_until(Some(deadline))
    }

    fn acquire_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<ConditionGuard<'_>, AcquireTimeoutError<ConditionGuard<'_>>> {
        timed(
            self.raw()
                .mutex
                .lock(deadline)
                .map(|how| (self.guard(), how)),
        )
    }

    /// Wakes one waiter. Holding the lock is not required (Python requires it).
    #[doc(alias = "notify")]
    pub fn notify_one(&self) {
        self.raw().condvar().notify(false);
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.raw().condvar().notify(true);
    }
}

/// The waits release the lock, sleep until notified (or the deadline), and take the lock back
/// before they return, whatever happened meanwhile (but for `NotRecoverable`). There is no
/// `try_wait`: a notification only reaches a waiter that is already waiting.
impl ConditionGuard<'_> {
    /// Releases the lock, sleeps until notified, takes the lock back.
    pub fn wait(&mut self) -> Result<(), WaitError> {
        match self.wait_until(None) {
            Ok(()) => Ok(()),
            Err(WaitTimeoutError::Timeout) => unreachable!("a wait without deadline"),
            Err(WaitTimeoutError::OwnerDied) => Err(WaitError::OwnerDied),
            Err(WaitTimeoutError::NotRecoverable) => Err(WaitError::NotRecoverable),
        }
    }

    /// Like [`wait`](Self::wait), sleeping at most `timeout` (`Duration::MAX`: as long as it
    /// takes); [`WaitTimeoutError::Timeout`] if no notification came (the lock is held again).
    /// Python: `wait(timeout)`, which returns false where this is `Timeout`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<(), WaitTimeoutError> {
        self.wait_until(deadline::after(timeout))
    }

    /// Like [`wait`](Self::wait), sleeping until `deadline`.
    pub fn wait_deadline(&mut self, deadline: Instant) -> Result<(), WaitTimeoutError> {
        self.wait_until(Some(deadline))
    }

    /// Waits as long as `condition` holds (checked with the lock held).
    #[doc(alias = "wait_for")]
    pub fn wait_while(&mut self, mut condition: impl FnMut() -> bool) -> Result<(), WaitError> {
        while condition() {
            self.wait()?;
        }
        Ok(())
    }

    /// Waits as long as `condition` holds, at most `timeout`; [`WaitTimeoutError::Timeout`] if it
    /// still held when the time was up. Python's `wait_for(predicate, timeout)`.
    pub fn wait_timeout_while(
        &mut self,
        timeout: Duration,
        condition: impl FnMut() -> bool,
    ) -> Result<(), WaitTimeoutError> {
        self.wait_while_until(deadline::after(timeout), condition)
    }

    /// Waits as long as `condition` holds, until `deadline`.
    pub fn wait_deadline_while(
        &mut self,
        deadline: Instant,
        condition: impl FnMut() -> bool,
    ) -> Result<(), WaitTimeoutError> {
        self.wait_while_until(Some(deadline), condition)
    }

    fn wait_while_until(
        &mut self,
        deadline: Option<Instant>,
        condition: impl FnMut() -> bool,
    ) -> Result<(), WaitTimeoutError> {
        deadline::wait_while(
            deadline,
            condition,
            |deadline| self.wait_until(deadline),
            WaitTimeoutError::is_timeout,
        )
    }

    fn wait_until(&mut self, deadline: Option<Instant>) -> Result<(), WaitTimeoutError> {
        if !self.held {
            return Err(WaitTimeoutError::NotRecoverable);
        }
        let condvar = self.cond.condvar();
        let seen = condvar.prepare_wait();
        self.cond.mutex.unlock();
        let notified = condvar.wait(seen, deadline);
        match self.cond.mutex.lock(None) {
            Ok(Acquired::Clean) if notified => Ok(()),
            Ok(Acquired::Clean) => Err(WaitTimeoutError::Timeout),
            Ok(Acquired::OwnerDied) => Err(WaitTimeoutError::OwnerDied),
            Err(Refused::NotRecoverable) => {
                self.held = false;
                Err(WaitTimeoutError::NotRecoverable)
            }
            Err(Refused::Busy) => unreachable!("a wait without deadline ends holding the lock"),
        }
    }

    /// See [`LockGuard::mark_consistent`](crate::LockGuard::mark_consistent).
    pub fn mark_consistent(&self) {
        self.cond.mutex.mark_consistent();
    }
}

impl Drop for ConditionGuard<'_> {
    /// Releases the lock; dropped while its thread panics, abandons it, as a [`LockGuard`] does.
    ///
    /// [`LockGuard`]: crate::LockGuard
    fn drop(&mut self) {
        if self.held {
            self.cond.mutex.release();
        }
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition").finish_non_exhaustive()
    }
}

impl fmt::Debug for ConditionGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConditionGuard")
    }
}
