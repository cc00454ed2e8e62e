//! [`LockProxy`]: a lock that lives in the manager, owned by the connection that took it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rmpv::Value;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Client, ManagerError, ProxyWire};

/// A lock that lives in a [`Manager`](super::Manager). Each handle has a connection of its own
/// (so a holder's release never waits behind another thread's acquire), and a taken lock
/// belongs to that connection: if its process dies, the manager releases the lock and tells the
/// next taker ([`LockProxyGuard::owner_died`]). Python's manager lock stays taken forever.
pub struct LockProxy {
    client: Arc<Client>,
    object: u64,
}

/// A taken [`LockProxy`]; dropping it releases the lock.
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockProxyGuard<'a> {
    lock: &'a LockProxy,
    owner_died: bool,
}

impl LockProxy {
    pub(crate) fn new(client: Arc<Client>, object: u64) -> Self {
        LockProxy { client, object }
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
        let answer = self
            .client
            .call("lock.acquire", self.object, vec![timeout_ms])?;
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
        let _ = self
            .lock
            .client
            .call("lock.release", self.lock.object, Vec::new());
    }
}

impl Clone for LockProxy {
    /// Another handle to the same lock, with a connection of its own.
    fn clone(&self) -> Self {
        let (client, object) = ProxyWire::of(&self.client, self.object)
            .connect()
            .unwrap_or_else(|_| (self.client.clone(), self.object));
        LockProxy { client, object }
    }
}

impl fmt::Debug for LockProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockProxy")
            .field("manager", &self.client.address)
            .field("object", &self.object)
            .finish()
    }
}

impl Serialize for LockProxy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ProxyWire::of(&self.client, self.object).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LockProxy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (client, object) = ProxyWire::deserialize(deserializer)?
            .connect()
            .map_err(serde::de::Error::custom)?;
        Ok(LockProxy::new(client, object))
    }
}
