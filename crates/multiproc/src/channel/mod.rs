//! Messages between processes: pipes, queues; listeners and clients to come.

mod error;
mod pipe;
mod queue;
mod simple_queue;

pub use error::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, RecvError, RecvTimeoutError, SendError,
    TaskDoneError,
};
pub use pipe::{Connection, DEFAULT_MAX_MESSAGE, Pipe, Receiver, Sender, pipe};
pub use queue::{JoinableQueue, Queue, RING_BYTES, RING_ITEM_MAX, SIDE_BYTES_MAX};
pub use simple_queue::SimpleQueue;
