//! How values travel between processes, handles included.
//!
//! A value is encoded with postcard into bytes plus a table of file descriptors: serializing a handle
//! (a shared memory segment, later a lock, a queue, a connection) duplicates its descriptor into the
//! table and writes only its index in the bytes. A carrier ([`packet`] over the bootstrap socket, and
//! later pipes and queues) moves the table with SCM_RIGHTS; decoding gives each handle its descriptor
//! back by index. Handle types implement `Serialize`/`Deserialize` with [`serialize_fd`] and
//! [`deserialize_fd`], so they are ordinary process arguments and messages.
//!
//! # Implementation notes
//!
//! serde has no side channel, so the table being filled or emptied is a thread-local stack, pushed
//! for the duration of one [`encode`] or [`decode`] (a stack, so that a `Serialize` impl may itself
//! encode). A handle serialized by any other serializer finds no table and fails with a clear error.

pub(crate) mod packet;

use std::cell::RefCell;
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde::de::{DeserializeOwned, Error as _};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::shm::{Object, SharedState, ShmSafe};

/// A value ready to travel: its bytes and the descriptors its handles refer to by index.
#[derive(Debug, Default)]
pub(crate) struct Message {
    pub(crate) bytes: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
}

/// A value could not be serialized: the error is the serializer's, or a handle's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the value could not be serialized: {message}")]
pub struct EncodeError {
    message: String,
}

impl EncodeError {
    pub(crate) fn new(message: impl fmt::Display) -> Self {
        EncodeError {
            message: message.to_string(),
        }
    }

    /// What the serializer said.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Bytes received could not be turned back into a value of the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the value could not be deserialized: {message}")]
pub struct DecodeError {
    message: String,
}

impl DecodeError {
    pub(crate) fn new(message: impl fmt::Display) -> Self {
        DecodeError {
            message: message.to_string(),
        }
    }

    /// What the deserializer said.
    pub fn message(&self) -> &str {
        &self.message
    }
}

thread_local! {
    static OUTGOING: RefCell<Vec<Vec<OwnedFd>>> = const { RefCell::new(Vec::new()) };
    static INCOMING: RefCell<Vec<Vec<Option<OwnedFd>>>> = const { RefCell::new(Vec::new()) };
}

/// Pops the table pushed by its creator even when serde unwinds.
struct TableGuard<'a, T: 'static>(
    &'static std::thread::LocalKey<RefCell<Vec<T>>>,
    std::marker::PhantomData<&'a ()>,
);

impl<T> TableGuard<'_, T> {
    fn push(key: &'static std::thread::LocalKey<RefCell<Vec<T>>>, table: T) -> Self {
        key.with(|stack| stack.borrow_mut().push(table));
        TableGuard(key, std::marker::PhantomData)
    }

    fn pop(self) -> T {
        let table = self
            .0
            .with(|stack| stack.borrow_mut().pop())
            .expect("table pushed by this guard");
        std::mem::forget(self);
        table
    }
}

impl<T> Drop for TableGuard<'_, T> {
    fn drop(&mut self) {
        self.0.with(|stack| stack.borrow_mut().pop());
    }
}

/// Encodes `value`, collecting the descriptors of the handles inside it.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Message, EncodeError> {
    let guard = TableGuard::push(&OUTGOING, Vec::new());
    let bytes = postcard::to_stdvec(value);
    let fds = guard.pop();
    let bytes = bytes.map_err(|e| EncodeError::new(describe_postcard(e)))?;
    Ok(Message { bytes, fds })
}

/// Encodes `value` into `bytes` (cleared first, its allocation reused), returning the descriptors
/// of the handles inside it.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    bytes: &mut Vec<u8>,
) -> Result<Vec<OwnedFd>, EncodeError> {
    let guard = TableGuard::push(&OUTGOING, Vec::new());
    let mut buffer = std::mem::take(bytes);
    buffer.clear();
    let encoded = postcard::to_extend(value, buffer);
    let fds = guard.pop();
    *bytes = encoded.map_err(|e| EncodeError::new(describe_postcard(e)))?;
    Ok(fds)
}

/// Encodes a value that holds no handle (an internal envelope); its descriptors are refused.
pub(crate) fn encode_plain<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let message = encode(value)?;
    if !message.fds.is_empty() {
        return Err(EncodeError::new("this value may not contain handles"));
    }
    Ok(message.bytes)
}

/// Decodes a `T` from `message`, handing its handles their descriptors. Descriptors no handle
/// claimed are closed. Trailing bytes are an error.
pub(crate) fn decode<T: DeserializeOwned>(message: Message) -> Result<T, DecodeError> {
    decode_from(&message.bytes, message.fds)
}

/// Decodes a `T` from `bytes` and the descriptors `fds` (see [`decode`]).
pub(crate) fn decode_from<T: DeserializeOwned>(
    bytes: &[u8],
    fds: Vec<OwnedFd>,
) -> Result<T, DecodeError> {
    let guard = TableGuard::push(&INCOMING, fds.into_iter().map(Some).collect());
    let value = postcard::take_from_bytes::<T>(bytes);
    drop(guard.pop());
    match value {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(DecodeError::new(format!(
            "{} unexpected trailing bytes",
            rest.len()
        ))),
        Err(e) => Err(DecodeError::new(describe_postcard(e))),
    }
}

/// Decodes an internal envelope that carries no handle.
pub(crate) fn decode_plain<T: DeserializeOwned>(bytes: Vec<u8>) -> Result<T, DecodeError> {
    decode(Message {
        bytes,
        fds: Vec::new(),
    })
}

thread_local! {
    /// The message of the last custom error a handle gave in this thread ([`refuse`]): postcard
    /// keeps only that there was one.
    static REFUSAL: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A custom serde error that a handle's `Serialize` or `Deserialize` gives, whose message the
/// encode or decode error then carries (postcard would drop it).
pub(crate) fn refuse<E: serde::de::Error>(message: impl fmt::Display) -> E {
    let message = message.to_string();
    REFUSAL.with(|said| *said.borrow_mut() = Some(message.clone()));
    E::custom(message)
}

/// [`refuse`], for a `Serialize`.
pub(crate) fn refuse_serializing<E: serde::ser::Error>(message: impl fmt::Display) -> E {
    let message = message.to_string();
    REFUSAL.with(|said| *said.borrow_mut() = Some(message.clone()));
    E::custom(message)
}

fn describe_postcard(e: postcard::Error) -> String {
    let refusal = REFUSAL.with(|said| said.borrow_mut().take());
    match e {
        postcard::Error::SerdeSerCustom | postcard::Error::SerdeDeCustom if refusal.is_some() => {
            refusal.expect("just checked")
        }
        // postcard reports a custom serde error without its text; say what usually causes it.
        postcard::Error::SerdeSerCustom => "a Serialize implementation returned an error".into(),
        postcard::Error::SerdeDeCustom => "a Deserialize implementation returned an error".into(),
        postcard::Error::WontImplement => {
            "the type needs a self-describing format (deserialize_any), which postcard is not"
                .into()
        }
        other => other.to_string(),
    }
}

/// Serializes a handle's descriptor: a duplicate goes into the message's table, its index into the
/// bytes. Outside [`encode`] (another serializer, e.g. JSON) this is an error: a descriptor only means
/// something when a multiproc carrier moves it.
pub(crate) fn serialize_fd<S: Serializer>(
    fd: BorrowedFd<'_>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let index = OUTGOING.with(|stack| {
        let mut stack = stack.borrow_mut();
        let table = stack
            .last_mut()
            .ok_or_else(|| S::Error::custom(OUTSIDE_CARRIER))?;
        let owned = fd
            .try_clone_to_owned()
            .map_err(|e| S::Error::custom(format!("dup failed: {e}")))?;
        table.push(owned);
        Ok(table.len() - 1)
    })?;
    u32::try_from(index)
        .map_err(S::Error::custom)?
        .serialize(serializer)
}

/// [`serialize_fd`] for a `#[serde(serialize_with)]` field holding `&OwnedFd`.
pub(crate) fn serialize_owned_fd<S: Serializer>(
    fd: &&OwnedFd,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serialize_fd(fd.as_fd(), serializer)
}

/// Deserializes a handle's descriptor from the message being decoded. Each index is taken once.
pub(crate) fn deserialize_fd<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<OwnedFd, D::Error> {
    let index = u32::deserialize(deserializer)? as usize;
    INCOMING.with(|stack| {
        let mut stack = stack.borrow_mut();
        let table = stack
            .last_mut()
            .ok_or_else(|| D::Error::custom(OUTSIDE_CARRIER))?;
        match table.get_mut(index).map(Option::take) {
            Some(Some(fd)) => Ok(fd),
            Some(None) => Err(D::Error::custom(format!(
                "handle {index} was claimed twice"
            ))),
            None => Err(D::Error::custom(format!(
                "handle {index} missing: the message carries {} descriptors",
                table.len()
            ))),
        }
    })
}

const OUTSIDE_CARRIER: &str = "a multiproc handle can only be serialized by multiproc itself, \
     as a Process argument or result or a message on a multiproc channel";

/// An already encoded value travels as its bytes and its descriptors, which join the message
/// it is part of: so a message can carry other messages (a pool's chunk of arguments).
impl Serialize for Message {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(2)?;
        tuple.serialize_element(serde_bytes::Bytes::new(&self.bytes))?;
        tuple.serialize_element(&Fds(&self.fds))?;
        tuple.end()
    }
}

struct Fds<'a>(&'a [OwnedFd]);

impl Serialize for Fds<'_> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for fd in self.0 {
            seq.serialize_element(&FdRef(fd.as_fd()))?;
        }
        seq.end()
    }
}

struct FdRef<'a>(BorrowedFd<'a>);

impl Serialize for FdRef<'_> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        serialize_fd(self.0, serializer)
    }
}

struct FdOwned(OwnedFd);

impl<'de> Deserialize<'de> for FdOwned {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_fd(deserializer).map(FdOwned)
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (bytes, fds): (serde_bytes::ByteBuf, Vec<FdOwned>) =
            Deserialize::deserialize(deserializer)?;
        Ok(Message {
            bytes: bytes.into_vec(),
            fds: fds.into_iter().map(|fd| fd.0).collect(),
        })
    }
}

/// Every object in shared memory travels as its descriptor: the receiver maps the same memory.
impl<S: SharedState, E: ShmSafe> Serialize for Object<S, E> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        serialize_fd(self.as_fd(), serializer)
    }
}

impl<'de, S: SharedState, E: ShmSafe> Deserialize<'de> for Object<S, E> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fd = deserialize_fd(deserializer)?;
        Object::open(fd).map_err(D::Error::custom)
    }
}
