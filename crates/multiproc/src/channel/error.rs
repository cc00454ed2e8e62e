//! What can go wrong sending and receiving on a pipe.

use std::io;

use crate::transfer::{DecodeError, EncodeError};

/// A message was not sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// Every other end is closed (dropped, or its process died). Python: `BrokenPipeError`.
    #[error("the other end of the pipe is closed")]
    Disconnected,
    /// The message is longer than the connection's maximum; nothing was sent.
    #[error("a message of {len} bytes is over the maximum of {max}")]
    TooLarge {
        /// The message's size in bytes.
        len: usize,
        /// The connection's maximum.
        max: usize,
    },
    /// The value did not serialize; nothing was sent.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The operating system failed.
    #[error("sending on the pipe failed: {0}")]
    Os(#[source] io::Error),
}

/// No message was received.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// Every other end is closed and no message is left. Python: `EOFError`.
    #[error("the other end of the pipe is closed")]
    Disconnected,
    /// The next message is longer than this connection's maximum; it was dropped unread.
    #[error("a message of {len} bytes is over the maximum of {max}; it was dropped")]
    TooLarge {
        /// The message's size in bytes.
        len: u64,
        /// The connection's maximum.
        max: usize,
    },
    /// The message did not deserialize as the expected type; it is consumed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The operating system failed.
    #[error("receiving on the pipe failed: {0}")]
    Os(#[source] io::Error),
}

/// No message was received in time.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecvTimeoutError {
    /// Nothing arrived before the timeout.
    #[error("no message arrived before the timeout")]
    Timeout,
    /// Anything [`RecvError`] says.
    #[error(transparent)]
    Recv(#[from] RecvError),
}

impl RecvTimeoutError {
    /// Whether nothing arrived in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }

    /// Whether the other end is closed.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, RecvTimeoutError::Recv(RecvError::Disconnected))
    }
}
