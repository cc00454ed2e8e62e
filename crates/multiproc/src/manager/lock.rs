//! [`LockProxy`]: a lock that lives in the manager, owned by the connection that took it.

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
        self.take(Value::from(timeout.as_millis() as u64))
    }

    fn take(&self, timeout_ms: Value) -> Result<Option<LockProxyGuard<'_>>, ManagerError> {
        let answer = self.handle.call("lock.acquire", vec![timeout_ms])?;
        let owner_died = match answer.as_str() {
            Some("acquired") => false,
            Some("owner_died") => true,
            Some("timeout") => return Ok(None),
            _ => {
                return Err(ManagerError::Protocol(format!(
                    "lock.acquire gave {answer}"
                )));
            }
        };
        Ok(Some(LockProxyGuard {
            lock: self,
            owner_died,
        }))
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
