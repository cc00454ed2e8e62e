//! [`Handle`]: what every proxy is, an object id in a process's [`Session`] with its manager, and
//! an owner of its own; and how a proxy travels (the manager's address and key, and the id) and
//! joins its process's session on arrival.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use rmpv::Value;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ManagerError;
use super::client::{self, Session};
use super::protocol::Op;
use crate::address::Address;

/// An object on a manager, reached through a session.
pub(crate) struct Handle {
    pub(crate) session: Arc<Session>,
    pub(crate) object: u64,
    /// Whether its operations may wait: they then take a connection of the session's pool.
    waits: bool,
    /// The owner, within the session's client, of what this handle takes (a lock).
    owner: u64,
    /// Acquisitions taken through this handle and not released: if some are left when it is
    /// dropped (a guard given up with `mem::forget`), the server is told to release them.
    held: AtomicU32,
}

impl Handle {
    /// Object `object` in `session`, with an owner of its own.
    pub(crate) fn new(session: Arc<Session>, object: u64, waits: bool) -> Handle {
        let owner = session.new_owner();
        Handle {
            session,
            object,
            waits,
            owner,
            held: AtomicU32::new(0),
        }
    }

    /// Runs `op` on the object, for this handle's owner.
    pub(crate) fn call(&self, op: Op, args: Vec<Value>) -> Result<Value, ManagerError> {
        if self.waits {
            self.session.call_waiting(op, self.object, args, self.owner)
        } else {
            self.session.call(op, self.object, args, self.owner)
        }
    }

    /// Counts an acquisition taken (`true`) or released through this handle.
    pub(crate) fn count_held(&self, taken: bool) {
        if taken {
            self.held.fetch_add(1, Ordering::Relaxed);
        } else {
            let _ = self
                .held
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    /// Another handle to the object, as a clone of its proxy has: in the same session, and
    /// another owner (for a lock: a clone does not hold what this one took).
    pub(crate) fn duplicate(&self) -> Handle {
        Handle::new(self.session.clone(), self.object, self.waits)
    }

    pub(crate) fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("manager", &self.session.address)
            .field("object", &self.object)
            .finish()
    }
}

impl Drop for Handle {
    /// Releases what this handle still holds (its guards were forgotten), telling the next taker,
    /// as if its process had died.
    fn drop(&mut self) {
        if self.held.load(Ordering::Relaxed) > 0 {
            let _ = self.session.call(Op::OwnerEnd, 0, Vec::new(), self.owner);
        }
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
    waits: bool,
}

impl Serialize for Handle {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Wire {
            address: self.session.address.clone(),
            authkey: self.session.authkey.clone(),
            object: self.object,
            waits: self.waits,
        }
        .serialize(serializer)
    }
}

/// A proxy arriving in a process joins that process's session with its manager (another owner
/// than the one it was sent from).
impl<'de> Deserialize<'de> for Handle {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        let session =
            client::shared(&wire.address, &wire.authkey).map_err(serde::de::Error::custom)?;
        Ok(Handle::new(session, wire.object, wire.waits))
    }
}
