//! Messages between processes: pipes and simple queues now; queues, listeners and clients to come.

mod error;
mod pipe;
mod simple_queue;

pub use error::{RecvError, RecvTimeoutError, SendError};
pub use pipe::{Connection, DEFAULT_MAX_MESSAGE, Pipe, Receiver, Sender, pipe};
pub use simple_queue::SimpleQueue;
