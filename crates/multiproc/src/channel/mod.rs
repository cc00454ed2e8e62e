//! Messages between processes: pipes, queues, and authenticated connections between unrelated
//! processes (listeners and clients).

pub(crate) mod admission;
pub(crate) mod auth;
mod error;
mod listener;
mod pipe;
mod queue;
mod simple_queue;
mod stream;

pub use auth::HANDSHAKE_TIMEOUT;
pub use error::{
    ConnectError, GetError, GetTimeoutError, JoinTimeoutError, PutError, PutTimeoutError,
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TaskDoneError, TasksLost,
};
pub use listener::{Client, Listener};
pub use pipe::{Connection, DEFAULT_MAX_MESSAGE, Pipe, Receiver, Sender, pipe};
pub use queue::{JoinableQueue, Queue, RING_BYTES, RING_ITEM_MAX, SIDE_BYTES_MAX};
pub use simple_queue::SimpleQueue;
