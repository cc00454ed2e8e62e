//! A pool worker: the process side, and the messages between it and the pool's driver.
//!
//! Each worker has its own task [`Queue`] that only the driver puts on; all workers put what they
//! have to say on the driver's inbox, a [`Queue`] too, so that a busy pool moves tasks and
//! results through shared memory without a system call. A worker first runs the initializer
//! and says [`Event::Ready`] (or [`Event::InitFailed`]); then it takes chunks, one at a time,
//! each answered by [`Event::Done`] with one result per item. It takes the next chunk only when
//! done, so of the chunks given to it, only the oldest unanswered one can have started.

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::PoolError;
use crate::channel::Queue;
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

/// Work for one worker, in its own queue.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    /// Run `entry` on each item (an encoded argument, handles included).
    Chunk {
        id: u64,
        entry: ItemEntry,
        items: Vec<Message>,
    },
    /// No more work: exit.
    Stop,
}

/// What arrives in the driver's inbox.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Inbox {
    /// From worker `worker`.
    Worker { worker: u64, event: Event },
    /// A submitter has something for the driver.
    Wake,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Event {
    Ready,
    InitFailed(String),
    Done {
        id: u64,
        results: Vec<Result<Message, PoolError>>,
    },
    /// Reached its task limit: it exits now.
    Retiring,
}

/// What a worker process is given.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WorkerArgs {
    pub(crate) id: u64,
    pub(crate) tasks: Queue<ToWorker>,
    pub(crate) inbox: Queue<Inbox>,
    /// The initializer and its encoded arguments.
    pub(crate) initializer: Option<(ItemEntry, Message)>,
    /// Chunks to run before exiting (to be replaced), if limited.
    pub(crate) max_tasks: Option<u64>,
}

/// The worker process: runs what the driver sends until told to stop or its task limit is
/// reached. If the driver's queues fail, it ends.
pub(crate) fn run(args: WorkerArgs) {
    let WorkerArgs {
        id,
        tasks,
        inbox,
        initializer,
        max_tasks,
    } = args;
    let tell = |event: Event| inbox.put(&Inbox::Worker { worker: id, event }).is_ok();
    if let Some((entry, args)) = initializer
        && let Err(e) = invoke(entry, args)
    {
        tell(Event::InitFailed(e.to_string()));
        return;
    }
    if !tell(Event::Ready) {
        return;
    }
    let mut done = 0u64;
    loop {
        if max_tasks.is_some_and(|max| done >= max) {
            tell(Event::Retiring);
            return;
        }
        let Ok(ToWorker::Chunk { id, entry, items }) = tasks.get() else {
            return; // told to stop, or the pool is gone
        };
        let results = items.into_iter().map(|item| invoke(entry, item)).collect();
        if !tell(Event::Done { id, results }) {
            return;
        }
        done += 1;
    }
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
