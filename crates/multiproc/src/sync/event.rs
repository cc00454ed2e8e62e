//! [`Event`].

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::raw::RawEvent;
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

    /// Waits until the flag is set.
    pub fn wait(&self) {
        self.raw().wait(None);
    }

    /// Waits at most `timeout`; returns whether the flag is set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.raw().wait(Instant::now().checked_add(timeout))
    }

    /// Waits until `deadline`; returns whether the flag is set.
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        self.raw().wait(Some(deadline))
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}
