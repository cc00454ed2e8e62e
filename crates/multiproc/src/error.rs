//! The crate-wide error: every operation's own error converts into it.

use crate::process::{JoinError, SpawnError};
use crate::shm::ShmError;
use crate::transfer::{DecodeError, EncodeError};

/// Any multiproc error. Each operation returns its own, narrower error type; all convert into this
/// one with `?`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Starting a process failed.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// A process gave no return value.
    #[error(transparent)]
    Join(#[from] JoinError),
    /// Shared memory could not be created, opened or accessed.
    #[error(transparent)]
    Shm(#[from] ShmError),
    /// A value could not be serialized.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A value could not be deserialized.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
