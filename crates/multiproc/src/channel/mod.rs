//! Messages between processes: pipes now; queues, listeners and clients to come.

mod error;
mod pipe;

pub use error::{RecvError, RecvTimeoutError, SendError};
pub use pipe::{Connection, DEFAULT_MAX_MESSAGE, Pipe, Receiver, Sender, pipe};
