//! [`EventProxy`]: a flag that lives in the manager.

use std::time::{Duration, Instant};

use super::{deadline_arg, forever, from_value, proxy, waited};
use crate::deadline;
use crate::manager::ManagerError;
use crate::manager::protocol::{Kind, Op};

proxy! {
    /// An event that lives in a [`Manager`](crate::Manager): [`Event`](crate::Event)'s methods, a
    /// flag that processes wait for. Python: `manager.Event()`.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// use multiproc::{EventProxy, Manager, Process};
    ///
    /// let manager = Manager::start()?;
    /// let ready = manager.event()?;
    /// assert!(ready.try_wait().unwrap_err().is_timeout());
    /// Process::spawn(ready.clone(), |ready: EventProxy| ready.set().unwrap())?.join()?;
    /// ready.wait()?;
    /// assert!(ready.is_set()?);
    /// # Ok(())
    /// # }
    /// ```
    pub struct EventProxy = Kind::Event;
}

impl EventProxy {
    /// Sets the flag, waking every waiter.
    pub fn set(&self) -> Result<(), ManagerError> {
        self.handle.call(Op::EventSet, Vec::new()).map(drop)
    }

    /// Clears the flag.
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.handle.call(Op::EventClear, Vec::new()).map(drop)
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> Result<bool, ManagerError> {
        from_value(self.handle.call(Op::EventIsSet, Vec::new())?)
    }

    /// Waits until the flag is set, as long as it takes.
    pub fn wait(&self) -> Result<(), ManagerError> {
        forever(self.wait_until(None))
    }

    /// Succeeds if the flag is set now, else [`ManagerError::Timeout`].
    pub fn try_wait(&self) -> Result<(), ManagerError> {
        self.wait_until(Some(Instant::now()))
    }

    /// Waits at most `timeout` for the flag (`Duration::MAX`: as long as it takes), else
    /// [`ManagerError::Timeout`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), ManagerError> {
        self.wait_until(deadline::after(timeout))
    }

    /// Waits until `deadline` for the flag, else [`ManagerError::Timeout`].
    pub fn wait_deadline(&self, deadline: Instant) -> Result<(), ManagerError> {
        self.wait_until(Some(deadline))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<(), ManagerError> {
        let answer = self
            .handle
            .call(Op::EventWait, vec![deadline_arg(deadline)])?;
        waited(answer, ManagerError::Timeout).map(drop)
    }
}
