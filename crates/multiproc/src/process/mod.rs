//! Processes that run a Rust function: starting them, start methods, joining, signals.
//!
//! A child runs `f(args)` and [`Process::join`] returns what `f` returned. `f` is a plain function
//! or a closure that captures nothing (it coerces to `fn(A) -> R`); `args` and the result travel
//! serialized, and handles inside them (shared memory, and later locks, queues, connections,
//! proxies) travel with their file descriptors.

mod bootstrap;
mod error;
mod fork_server;
mod handle;
mod identity;
mod many;
mod reaper;
mod spawner;
mod task;

pub use bootstrap::init;
pub use error::{ExitStatus, JoinError, SpawnError};
pub use handle::Process;
pub use identity::{CurrentProcess, current_process};
pub use many::join_all;

pub(crate) use bootstrap::is_initialized;
pub(crate) use task::panic_message;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::transfer::{self, EncodeError, Message, packet};

/// How a child process comes to be.
///
/// Python's three. `Spawn` is the safe default; `Fork` is the fastest; `ForkServer` is nearly as
/// fast as `Fork` and as safe as `Spawn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StartMethod {
    /// Execute this program again (`/proc/self/exe`); the new process calls [`init`] first thing in
    /// `main`, which runs the task. Safe whatever threads the parent has. The default.
    #[default]
    Spawn,
    /// Fork this process: faster, and the child starts with a copy of the parent's memory.
    ///
    /// Hazard (as in Python): only the forking thread exists in the child. A lock another thread
    /// held at the fork (including the stdout lock while it printed) stays held forever in the
    /// child, and the child deadlocks when it takes it. Prefer [`StartMethod::ForkServer`] in
    /// programs with threads.
    Fork,
    /// Fork a clean process: the first such start executes this program again as a fork server
    /// (one thread, nothing of the parent's memory), which then forks every child started this
    /// way. Safe whatever threads the parent has, and nearly as fast as `Fork` once the server
    /// runs.
    ///
    /// The child starts from the server's state, not the parent's: the program as `init` left it,
    /// with the environment and working directory the parent had when it started the server. Its
    /// arguments reach it as with `Spawn`. The server follows its parent, and its children follow
    /// it: if something kills the server, its children die with SIGKILL, a start in progress fails
    /// with [`SpawnError::ForkServerGone`], and the next start starts a new server.
    #[doc(alias = "forkserver")]
    ForkServer,
}

impl<R> Process<R> {
    /// Starts a process running `f(args)` with the default settings (start method
    /// [`StartMethod::Spawn`], name `Process-N`).
    ///
    /// Fails at once, in the caller, if `args` do not serialize or the child cannot be started.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// fn shout(word: String) -> String {
    ///     word.to_uppercase()
    /// }
    /// let child = multiproc::Process::spawn("hello".to_string(), shout)?;
    /// assert_eq!(child.join()?, "HELLO");
    /// # Ok(())
    /// # }
    /// ```
    #[doc(alias = "start")]
    pub fn spawn<A>(args: A, f: fn(A) -> R) -> Result<Process<R>, SpawnError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        Builder::new().spawn(args, f)
    }
}

impl Process<()> {
    /// A builder to choose the name and the start method; its `spawn` gives the `Process<R>`.
    pub fn builder() -> Builder {
        Builder::new()
    }
}

/// Settings for a new process: its name and start method.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{Process, StartMethod};
///
/// let child = Process::builder()
///     .name("doubler")
///     .start_method(StartMethod::Fork)
///     .spawn(21, |n: u64| n * 2)?;
/// assert_eq!(child.name(), "doubler");
/// assert_eq!(child.join()?, 42);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Builder {
    name: Option<String>,
    start_method: StartMethod,
}

impl Builder {
    /// Default settings.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The name [`Process::name`] reports.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// How the child is started.
    #[doc(alias = "set_start_method")]
    #[doc(alias = "get_context")]
    pub fn start_method(mut self, method: StartMethod) -> Builder {
        self.start_method = method;
        self
    }

    /// Starts a process running `f(args)`. See [`Process::spawn`].
    #[doc(alias = "start")]
    pub fn spawn<A, R>(self, args: A, f: fn(A) -> R) -> Result<Process<R>, SpawnError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        if !is_initialized() {
            return Err(SpawnError::NotInitialized);
        }
        let Message { bytes: args, fds } = transfer::encode(&args)?;
        if fds.len() > packet::MAX_HANDLES {
            let count = fds.len();
            return Err(EncodeError::new(format!(
                "{count} handles, more than the {} one message carries",
                packet::MAX_HANDLES
            ))
            .into());
        }
        let (identity, default_name) = identity::next_child();
        let name = self.name.unwrap_or(default_name);
        let task = task::Task {
            entry: task::entry_for(f),
            name: name.clone(),
            identity,
            args,
        };
        let task = Message {
            bytes: transfer::encode_plain(&task)?,
            fds,
        };
        let started = spawner::start(self.start_method, task)?;
        Ok(Process::new(started, name))
    }
}
