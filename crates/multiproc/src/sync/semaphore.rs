//! [`Semaphore`] and [`BoundedSemaphore`].

use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::ReleaseError;
use super::raw::RawSemaphore;
use crate::deadline::{self, Timeout};
use crate::shm::{Object, ShmError};

/// A counter shared between processes: [`acquire`](Self::acquire) takes one unit, waiting while
/// there is none; [`release`](Self::release) gives one back (from any process). Python's `Semaphore`.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use std::time::Duration;
/// use multiproc::Semaphore;
///
/// let slots = Semaphore::new(2)?;
/// slots.acquire();
/// slots.try_acquire()?;
/// assert!(slots.try_acquire().is_err()); // none left: Timeout
/// assert!(slots.acquire_timeout(Duration::from_millis(1)).is_err());
/// slots.release()?;
/// assert_eq!(slots.value(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Semaphore {
    object: Object<RawSemaphore>,
}

impl Semaphore {
    /// A semaphore holding `value` units.
    pub fn new(value: u32) -> Result<Semaphore, ShmError> {
        Semaphore::with_bound(value, u32::MAX)
    }

    fn with_bound(value: u32, bound: u32) -> Result<Semaphore, ShmError> {
        Ok(Semaphore {
            object: Object::create(RawSemaphore::new(value, bound), &[])?,
        })
    }

    fn raw(&self) -> &RawSemaphore {
        self.object.state()
    }

    /// Takes one unit, waiting as long as it takes.
    pub fn acquire(&self) {
        self.raw().acquire(None);
    }

    /// Takes one unit if there is one now, else [`Timeout`].
    pub fn try_acquire(&self) -> Result<(), Timeout> {
        self.raw().try_acquire().then_some(()).ok_or(Timeout)
    }

    /// Takes one unit, waiting at most `timeout` (`Duration::MAX`: as long as it takes).
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<(), Timeout> {
        self.acquire_until(deadline::after(timeout))
    }

    /// Takes one unit, waiting until `deadline`.
    pub fn acquire_deadline(&self, deadline: Instant) -> Result<(), Timeout> {
        self.acquire_until(Some(deadline))
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Result<(), Timeout> {
        self.raw().acquire(deadline).then_some(()).ok_or(Timeout)
    }

    /// Gives one unit back, waking a waiter.
    pub fn release(&self) -> Result<(), ReleaseError> {
        if self.raw().release() {
            Ok(())
        } else {
            Err(ReleaseError::TooManyReleases)
        }
    }

    /// The units available now (a snapshot).
    #[doc(alias = "get_value")]
    pub fn value(&self) -> u32 {
        self.raw().value()
    }
}

/// A [`Semaphore`] that refuses to be released above its initial value:
/// [`ReleaseError::TooManyReleases`], as Python's `BoundedSemaphore` raises `ValueError`.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{BoundedSemaphore, ReleaseError};
///
/// let sem = BoundedSemaphore::new(1)?;
/// sem.acquire();
/// sem.release()?;
/// assert_eq!(sem.release(), Err(ReleaseError::TooManyReleases));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BoundedSemaphore {
    inner: Semaphore,
}

impl BoundedSemaphore {
    /// A semaphore holding `value` units, never more.
    pub fn new(value: u32) -> Result<BoundedSemaphore, ShmError> {
        Ok(BoundedSemaphore {
            inner: Semaphore::with_bound(value, value)?,
        })
    }

    /// See [`Semaphore::acquire`].
    pub fn acquire(&self) {
        self.inner.acquire();
    }

    /// See [`Semaphore::try_acquire`].
    pub fn try_acquire(&self) -> Result<(), Timeout> {
        self.inner.try_acquire()
    }

    /// See [`Semaphore::acquire_timeout`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<(), Timeout> {
        self.inner.acquire_timeout(timeout)
    }

    /// See [`Semaphore::acquire_deadline`].
    pub fn acquire_deadline(&self, deadline: Instant) -> Result<(), Timeout> {
        self.inner.acquire_deadline(deadline)
    }

    /// Gives one unit back; [`ReleaseError::TooManyReleases`] above the initial value.
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.inner.release()
    }

    /// See [`Semaphore::value`].
    #[doc(alias = "get_value")]
    pub fn value(&self) -> u32 {
        self.inner.value()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .finish()
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("value", &self.value())
            .finish()
    }
}
