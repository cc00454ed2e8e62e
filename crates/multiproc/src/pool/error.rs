//! What can go wrong with a pool's task.

use serde::{Deserialize, Serialize};

use crate::process::ExitStatus;

/// A task did not give its result. Each task's error is its own: the other tasks are unaffected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PoolError {
    /// The task's function panicked, with this message.
    #[error("the task panicked: {message}")]
    Panicked {
        /// The panic's message.
        message: String,
    },
    /// The worker process running the task died (killed, aborted, out of memory). A new worker
    /// took its place. Python's `Pool` hangs forever here.
    #[error("worker process {pid} died while running the task ({})", describe(*.signal, *.exit_code))]
    WorkerDied {
        /// The worker's process id.
        pid: u32,
        /// The signal that ended it (9 for SIGKILL, 6 for abort), if a signal did.
        signal: Option<i32>,
        /// Its exit code, if it exited (`std::process::exit` inside a task).
        exit_code: Option<i32>,
    },
    /// The task's arguments did not serialize; nothing was submitted.
    #[error("the task's arguments did not serialize: {message}")]
    Encode {
        /// What the serializer said.
        message: String,
    },
    /// The worker could not deserialize the task's arguments.
    #[error("the worker could not decode the task's arguments: {message}")]
    ArgsDecode {
        /// What the deserializer said.
        message: String,
    },
    /// The task's result did not serialize in the worker.
    #[error("the task's result did not serialize: {message}")]
    ResultEncode {
        /// What the serializer said.
        message: String,
    },
    /// The task's result did not deserialize here as the expected type.
    #[error("the task's result did not decode: {message}")]
    ResultDecode {
        /// What the deserializer said.
        message: String,
    },
    /// The pool's initializer failed in a worker (it panicked, or its arguments did not decode):
    /// the pool runs no task rather than restart workers forever, as Python's does.
    #[error("the pool's initializer failed: {message}")]
    InitializerFailed {
        /// What went wrong.
        message: String,
    },
    /// A worker process could not be started.
    #[error("a worker process could not be started: {message}")]
    Spawn {
        /// What went wrong.
        message: String,
    },
    /// The pool was closed: it takes no new task. Python: `ValueError('Pool not running')`.
    #[error("the pool is closed and takes no new task")]
    Closed,
    /// The pool was terminated (or dropped) before the task finished.
    #[error("the pool was terminated before the task finished")]
    Terminated,
    /// No result by the deadline (`try_get`, `get_timeout`, `get_deadline`, and the same of
    /// `IMap::next`); the task goes on.
    #[error("no result by the deadline")]
    Timeout,
    /// `get_timeout` already gave this result.
    #[error("the result was already taken")]
    AlreadyTaken,
}

fn describe(signal: Option<i32>, exit_code: Option<i32>) -> String {
    match (signal, exit_code) {
        (Some(signal), _) => ExitStatus::Signaled(signal).to_string(),
        (None, Some(code)) => ExitStatus::Exited(code).to_string(),
        (None, None) => "unknown status".to_string(),
    }
}

impl PoolError {
    /// Whether no result came by the deadline (the task goes on).
    pub fn is_timeout(&self) -> bool {
        matches!(self, PoolError::Timeout)
    }
}
