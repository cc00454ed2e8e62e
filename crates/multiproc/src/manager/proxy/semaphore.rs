//! [`SemaphoreProxy`] and [`BoundedSemaphoreProxy`]: counters that live in the manager.

use std::ops::Deref;
use std::time::{Duration, Instant};

use super::{Proxy, deadline_arg, forever, from_value, proxy, waited};
use crate::deadline;
use crate::manager::ManagerError;
use crate::manager::protocol::{Kind, Op};

proxy! {
    /// A semaphore that lives in a [`Manager`](crate::Manager): [`Semaphore`](crate::Semaphore)'s
    /// methods. Permits belong to nobody, as in Python: one process may acquire and another
    /// release (to signal), so a process that dies holding a permit does not give it back. For
    /// exclusion that survives a death, use a [`LockProxy`](crate::LockProxy). Python:
    /// `manager.Semaphore(n)`.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// let manager = multiproc::Manager::start()?;
    /// let slots = manager.semaphore(2)?;
    /// slots.acquire()?;
    /// slots.try_acquire()?;
    /// assert!(slots.try_acquire().unwrap_err().is_timeout()); // both taken
    /// slots.release()?;
    /// assert_eq!(slots.value()?, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub struct SemaphoreProxy = Kind::Semaphore;
}

impl SemaphoreProxy {
    /// Takes a permit, waiting as long as it takes.
    pub fn acquire(&self) -> Result<(), ManagerError> {
        forever(self.acquire_until(None))
    }

    /// Takes a permit if one is free now, else [`ManagerError::Timeout`].
    pub fn try_acquire(&self) -> Result<(), ManagerError> {
        self.acquire_until(Some(Instant::now()))
    }

    /// Takes a permit, waiting at most `timeout` (`Duration::MAX`: as long as it takes), else
    /// [`ManagerError::Timeout`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<(), ManagerError> {
        self.acquire_until(deadline::after(timeout))
    }

    /// Takes a permit, waiting until `deadline`, else [`ManagerError::Timeout`].
    pub fn acquire_deadline(&self, deadline: Instant) -> Result<(), ManagerError> {
        self.acquire_until(Some(deadline))
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Result<(), ManagerError> {
        let answer = self
            .handle
            .call(Op::SemaphoreAcquire, vec![deadline_arg(deadline)])?;
        waited(answer, ManagerError::Timeout).map(drop)
    }

    /// Gives a permit back. A bounded semaphore refuses to go above its initial value
    /// ([`ErrorCode::TooManyReleases`](crate::ErrorCode::TooManyReleases)).
    pub fn release(&self) -> Result<(), ManagerError> {
        self.handle.call(Op::SemaphoreRelease, Vec::new()).map(drop)
    }

    /// The permits free now (a snapshot).
    #[doc(alias = "get_value")]
    pub fn value(&self) -> Result<u32, ManagerError> {
        from_value(self.handle.call(Op::SemaphoreValue, Vec::new())?)
    }
}

/// A [`SemaphoreProxy`] that refuses to be released above its initial value
/// ([`ErrorCode::TooManyReleases`](crate::ErrorCode::TooManyReleases)), as
/// [`BoundedSemaphore`](crate::BoundedSemaphore) does; everything else is the semaphore's (it
/// derefs to [`SemaphoreProxy`]). Python: `manager.BoundedSemaphore(n)`.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// let manager = multiproc::Manager::start()?;
/// let slots = manager.bounded_semaphore(1)?;
/// slots.acquire()?;
/// slots.release()?;
/// assert!(slots.release().is_err()); // TooManyReleases: above its bound
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct BoundedSemaphoreProxy(SemaphoreProxy);

impl Proxy for BoundedSemaphoreProxy {
    const KIND: Kind = Kind::BoundedSemaphore;

    fn from_handle(handle: crate::manager::handle::Handle) -> Self {
        BoundedSemaphoreProxy(SemaphoreProxy::from_handle(handle))
    }
}

impl Deref for BoundedSemaphoreProxy {
    type Target = SemaphoreProxy;
    fn deref(&self) -> &SemaphoreProxy {
        &self.0
    }
}
