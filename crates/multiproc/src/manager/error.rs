//! What can go wrong talking to a manager.

use crate::channel::ConnectError;

/// A manager operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// The manager is gone (its process died, or the connection broke): every call says so at
    /// once, none hangs.
    #[error("the manager is gone: {reason}")]
    Gone {
        /// What was seen.
        reason: String,
    },
    /// The server refused the operation, with one of the codes of the protocol (`KeyMissing`,
    /// `TypeError`, `UnknownObject`, `NotExposed`, `FrameTooLarge`, ...).
    #[error("the manager refused: {code}: {message}")]
    Remote {
        /// The error's code.
        code: String,
        /// What the server said.
        message: String,
    },
    /// The handshake failed (a wrong key is [`ConnectError::AuthFailed`]).
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A value did not convert to or from the protocol's values.
    #[error("a value did not convert: {0}")]
    Value(String),
    /// The server said something this client does not understand.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server process could not be started.
    #[error("the manager could not start: {0}")]
    Start(String),
    /// The operating system failed.
    #[error("manager: {0}")]
    Os(#[source] std::io::Error),
}
