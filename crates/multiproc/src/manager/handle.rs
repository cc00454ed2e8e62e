//! [`Handle`]: what every proxy is, an object id on a manager connection; and how a proxy
//! travels (the manager's address and key, and the id) and connects again on arrival.

use std::fmt;
use std::sync::Arc;

use rmpv::Value;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ManagerError;
use super::client::{self, Client, Remake};
use super::protocol::Op;
use crate::address::Address;

/// An object on a manager, and the connection to reach it.
pub(crate) struct Handle {
    pub(crate) client: Arc<Client>,
    pub(crate) object: u64,
    /// Whether this handle has a connection of its own (its operations wait).
    own: bool,
}

impl Handle {
    /// Object `object` on `client`, a shared connection.
    pub(crate) fn new(client: Arc<Client>, object: u64) -> Handle {
        Handle {
            client,
            object,
            own: false,
        }
    }

    /// Runs `op` on the object.
    pub(crate) fn call(&self, op: Op, args: Vec<Value>) -> Result<Value, ManagerError> {
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

    /// Another handle to the object, as a clone of its proxy has: on a connection of its own if
    /// this one has one (for a lock: another owner), else on the same.
    pub(crate) fn duplicate(&self) -> Handle {
        if self.own {
            self.reconnect_or_share()
        } else {
            self.share()
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
            Arc::new(Client::connect(
                &self.address,
                &self.authkey,
                Remake::Never,
            )?)
        } else {
            client::shared(&self.address, &self.authkey)?
        };
        Ok(Handle {
            client,
            object: self.object,
            own: self.own,
        })
    }
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
