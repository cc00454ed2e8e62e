//! [`Condition`].

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::raw::{Acquired, RawCondition, Refused};
use super::{
    AcquireError, AcquireTimeoutError, TryAcquireError, WaitError, acquired, deadline_after, timed,
    tried,
};
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
/// let ready = Value::new(false)?;
/// let child = Process::spawn((cond.clone(), ready.clone()), |(cond, ready): (Condition, Value<bool>)| {
///     let _guard = cond.acquire().expect("nobody died");
///     ready.set(true);
///     cond.notify_all();
/// })?;
/// let mut guard = cond.acquire().expect("nobody died");
/// guard.wait_while(|| !ready.get())?;
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

    /// Takes the lock if it is free.
    pub fn try_acquire(&self) -> Result<ConditionGuard<'_>, TryAcquireError<ConditionGuard<'_>>> {
        tried(self.raw().mutex.try_lock().map(|how| (self.guard(), how)))
    }

    /// Waits at most `timeout` for the lock.
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ConditionGuard<'_>, AcquireTimeoutError<ConditionGuard<'_>>> {
        timed(
            self.raw()
                .mutex
                .lock(deadline_after(timeout))
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

impl ConditionGuard<'_> {
    /// Releases the lock, sleeps until notified, takes the lock back.
    pub fn wait(&mut self) -> Result<(), WaitError> {
        self.wait_until(None).map(drop)
    }

    /// Like [`wait`](Self::wait), sleeping at most `timeout`; returns false if it timed out (the
    /// lock is held again either way).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<bool, WaitError> {
        self.wait_until(deadline_after(timeout))
    }

    /// Waits as long as `condition` holds (checked with the lock held).
    #[doc(alias = "wait_for")]
    pub fn wait_while(&mut self, mut condition: impl FnMut() -> bool) -> Result<(), WaitError> {
        while condition() {
            self.wait()?;
        }
        Ok(())
    }

    /// Waits as long as `condition` holds, at most `timeout`; returns false if it still held when
    /// the time was up. Python's `wait_for(predicate, timeout)`.
    pub fn wait_timeout_while(
        &mut self,
        timeout: Duration,
        mut condition: impl FnMut() -> bool,
    ) -> Result<bool, WaitError> {
        let deadline = deadline_after(timeout);
        while condition() {
            if !self.wait_until(deadline)? {
                return Ok(!condition());
            }
        }
        Ok(true)
    }

    fn wait_until(&mut self, deadline: Option<Instant>) -> Result<bool, WaitError> {
        if !self.held {
            return Err(WaitError::NotRecoverable);
        }
        let condvar = self.cond.condvar();
        let seen = condvar.prepare_wait();
        self.cond.mutex.unlock();
        let notified = condvar.wait(seen, deadline);
        match self.cond.mutex.lock(None) {
            Ok(Acquired::Clean) => Ok(notified),
            Ok(Acquired::OwnerDied) => Err(WaitError::OwnerDied),
            Err(Refused::NotRecoverable) => {
                self.held = false;
                Err(WaitError::NotRecoverable)
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
    fn drop(&mut self) {
        if self.held {
            self.cond.mutex.unlock();
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
