//! [`Event`].

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::raw::RawEvent;
use crate::deadline::{self, Timeout};
use crate::shm::{Object, ShmError};

/// A flag shared between processes that others can wait for. Python's `Event`.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{Event, Process};
///
/// let ready = Event::new()?;
/// let child = Process::spawn(ready.clone(), |ready: Event| ready.set())?;
/// ready.wait();
/// assert!(ready.is_set());
/// child.join()?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Event {
    object: Object<RawEvent>,
}

impl Event {
    /// A new event, not set.
    pub fn new() -> Result<Event, ShmError> {
        Ok(Event {
            object: Object::create(RawEvent::new(), &[])?,
        })
    }

    fn raw(&self) -> &RawEvent {
        self.object.state()
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        self.raw().set();
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.raw().clear();
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.raw().is_set()
    }

    /// Waits until the flag is set, as long as it takes.
    pub fn wait(&self) {
        self.raw().wait(None);
    }

    /// Succeeds if the flag is set now, else [`Timeout`] (the same answer as
    /// [`is_set`](Self::is_set), in the shape of the waiting family).
    pub fn try_wait(&self) -> Result<(), Timeout> {
        self.is_set().then_some(()).ok_or(Timeout)
    }

    /// Waits at most `timeout` for the flag (`Duration::MAX`: as long as it takes). Python:
    /// `wait(timeout)`, which returns false where this is [`Timeout`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), Timeout> {
        self.wait_until(deadline::after(timeout))
    }

    /// Waits until `deadline` for the flag.
    pub fn wait_deadline(&self, deadline: Instant) -> Result<(), Timeout> {
        self.wait_until(Some(deadline))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<(), Timeout> {
        self.raw().wait(deadline).then_some(()).ok_or(Timeout)
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}
