//! A pool worker: the process side, and the messages between it and the pool's driver.
//!
//! The driver talks to each worker over a private pipe. First an [`Init`] (the initializer, if
//! any, and the task limit); the worker answers [`FromWorker::Ready`] or
//! [`FromWorker::InitFailed`]. Then [`Chunk`]s, each answered by [`FromWorker::Done`] with one
//! result per item, in order. A worker runs one chunk at a time and reads the next only when done,
//! so of the chunks sent to it, only the oldest unanswered one can have started.
//!
//! Items travel as their encoded bytes; the descriptors of their handles are the message's, in
//! item order, each item saying how many are its own.

use std::os::fd::OwnedFd;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::PoolError;
use crate::channel::Connection;
use crate::sys::image::EntryPoint;
use crate::transfer::{self, Message};

/// A function run on one item: decodes the argument, calls the user's function, encodes the result.
pub(crate) type ItemEntry = EntryPoint<Message, Result<Message, PoolError>>;

/// The entry point for `f`.
pub(crate) fn entry_for<A: DeserializeOwned, R: Serialize>(f: fn(A) -> R) -> ItemEntry {
    EntryPoint::new(f, call::<A, R>)
}

fn call<A: DeserializeOwned, R: Serialize>(
    f: fn(A) -> R,
    args: Message,
) -> Result<Message, PoolError> {
    let args: A = transfer::decode(args).map_err(|e| PoolError::ArgsDecode {
        message: e.message().to_owned(),
    })?;
    let value =
        catch_unwind(AssertUnwindSafe(|| f(args))).map_err(|payload| PoolError::Panicked {
            message: crate::process::panic_message(payload.as_ref()),
        })?;
    transfer::encode(&value).map_err(|e| PoolError::ResultEncode {
        message: e.message().to_owned(),
    })
}

/// One item's encoded bytes; its descriptors are the next `fds` of the message.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Packed {
    #[serde(with = "serde_bytes")]
    pub(crate) bytes: Vec<u8>,
    pub(crate) fds: u32,
}

/// Packs `messages` into one list of bytes and one list of descriptors.
pub(crate) fn pack(messages: impl IntoIterator<Item = Message>) -> (Vec<Packed>, Vec<OwnedFd>) {
    let mut all_fds = Vec::new();
    let packed = messages
        .into_iter()
        .map(|Message { bytes, fds }| {
            let count = fds.len() as u32;
            all_fds.extend(fds);
            Packed { bytes, fds: count }
        })
        .collect();
    (packed, all_fds)
}

/// Unpacks one item, taking its descriptors from `fds`.
pub(crate) fn unpack(packed: Packed, fds: &mut impl Iterator<Item = OwnedFd>) -> Message {
    Message {
        bytes: packed.bytes,
        fds: fds.by_ref().take(packed.fds as usize).collect(),
    }
}

/// The first message to a worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Init {
    /// The initializer and its arguments (descriptors: the message's).
    pub(crate) initializer: Option<(ItemEntry, Packed)>,
    /// Chunks to run before exiting (to be replaced), if limited.
    pub(crate) max_tasks: Option<u64>,
}

/// A chunk of items to run with one function.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Chunk {
    pub(crate) id: u64,
    pub(crate) entry: ItemEntry,
    pub(crate) items: Vec<Packed>,
}

/// One item's outcome, as it travels back.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ItemResult {
    Returned(Packed),
    Failed(PoolError),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    Ready,
    InitFailed(String),
    Done { id: u64, results: Vec<ItemResult> },
}

/// The worker process: runs what the driver sends until its pipe closes or its task limit is
/// reached.
pub(crate) fn run(conn: Connection<()>) {
    let Ok(init) = conn.recv_message_blocking() else {
        return; // the pool is gone
    };
    let mut fds = init.fds.into_iter();
    let Ok(init) = transfer::decode_plain::<Init>(init.bytes) else {
        let _ = reply(
            &conn,
            &FromWorker::InitFailed("a malformed start message".into()),
            Vec::new(),
        );
        return;
    };
    if let Some((entry, args)) = init.initializer {
        let args = unpack(args, &mut fds);
        if let Err(e) = invoke(entry, args) {
            let _ = reply(&conn, &FromWorker::InitFailed(e.to_string()), Vec::new());
            return;
        }
    }
    if reply(&conn, &FromWorker::Ready, Vec::new()).is_err() {
        return;
    }
    let mut done = 0u64;
    while init.max_tasks.is_none_or(|max| done < max) {
        let Ok(message) = conn.recv_message_blocking() else {
            return; // the pool closed our pipe: no more work
        };
        let mut fds = message.fds.into_iter();
        let Ok(chunk) = transfer::decode_plain::<Chunk>(message.bytes) else {
            return;
        };
        let outcomes: Vec<Result<Message, PoolError>> = chunk
            .items
            .into_iter()
            .map(|item| invoke(chunk.entry, unpack(item, &mut fds)))
            .collect();
        let mut result_fds = Vec::new();
        let results = outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Ok(message) => {
                    let (mut packed, fds) = pack([message]);
                    result_fds.extend(fds);
                    ItemResult::Returned(packed.remove(0))
                }
                Err(e) => ItemResult::Failed(e),
            })
            .collect();
        if reply(
            &conn,
            &FromWorker::Done {
                id: chunk.id,
                results,
            },
            result_fds,
        )
        .is_err()
        {
            return;
        }
        done += 1;
    }
}

fn reply(conn: &Connection<()>, message: &FromWorker, fds: Vec<OwnedFd>) -> Result<(), ()> {
    let bytes = transfer::encode_plain(message).map_err(|_| ())?;
    conn.send_message(&bytes, &fds).map_err(|_| ())
}

/// The trust boundary of the worker: runs an entry point that came from the pool's driver.
#[allow(unsafe_code)]
fn invoke(entry: ItemEntry, args: Message) -> Result<Message, PoolError> {
    // SAFETY: the entry arrived on this worker's private pipe, which only the pool's driver (in
    // our parent, running this same image: we are its exec of `/proc/self/exe` or its fork)
    // holds; the driver made it with `EntryPoint::new`. `invoke` checks the image probe as well.
    match unsafe { entry.invoke(args) } {
        Ok(outcome) => outcome,
        Err(_) => Err(PoolError::ArgsDecode {
            message: "the pool runs a different executable".into(),
        }),
    }
}
