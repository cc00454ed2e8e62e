//! What can go wrong starting and joining a process, and how a process ended.

use std::fmt;
use std::io;

use crate::sys;
use crate::transfer::{DecodeError, EncodeError};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// It exited with this code (0 after its function returned).
    Exited(i32),
    /// A signal ended it: SIGTERM (15) after [`terminate`](crate::Process::terminate), SIGKILL (9)
    /// after [`kill`](crate::Process::kill). Python reports this as a negative `exitcode`.
    Signaled(i32),
}

impl ExitStatus {
    /// Whether it exited with code 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }

    /// The exit code, if it exited.
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Exited(code) => Some(code),
            ExitStatus::Signaled(_) => None,
        }
    }

    /// The signal that ended it, if one did.
    pub fn signal(self) -> Option<i32> {
        match self {
            ExitStatus::Signaled(signal) => Some(signal),
            ExitStatus::Exited(_) => None,
        }
    }

    /// Python's `exitcode`: the code, or minus the signal number.
    #[doc(alias = "exitcode")]
    pub fn python_exitcode(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(signal) => -signal,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitStatus::Exited(code) => write!(f, "exit code {code}"),
            ExitStatus::Signaled(signal) => match sys::signal_name(signal) {
                Some(name) => write!(f, "signal {signal} ({name})"),
                None => write!(f, "signal {signal}"),
            },
        }
    }
}

/// A process could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// `multiproc::init()` has not run in this process. It must be the first line of `main` (in a
    /// test file: `multiproc::test_support!();`), because in a child it is what runs the task.
    #[error(
        "multiproc::init() was not called: call it first in main (in tests: multiproc::test_support!())"
    )]
    NotInitialized,
    /// The arguments could not be serialized; nothing was started.
    #[error("the process arguments could not be serialized: {0}")]
    Encode(#[from] EncodeError),
    /// The operating system could not start the child (no memory, too many processes or open files).
    #[error("the child process could not be started: {0}")]
    Start(#[from] io::Error),
    /// The fork server ([`StartMethod::ForkServer`](crate::StartMethod::ForkServer)) ended while
    /// it was starting the child (someone killed it): the child may have begun and died with it,
    /// so it is not started again. The next start starts a new server.
    #[error(
        "the fork server ended while it was starting the child; the next start starts a new server"
    )]
    ForkServerGone,
}

/// Why [`join`](crate::Process::join) gave no return value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The function panicked in the child, with this message.
    #[error("the child process panicked: {message}")]
    Panicked {
        /// The panic's message (`"Box<dyn Any>"` when it was not a string).
        message: String,
    },
    /// The child exited (for example with `std::process::exit`) before its function returned.
    #[error("the child process exited with code {code} before its function returned")]
    Exited {
        /// Its exit code.
        code: i32,
    },
    /// A signal ended the child before its function returned.
    #[error("the child process was killed by {}", ExitStatus::Signaled(*.signal))]
    Signaled {
        /// The signal number: 15 for SIGTERM, 9 for SIGKILL.
        signal: i32,
    },
    /// The deadline of `try_join`, `join_timeout` or `join_deadline` came and the child is still
    /// running; join again later, or terminate it.
    #[error("the child process is still running at the deadline")]
    Timeout,
    /// The child ended before it took its task: its program does not call `multiproc::init()` first.
    #[error(
        "the child process ended ({status}) before it started its task: main must call \
         multiproc::init() first (in tests: multiproc::test_support!())"
    )]
    NotStarted {
        /// How it ended.
        status: ExitStatus,
    },
    /// The child started but could not run the function (its arguments would not deserialize).
    #[error("the child process could not run its task: {message}")]
    Bootstrap {
        /// What the child reported.
        message: String,
    },
    /// The function returned a value that could not be serialized in the child.
    #[error("the child's return value could not be serialized: {message}")]
    ResultEncode {
        /// What the serializer said.
        message: String,
    },
    /// The return value arrived but could not be deserialized here.
    #[error("the child's return value could not be deserialized: {0}")]
    ResultDecode(#[from] DecodeError),
    /// The return value was already taken by an earlier join.
    #[error("the process was already joined")]
    AlreadyJoined,
    /// The operating system failed while waiting.
    #[error("waiting for the child process failed: {0}")]
    Os(#[from] io::Error),
}

impl JoinError {
    /// Whether the join timed out (the child still runs).
    pub fn is_timeout(&self) -> bool {
        matches!(self, JoinError::Timeout)
    }

    /// Whether the function panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked { .. })
    }

    /// The signal that ended the child, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self {
            JoinError::Signaled { signal } => Some(*signal),
            JoinError::NotStarted { status } => status.signal(),
            _ => None,
        }
    }

    /// The exit code, if the child exited without returning.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            JoinError::Exited { code } => Some(*code),
            JoinError::NotStarted { status } => status.code(),
            _ => None,
        }
    }
}
