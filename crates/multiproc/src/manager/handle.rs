//! [`Handle`]: what every proxy is, an object id in a process's [`Session`] with its manager, and
//! an owner of its own; and how a proxy travels (the manager's address and key, the id and a
//! loan) and joins its process's session on arrival.
//!
//! Each handle shares a [`Hold`]: one of the server's counts of the object, for this process.
//! Clones of a proxy share their hold; the last one dropped gives it up, and the server frees an
//! object nothing holds (`docs/manager-protocol.md`, "Lifetime").
//!
//! Inside a protocol value (a proxy stored in a dict, a list, a queue of its own manager) a handle
//! is a *reference* instead, its object's id (`protocol::value`). Each reference in an answer is a
//! hold the server gave this client: [`Handle::call`] keeps them as *arrivals* of this thread, the
//! proxies decoded from the answer take theirs, and the next call gives back the others.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use rmpv::Value;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ManagerError;
use super::client::{self, Endpoint, Session, Who};
use super::protocol::{Op, value};
use crate::address::Address;
use crate::transfer;

/// An object on a manager, reached through a session.
pub(crate) struct Handle {
    pub(crate) session: Arc<Session>,
    pub(crate) object: u64,
    /// What keeps the object alive on the server for this handle and its clones.
    hold: Arc<Hold>,
    /// Whether its operations may wait: they then take a connection of the session's pool.
    waits: bool,
    /// The owner, within the session's client, of what this handle takes (a lock).
    owner: u64,
    /// Acquisitions taken through this handle and not released: if some are left when it is
    /// dropped (a guard given up with `mem::forget`), the server is told to release them.
    held: AtomicU32,
    /// The fencing token its calls carry (a fenced view: [`fenced`](Self::fenced)).
    fence: Option<u64>,
}

/// One hold of an object by this process's client: given up when dropped.
struct Hold {
    session: Arc<Session>,
    object: u64,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.session.release(self.object);
    }
}

impl Handle {
    /// Object `object` in `session`, with an owner of its own, taking over the hold that the
    /// reply which gave the id counted for this client (`create`, `named`, `dict.nested`,
    /// `hold`).
    pub(crate) fn adopt(session: Arc<Session>, object: u64, waits: bool) -> Handle {
        let hold = Arc::new(Hold {
            session: session.clone(),
            object,
        });
        Handle::sharing(hold, waits)
    }

    /// A handle with an owner of its own on `hold`'s object.
    fn sharing(hold: Arc<Hold>, waits: bool) -> Handle {
        let owner = hold.session.new_owner();
        Handle {
            session: hold.session.clone(),
            object: hold.object,
            hold,
            waits,
            owner,
            held: AtomicU32::new(0),
            fence: None,
        }
    }

    /// A handle of the same object whose calls carry the fencing token `token`: the object
    /// refuses them once it has seen a larger one (`StaleFence`).
    pub(crate) fn fenced(&self, token: u64) -> Handle {
        let mut handle = Handle::sharing(self.hold.clone(), self.waits);
        handle.fence = Some(token);
        handle
    }

    /// Runs `op` on the object, for this handle's owner.
    /// The references in its answer are kept as arrivals, for the proxies decoded from it.
    pub(crate) fn call(&self, op: Op, args: Vec<Value>) -> Result<Value, ManagerError> {
        self.call_on(op, args, self.waits)
    }

    /// [`call`](Self::call), on a connection of the pool if `waits` (the call may wait).
    pub(crate) fn call_on(
        &self,
        op: Op,
        args: Vec<Value>,
        waits: bool,
    ) -> Result<Value, ManagerError> {
        self.call_interruptible(op, args, waits, None)
    }

    /// [`call_on`](Self::call_on); a wait checks `interrupted` every 25 ms, and
    /// ends with [`ManagerError::Interrupted`] when it says so.
    pub(crate) fn call_interruptible(
        &self,
        op: Op,
        args: Vec<Value>,
        waits: bool,
        interrupted: Option<&dyn Fn() -> bool>,
    ) -> Result<Value, ManagerError> {
        release_unclaimed();
        let who = Who {
            owner: self.owner,
            fence: self.fence,
        };
        let answer = self
            .session
            .call_as(op, self.object, args, who, waits, interrupted)?;
        arrived(&self.session, &answer);
        Ok(answer)
    }

    /// A handle of the same object for this process: itself if its session is this process's,
    /// else (it was inherited through fork) a new one, on this process's own session with the
    /// manager, holding the object anew.
    pub(crate) fn in_this_process(&self) -> Result<Handle, ManagerError> {
        if self.session.is_this_process() {
            return Ok(self.duplicate());
        }
        let session = client::shared(&self.session.endpoint, &self.session.authkey)?;
        session.hold(self.object, 0)?;
        Ok(Handle::adopt(session, self.object, self.waits))
    }

    /// This handle, its calls waiting or not as a proxy of its kind's do.
    pub(crate) fn waiting_if(mut self, waits: bool) -> Handle {
        self.waits = waits;
        self
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
        let mut handle = Handle::sharing(self.hold.clone(), self.waits);
        handle.fence = self.fence;
        handle
    }

    /// [`duplicate`](Self::duplicate), whose calls all may wait (a watcher's).
    pub(crate) fn waiting(&self) -> Handle {
        Handle::sharing(self.hold.clone(), true)
    }

    pub(crate) fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("manager", &self.session.endpoint)
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

/// How a proxy travels: where it goes, with the manager's key. The key goes only where process
/// arguments and messages go: private channels.
#[derive(Serialize, Deserialize)]
struct Wire {
    leaving: Leaving,
    #[serde(with = "serde_bytes")]
    authkey: Vec<u8>,
}

/// A proxy on its way to another process, without the manager's key: travelling whole
/// ([`Wire`]), or keyless ([`Handle::keyless`]), the receiver then supplying the key.
#[derive(Serialize, Deserialize)]
struct Leaving {
    endpoint: Endpoint,
    object: u64,
    waits: bool,
    /// The loan that keeps the object alive until the proxy arrives.
    loan: u64,
}

impl Leaving {
    /// The handle in the process it arrived in: on that process's session with its manager,
    /// authenticated with `authkey`, the loan claimed.
    fn arrive(self, authkey: &[u8]) -> Result<Handle, ManagerError> {
        let session = client::shared(&self.endpoint, authkey)?;
        session.hold(self.object, self.loan)?;
        Ok(Handle::adopt(session, self.object, self.waits))
    }
}

/// A proxy leaving takes a loan of its object (a round trip to the manager), so that the object
/// outlives its sender's proxy until this one arrives; serializing fails if the manager is gone.
/// In a protocol value, it is a reference (no round trip: the server counts it when it stores it).
impl Serialize for Handle {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if value::encoding() {
            let parts = (self.object, self.session.fingerprint);
            return serializer.serialize_newtype_struct(value::REFERENCE, &parts);
        }
        let leaving = self.leaving().map_err(transfer::refuse_serializing)?;
        Wire {
            leaving,
            authkey: self.session.authkey.clone(),
        }
        .serialize(serializer)
    }
}

impl Handle {
    /// This handle leaving for another process: a loan of its object.
    fn leaving(&self) -> Result<Leaving, ManagerError> {
        Ok(Leaving {
            endpoint: self.session.endpoint.clone(),
            object: self.object,
            waits: self.waits,
            loan: self.session.lend(self.object)?,
        })
    }

    /// This handle as bytes for another process, without the manager's key (which the receiver
    /// gives to [`from_keyless`](Self::from_keyless)): a loan, as for any proxy leaving.
    pub(crate) fn keyless(&self) -> Result<Vec<u8>, ManagerError> {
        postcard::to_stdvec(&self.leaving()?).map_err(|e| ManagerError::Value(e.to_string()))
    }

    /// The handle [`keyless`](Self::keyless) sent, authenticated with `authkey`.
    pub(crate) fn from_keyless(bytes: &[u8], authkey: &[u8]) -> Result<Handle, ManagerError> {
        leaving_of(bytes)?.arrive(authkey)
    }

    /// The address of the handle's manager.
    pub(crate) fn address(&self) -> &Address {
        &self.session.address
    }
}

/// The address in [`Handle::keyless`]'s bytes.
pub(crate) fn keyless_address(bytes: &[u8]) -> Result<Address, ManagerError> {
    leaving_of(bytes).map(|leaving| leaving.endpoint.address())
}

fn leaving_of(bytes: &[u8]) -> Result<Leaving, ManagerError> {
    postcard::from_bytes(bytes)
        .map_err(|e| ManagerError::Value(format!("not a proxy's bytes: {e}")))
}

/// A proxy arriving in a process joins that process's session with its manager (another owner
/// than the one it was sent from), and claims its loan: a hold of this process's. An object
/// freed meanwhile (its loan expired) fails with `UnknownObject`. A reference in an answer takes
/// the hold that came with it.
impl<'de> Deserialize<'de> for Handle {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(value::REFERENCE, HandleVisitor)
    }
}

struct HandleVisitor;

impl<'de> Visitor<'de> for HandleVisitor {
    type Value = Handle;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a proxy")
    }

    /// A reference, in an answer.
    fn visit_u64<E: de::Error>(self, object: u64) -> Result<Handle, E> {
        claim(object).ok_or_else(|| {
            E::custom(format!(
                "a reference to object {object} that no answer on this thread brought"
            ))
        })
    }

    /// A proxy that travelled.
    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Handle, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        wire.leaving.arrive(&wire.authkey).map_err(transfer::refuse)
    }
}

/// The holds that came with the references of this thread's last answer, not yet taken by a
/// proxy. (Given back at the thread's next call, or when it ends.)
struct Arrivals(Vec<(Arc<Session>, u64)>);

impl Drop for Arrivals {
    fn drop(&mut self) {
        for (session, object) in self.0.drain(..) {
            session.release(object);
        }
    }
}

thread_local! {
    static ARRIVALS: RefCell<Arrivals> = const { RefCell::new(Arrivals(Vec::new())) };
}

/// Keeps the holds of the references in `answer`, from `session`.
fn arrived(session: &Arc<Session>, answer: &Value) {
    let mut objects = Vec::new();
    value::extensions(answer, &mut |tag, id| {
        if tag == value::REFERENCE_TYPE {
            objects.push(id);
        }
    });
    if objects.is_empty() {
        return;
    }
    // (A thread that has ended its thread-locals keeps the holds until its process ends.)
    let _ = ARRIVALS.try_with(|arrivals| {
        let arrivals = &mut arrivals.borrow_mut().0;
        arrivals.extend(objects.into_iter().map(|id| (session.clone(), id)));
    });
}

/// A handle taking the hold of an arrival of `object`.
fn claim(object: u64) -> Option<Handle> {
    let (session, object) = ARRIVALS
        .try_with(|arrivals| {
            let arrivals = &mut arrivals.borrow_mut().0;
            let at = arrivals.iter().position(|(_, id)| *id == object)?;
            Some(arrivals.swap_remove(at))
        })
        .ok()??;
    Some(Handle::adopt(session, object, false))
}

/// Gives back the holds of the arrivals that no proxy took.
fn release_unclaimed() {
    let unclaimed = ARRIVALS.try_with(|arrivals| {
        let arrivals = &mut arrivals.borrow_mut().0;
        (!arrivals.is_empty()).then(|| Arrivals(std::mem::take(arrivals)))
    });
    drop(unclaimed);
}
