//! [`ConditionProxy`]: a condition variable that lives in the manager, with a recursive lock.

use std::time::{Duration, Instant};

use rmpv::Value;

use super::lock::acquire_family;
use super::{deadline_arg, forever, proxy};
use crate::deadline;
use crate::manager::ManagerError;
use crate::manager::protocol::{Kind, Op};

proxy! {
    /// A condition variable that lives in a [`Manager`](crate::Manager), with a recursive lock of
    /// its own (owned by the handle, as an [`RLockProxy`](crate::RLockProxy)'s):
    /// [`Condition`](crate::Condition)'s methods. Python: `manager.Condition()`.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// use multiproc::{ConditionProxy, Manager, Process, ValueProxy};
    ///
    /// let manager = Manager::start()?;
    /// let (ready, flag) = (manager.condition()?, manager.value(&false)?);
    /// let child = Process::spawn((ready.clone(), flag.clone()), |(ready, flag): (ConditionProxy, ValueProxy<bool>)| {
    ///     let _held = ready.acquire().unwrap();
    ///     flag.set(&true).unwrap();
    ///     ready.notify_all().unwrap();
    /// })?;
    /// let mut held = ready.acquire()?;
    /// held.wait_while(|| !flag.get().unwrap())?;
    /// drop(held);
    /// child.join()?;
    /// # Ok(())
    /// # }
    /// ```
    pub struct ConditionProxy = Kind::Condition;
}

/// A [`ConditionProxy`]'s lock, held; dropping it releases one acquisition.
#[must_use = "the lock is released when the guard is dropped"]
pub struct ConditionProxyGuard<'a> {
    proxy: &'a ConditionProxy,
    owner_died: bool,
    /// (A wait takes the lock anew: a condition's guard gives no token.)
    #[allow(dead_code)]
    fence: u64,
}

acquire_family!(ConditionProxy, ConditionProxyGuard);

impl ConditionProxy {
    /// Wakes the longest waiting waiter, if any. Holding the lock is not required (Python
    /// requires it).
    #[doc(alias = "notify")]
    pub fn notify_one(&self) -> Result<(), ManagerError> {
        self.notify(Value::from(1))
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) -> Result<(), ManagerError> {
        self.notify(Value::Nil)
    }

    fn notify(&self, count: Value) -> Result<(), ManagerError> {
        self.handle.call(Op::ConditionNotify, vec![count]).map(drop)
    }
}

/// The waits release the lock (every acquisition of this handle), wait to be notified (or the
/// deadline), and take the lock back as it was before they return, whatever happened meanwhile.
/// There is no `try_wait`, as on [`ConditionGuard`](crate::ConditionGuard).
impl ConditionProxyGuard<'_> {
    /// Releases the lock, waits to be notified, then takes the lock back.
    pub fn wait(&mut self) -> Result<(), ManagerError> {
        forever(self.wait_until(None))
    }

    /// [`wait`](Self::wait), at most `timeout` (`Duration::MAX`: as long as it takes);
    /// [`ManagerError::Timeout`] if no notification came (the lock is taken back either way).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<(), ManagerError> {
        self.wait_until(deadline::after(timeout))
    }

    /// [`wait`](Self::wait), until `deadline`.
    pub fn wait_deadline(&mut self, deadline: Instant) -> Result<(), ManagerError> {
        self.wait_until(Some(deadline))
    }

    /// Waits while `condition` holds, checking it again after each notification. Python:
    /// `wait_for(lambda: not condition())`.
    #[doc(alias = "wait_for")]
    pub fn wait_while(&mut self, mut condition: impl FnMut() -> bool) -> Result<(), ManagerError> {
        while condition() {
            self.wait()?;
        }
        Ok(())
    }

    /// Waits while `condition` holds, at most `timeout`; [`ManagerError::Timeout`] if it still
    /// held when the time was up. Python's `wait_for(predicate, timeout)`.
    pub fn wait_timeout_while(
        &mut self,
        timeout: Duration,
        condition: impl FnMut() -> bool,
    ) -> Result<(), ManagerError> {
        self.wait_while_until(deadline::after(timeout), condition)
    }

    /// Waits while `condition` holds, until `deadline`.
    pub fn wait_deadline_while(
        &mut self,
        deadline: Instant,
        condition: impl FnMut() -> bool,
    ) -> Result<(), ManagerError> {
        self.wait_while_until(Some(deadline), condition)
    }

    fn wait_while_until(
        &mut self,
        deadline: Option<Instant>,
        condition: impl FnMut() -> bool,
    ) -> Result<(), ManagerError> {
        deadline::wait_while(
            deadline,
            condition,
            |deadline| self.wait_until(deadline),
            ManagerError::is_timeout,
        )
    }

    fn wait_until(&mut self, deadline: Option<Instant>) -> Result<(), ManagerError> {
        let answer = self
            .proxy
            .handle
            .call(Op::ConditionWait, vec![deadline_arg(deadline)])?;
        match answer.as_array().map(Vec::as_slice) {
            Some([Value::Boolean(notified), Value::Boolean(owner_died)]) => {
                self.owner_died |= *owner_died;
                if *notified {
                    Ok(())
                } else {
                    Err(ManagerError::Timeout)
                }
            }
            _ => Err(ManagerError::Protocol(format!(
                "condition.wait gave {answer}"
            ))),
        }
    }
}
