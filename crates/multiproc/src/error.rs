//! The crate-wide error: every operation's own error converts into it.

use crate::channel::{
    ConnectError, GetError, GetTimeoutError, JoinTimeoutError, PutError, PutTimeoutError,
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TaskDoneError, TasksLost,
};
use crate::deadline::Timeout;
use crate::manager::ManagerError;
use crate::pool::PoolError;
use crate::process::{JoinError, SpawnError};
use crate::shared::IndexOutOfRange;
use crate::shm::ShmError;
use crate::sync::{
    AcquireError, AcquireTimeoutError, BarrierTimeoutError, BrokenBarrier, LockFailure,
    ReleaseError, WaitError, WaitTimeoutError,
};
use crate::transfer::{DecodeError, EncodeError};

/// Any multiproc error. Each operation returns its own, narrower error type; all convert into this
/// one with `?`.
///
/// A lock error that carried a guard ([`AcquireError::OwnerDied`]) loses it here: the guard is
/// dropped unrepaired, which leaves the lock not recoverable. Match the narrow error to repair.
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
    /// A lock could not be taken cleanly.
    #[error(transparent)]
    Lock(#[from] LockFailure),
    /// A release was refused.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// A barrier is broken.
    #[error(transparent)]
    BrokenBarrier(#[from] BrokenBarrier),
    /// A timed barrier wait failed.
    #[error(transparent)]
    BarrierTimeout(#[from] BarrierTimeoutError),
    /// A wait ended at its deadline.
    #[error(transparent)]
    Timeout(#[from] Timeout),
    /// A pipe could not send.
    #[error(transparent)]
    Send(#[from] SendError),
    /// A pipe did not take a message in time.
    #[error(transparent)]
    SendTimeout(#[from] SendTimeoutError),
    /// A pipe could not receive.
    #[error(transparent)]
    Recv(#[from] RecvError),
    /// A pipe received nothing in time.
    #[error(transparent)]
    RecvTimeout(#[from] RecvTimeoutError),
    /// A queue could not put.
    #[error(transparent)]
    Put(#[from] PutError),
    /// A queue could not put in time.
    #[error(transparent)]
    PutTimeout(#[from] PutTimeoutError),
    /// A queue could not get.
    #[error(transparent)]
    Get(#[from] GetError),
    /// A queue gave nothing in time.
    #[error(transparent)]
    GetTimeout(#[from] GetTimeoutError),
    /// A manager operation failed.
    #[error(transparent)]
    Manager(#[from] ManagerError),
    /// A pool's task gave no result.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// A listener or client could not connect.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// `task_done` once too often.
    #[error(transparent)]
    TaskDone(#[from] TaskDoneError),
    /// Items of a joinable queue were lost with the consumers that held them.
    #[error(transparent)]
    TasksLost(#[from] TasksLost),
    /// A timed join of a joinable queue failed.
    #[error(transparent)]
    JoinTimeout(#[from] JoinTimeoutError),
    /// An operating system call failed (creating a pipe, polling).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// An array index past the end.
    #[error(transparent)]
    IndexOutOfRange(#[from] IndexOutOfRange),
}

impl<G> From<AcquireError<G>> for Error {
    fn from(e: AcquireError<G>) -> Self {
        Error::Lock(e.into())
    }
}

impl<G> From<AcquireTimeoutError<G>> for Error {
    fn from(e: AcquireTimeoutError<G>) -> Self {
        Error::Lock(e.into())
    }
}

impl From<WaitError> for Error {
    fn from(e: WaitError) -> Self {
        Error::Lock(e.into())
    }
}

impl From<WaitTimeoutError> for Error {
    fn from(e: WaitTimeoutError) -> Self {
        Error::Lock(e.into())
    }
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
