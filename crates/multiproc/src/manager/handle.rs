//! [`Handle`]: what every proxy is, an object id on a manager connection; and how a proxy
//! travels (the manager's address and key, and the id) and connects again on arrival.
//!
//! A proxy whose operations wait (a lock, a queue, a condition, ...) has a connection of its
//! own, so that its waits hold up nothing else. The others, arriving in a process, share one
//! connection per manager in that process (Python shares one per process and thread): a child
//! given ten dict proxies opens one connection, not ten. The sharing is per process: a forked
//! child never uses the connections it inherited.

use std::fmt;
use std::sync::{Arc, Mutex, Weak};

use rmpv::Value;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Client, ManagerError};
use crate::channel::Address;

/// An object on a manager, and the connection to reach it.
pub(crate) struct Handle {
    pub(crate) client: Arc<Client>,
    pub(crate) object: u64,
    /// Whether this handle needs a connection of its own (its operations wait).
    own: bool,
}

impl Handle {
    pub(crate) fn new(client: Arc<Client>, object: u64) -> Handle {
        Handle {
            client,
            object,
            own: false,
        }
    }

    /// Runs `op` on the object.
    pub(crate) fn call(&self, op: &str, args: Vec<Value>) -> Result<Value, ManagerError> {
        self.client.call(op, self.object, args)
    }

    /// The same object on a connection of its own (for proxies whose operations wait), which it
    /// keeps when it travels.
    pub(crate) fn reconnect(&self) -> Result<Handle, ManagerError> {
        Wire {
            own: true,
            ..Wire::of(self)
        }
        .connect()
    }

    /// [`reconnect`](Self::reconnect), or the same connection if that fails (a later call then
    /// reports the failure).
    pub(crate) fn reconnect_or_share(&self) -> Handle {
        self.reconnect().unwrap_or_else(|_| self.share())
    }

    /// The same object on the same connection.
    pub(crate) fn share(&self) -> Handle {
        Handle {
            client: self.client.clone(),
            object: self.object,
            own: self.own,
        }
    }

    pub(crate) fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("manager", &self.client.address)
            .field("object", &self.object)
            .finish()
    }
}

/// How a proxy travels. The key goes only where process arguments and messages go: private
/// channels.
#[derive(Serialize, Deserialize)]
struct Wire {
    address: Address,
    #[serde(with = "serde_bytes")]
    authkey: Vec<u8>,
    object: u64,
    own: bool,
}

impl Wire {
    fn of(handle: &Handle) -> Wire {
        Wire {
            address: handle.client.address.clone(),
            authkey: handle.client.authkey.clone(),
            object: handle.object,
            own: handle.own,
        }
    }

    fn connect(self) -> Result<Handle, ManagerError> {
        let client = if self.own {
            Arc::new(Client::connect(&self.address, &self.authkey)?)
        } else {
            shared_client(&self.address, &self.authkey)?
        };
        Ok(Handle {
            client,
            object: self.object,
            own: self.own,
        })
    }
}

/// The connections this process shares, by manager; and the process they belong to.
struct Shared {
    pid: u32,
    clients: Vec<(Address, Vec<u8>, Weak<Client>)>,
}

static SHARED: Mutex<Option<Shared>> = Mutex::new(None);

/// This process's shared connection to the manager at `address`, made if there is none alive.
fn shared_client(address: &Address, authkey: &[u8]) -> Result<Arc<Client>, ManagerError> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    // Another process's (a forked child inherits its parent's): never used.
    if shared.as_ref().is_none_or(|s| s.pid != pid) {
        *shared = Some(Shared {
            pid,
            clients: Vec::new(),
        });
    }
    let clients = &mut shared.as_mut().expect("just set").clients;
    clients.retain(|(_, _, client)| client.strong_count() > 0);
    let alive = clients.iter().find_map(|(a, k, client)| {
        (a == address && k.as_slice() == authkey)
            .then(|| client.upgrade())
            .flatten()
            .filter(|client| !client.is_broken())
    });
    if let Some(client) = alive {
        return Ok(client);
    }
    let client = Arc::new(Client::connect(address, authkey)?);
    clients.retain(|(a, k, _)| !(a == address && k.as_slice() == authkey));
    clients.push((address.clone(), authkey.to_vec(), Arc::downgrade(&client)));
    Ok(client)
}

impl Serialize for Handle {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Wire::of(self).serialize(serializer)
    }
}

/// A proxy arriving in a process connects to its manager again.
impl<'de> Deserialize<'de> for Handle {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Wire::deserialize(deserializer)?
            .connect()
            .map_err(serde::de::Error::custom)
    }
}
