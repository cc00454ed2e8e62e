//! [`LockProxy`] and [`RLockProxy`]: locks that live in the manager, owned by the connection that
//! took them.

use std::fmt;
use std::time::Duration;

use rmpv::Value;
use serde::{Deserialize, Serialize};

use super::{Handle, ManagerError};

/// A lock that lives in a [`Manager`](super::Manager). Each handle has a connection of its own
/// (so a holder's release never waits behind another thread's acquire), and a taken lock
/// belongs to that connection: if its process dies, the manager releases the lock and tells the
/// next taker ([`LockProxyGuard::owner_died`]). Python's manager lock stays taken forever.
#[derive(Serialize, Deserialize)]
pub struct LockProxy {
    handle: Handle,
}

/// A taken [`LockProxy`]; dropping it releases the lock.
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockProxyGuard<'a> {
    lock: &'a LockProxy,
    owner_died: bool,
}

impl LockProxy {
    pub(crate) fn new(handle: Handle) -> Self {
        LockProxy { handle }
    }

    /// Takes the lock, waiting as long as it takes.
    pub fn acquire(&self) -> Result<LockProxyGuard<'_>, ManagerError> {
        self.take(Value::Nil)?.ok_or_else(|| {
            ManagerError::Protocol("a lock acquired without a wait timed out".into())
        })
    }

    /// Takes the lock if it is free now.
    pub fn try_acquire(&self) -> Result<Option<LockProxyGuard<'_>>, ManagerError> {
        self.take(Value::from(0))
    }

    /// Takes the lock, waiting at most `timeout`; `None` if it stayed taken.
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<LockProxyGuard<'_>>, ManagerError> {
        self.take(timeout_ms(timeout))
    }

    fn take(&self, timeout_ms: Value) -> Result<Option<LockProxyGuard<'_>>, ManagerError> {
        Ok(
            acquired(self.handle.call("lock.acquire", vec![timeout_ms])?)?.map(|owner_died| {
                LockProxyGuard {
                    lock: self,
                    owner_died,
                }
            }),
        )
    }
}

impl LockProxyGuard<'_> {
    /// Whether the previous holder's process died holding the lock (the data it protected may be
    /// half-updated).
    pub fn owner_died(&self) -> bool {
        self.owner_died
    }
}

impl Drop for LockProxyGuard<'_> {
    fn drop(&mut self) {
        // If the manager is gone, so is the lock.
        let _ = self.lock.handle.call("lock.release", Vec::new());
    }
}

impl Clone for LockProxy {
    /// Another handle to the same lock, with a connection of its own.
    fn clone(&self) -> Self {
        LockProxy::new(self.handle.reconnect_or_share())
    }
}

impl fmt::Debug for LockProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.debug("LockProxy", f)
    }
}

/// A recursive lock that lives in a [`Manager`](super::Manager): the handle that holds it may
/// take it again, and it is free once every acquisition is released. Ownership is by handle (each
/// has a connection of its own), and a holder's death releases it as for [`LockProxy`]. Python:
/// `manager.RLock()`.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// let manager = multiproc::Manager::start()?;
/// let lock = manager.rlock()?;
/// let outer = lock.acquire()?;
/// let inner = lock.acquire()?; // the same handle: no deadlock
/// drop(inner);
/// assert!(lock.clone().try_acquire()?.is_none()); // still held by `outer`
/// drop(outer);
/// assert!(lock.clone().try_acquire()?.is_some());
/// # Ok(())
/// # }
/// ```
#[derive(Serialize, Deserialize)]
pub struct RLockProxy {
    handle: Handle,
}

/// One acquisition of an [`RLockProxy`]; dropping it releases that acquisition.
#[must_use = "the acquisition is released when the guard is dropped"]
pub struct RLockProxyGuard<'a> {
    lock: &'a RLockProxy,
    owner_died: bool,
}

impl RLockProxy {
    pub(crate) fn new(handle: Handle) -> Self {
        RLockProxy { handle }
    }

    /// Takes the lock (again, if this handle holds it), waiting as long as it takes.
    pub fn acquire(&self) -> Result<RLockProxyGuard<'_>, ManagerError> {
        self.take(Value::Nil)?.ok_or_else(|| {
            ManagerError::Protocol("a lock acquired without a wait timed out".into())
        })
    }

    /// Takes the lock if this handle holds it or it is free now.
    pub fn try_acquire(&self) -> Result<Option<RLockProxyGuard<'_>>, ManagerError> {
        self.take(Value::from(0))
    }

    /// Takes the lock, waiting at most `timeout`; `None` if another handle kept it.
    pub fn acquire_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<RLockProxyGuard<'_>>, ManagerError> {
        self.take(timeout_ms(timeout))
    }

    fn take(&self, timeout_ms: Value) -> Result<Option<RLockProxyGuard<'_>>, ManagerError> {
        Ok(
            acquired(self.handle.call("lock.acquire", vec![timeout_ms])?)?.map(|owner_died| {
                RLockProxyGuard {
                    lock: self,
                    owner_died,
                }
            }),
        )
    }
}

impl RLockProxyGuard<'_> {
    /// Whether the previous holder's process died holding the lock.
    pub fn owner_died(&self) -> bool {
        self.owner_died
    }
}

impl Drop for RLockProxyGuard<'_> {
    fn drop(&mut self) {
        let _ = self.lock.handle.call("lock.release", Vec::new());
    }
}

impl Clone for RLockProxy {
    /// Another handle to the same lock, with a connection of its own: another owner.
    fn clone(&self) -> Self {
        RLockProxy::new(self.handle.reconnect_or_share())
    }
}

impl fmt::Debug for RLockProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.debug("RLockProxy", f)
    }
}

/// A timeout for the protocol, in milliseconds.
pub(crate) fn timeout_ms(timeout: Duration) -> Value {
    Value::from(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
}

/// An acquire's answer: `Some(owner_died)` when taken, `None` on a timeout.
pub(crate) fn acquired(answer: Value) -> Result<Option<bool>, ManagerError> {
    match answer.as_str() {
        Some("acquired") => Ok(Some(false)),
        Some("owner_died") => Ok(Some(true)),
        Some("timeout") => Ok(None),
        _ => Err(ManagerError::Protocol(format!(
            "lock.acquire gave {answer}"
        ))),
    }
}
