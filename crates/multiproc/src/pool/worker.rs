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

/// A function run on a chunk: decodes the arguments (a `Vec<A>`), calls the user's function on
/// each, catching a panic per item, and encodes the results (`Result<Vec<Result<R, PoolError>>,
/// PoolError>`: the outer error when the arguments did not decode).
pub(crate) type ChunkEntry = EntryPoint<Message, Message>;

/// The initializer: decodes its argument and calls the user's function.
pub(crate) type InitEntry = EntryPoint<Message, Result<(), PoolError>>;

/// The chunk entry point for `f`.
pub(crate) fn chunk_entry<A: DeserializeOwned, R: Serialize>(f: fn(A) -> R) -> ChunkEntry {
    EntryPoint::new(f, call_chunk::<A, R>)
}

/// The initializer entry point for `f`.
pub(crate) fn init_entry<A: DeserializeOwned>(f: fn(A)) -> InitEntry {
    EntryPoint::new(f, call_init::<A>)
}

fn call_chunk<A: DeserializeOwned, R: Serialize>(f: fn(A) -> R, args: Message) -> Message {
    let args: Vec<A> = match transfer::decode(args) {
        Ok(args) => args,
        Err(e) => {
            return encode_outcome::<Vec<Result<R, PoolError>>>(&Err(PoolError::ArgsDecode {
                message: e.message().to_owned(),
            }));
        }
    };
    let results: Vec<Result<R, PoolError>> = args
        .into_iter()
        .map(|arg| {
            catch_unwind(AssertUnwindSafe(|| f(arg))).map_err(|payload| PoolError::Panicked {
                message: crate::process::panic_message(payload.as_ref()),
            })
        })
        .collect();
    match transfer::encode(&Ok::<_, PoolError>(&results)) {
        Ok(message) => message,
        // Some result does not serialize: find which, and fail only those.
        Err(_) => {
            let results: Vec<Result<&R, PoolError>> = results
                .iter()
                .map(|result| match result {
                    Ok(value) => transfer::encode(value).map(|_| value).map_err(|e| {
                        PoolError::ResultEncode {
                            message: e.message().to_owned(),
                        }
                    }),
                    Err(e) => Err(e.clone()),
                })
                .collect();
            encode_outcome(&Ok(results))
        }
    }
}

fn encode_outcome<T: Serialize>(outcome: &Result<T, PoolError>) -> Message {
    transfer::encode(outcome).expect("encoding a pool error does not fail")
}

fn call_init<A: DeserializeOwned>(f: fn(A), args: Message) -> Result<(), PoolError> {
    let args: A = transfer::decode(args).map_err(|e| PoolError::ArgsDecode {
        message: e.message().to_owned(),
    })?;
    catch_unwind(AssertUnwindSafe(|| f(args))).map_err(|payload| PoolError::Panicked {
        message: crate::process::panic_message(payload.as_ref()),
    })
}

/// Work for one worker, in its own queue.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    /// Run `entry` on the encoded arguments (handles included).
    Chunk {
        id: u64,
        entry: ChunkEntry,
        args: Message,
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
    /// The chunk's outcome, as `call_chunk` encodes it.
    Done {
        id: u64,
        outcome: Message,
    },
    /// The chunk could not run at all.
    Failed {
        id: u64,
        error: PoolError,
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
    pub(crate) initializer: Option<(InitEntry, Message)>,
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
        && let Err(e) = invoke(entry, args).and_then(|outcome| outcome)
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
        let Ok(ToWorker::Chunk { id, entry, args }) = tasks.get() else {
            return; // told to stop, or the pool is gone
        };
        let event = match invoke(entry, args) {
            Ok(outcome) => Event::Done { id, outcome },
            Err(error) => Event::Failed { id, error },
        };
        if !tell(event) {
            return;
        }
        done += 1;
    }
}

/// Runs an entry point that came in this worker's own task queue (or its start arguments), which
/// only the pool's driver, in our parent, writes: one of the sources `EntryPoint`'s invariant
/// allows.
fn invoke<O>(entry: EntryPoint<Message, O>, args: Message) -> Result<O, PoolError> {
    entry.invoke(args).map_err(|_| PoolError::ArgsDecode {
        message: "the pool runs a different executable".into(),
    })
}
