//! [`Process`]: a running child and its result.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::error::{ExitStatus, JoinError};
use super::reaper;
use super::spawner::Started;
use super::task::Report;
use crate::deadline;
use crate::sys::{self, ChildHandle, RawExitStatus};
use crate::transfer::{self, Message, packet};

/// A child process running a function, whose return value [`join`](Self::join) gives back.
///
/// Start one with [`Process::spawn`] or [`Process::builder`]. Dropping the handle without joining
/// lets the child run on (it is reaped in the background); a child never outlives this process.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::Process;
///
/// let child = Process::spawn((2, 3), |(a, b): (i32, i32)| a * b)?;
/// assert!(child.pid() > 0);
/// assert_eq!(child.name(), "Process-1");
/// assert_eq!(child.join()?, 6);
/// # Ok(())
/// # }
/// ```
pub struct Process<R> {
    child: ChildHandle,
    name: String,
    channel: OwnedFd,
    progress: Mutex<Progress>,
    _result: PhantomData<fn() -> R>,
}

/// What we know of the child so far.
#[derive(Default)]
struct Progress {
    /// It took its task (so it runs a multiproc bootstrap).
    started: bool,
    /// Its final report and that report's descriptors.
    report: Option<(Report, Vec<OwnedFd>)>,
    status: Option<ExitStatus>,
    /// The result was handed out.
    joined: bool,
}

impl<R> Process<R> {
    pub(crate) fn new(started: Started, name: String) -> Self {
        Process {
            child: started.child,
            name,
            channel: started.channel,
            progress: Mutex::new(Progress::default()),
            _result: PhantomData,
        }
    }

    /// The child's process id.
    #[doc(alias = "ident")]
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The child's name: the one given to the builder, or `Process-N` (`Process-N:M` for the M-th
    /// child of `Process-N`), as in Python.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the child is still running. Never blocks.
    pub fn is_alive(&self) -> bool {
        self.exit_status().is_none()
    }

    /// How the child ended, or `None` while it runs. Never blocks.
    #[doc(alias = "exitcode")]
    pub fn exit_status(&self) -> Option<ExitStatus> {
        let mut progress = self.progress();
        self.poll_exit(&mut progress).ok().flatten()
    }

    /// Asks the child to stop with SIGTERM. Its destructors and exit handlers do not run. A child
    /// that has already ended is not an error.
    pub fn terminate(&self) -> io::Result<()> {
        self.child.signal(false)
    }

    /// Stops the child at once with SIGKILL. A child that has already ended is not an error.
    pub fn kill(&self) -> io::Result<()> {
        self.child.signal(true)
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reaps the child if it ended.
    fn poll_exit(&self, progress: &mut Progress) -> io::Result<Option<ExitStatus>> {
        if progress.status.is_none() {
            progress.status = self.child.try_wait()?.map(|raw| match raw {
                RawExitStatus::Exited(code) => ExitStatus::Exited(code),
                RawExitStatus::Signaled(signal) => ExitStatus::Signaled(signal),
            });
        }
        Ok(progress.status)
    }

    /// Reads every report waiting on the socket, without blocking.
    fn drain(&self, progress: &mut Progress) {
        while let Ok(packet::Recv::Message(Message { bytes, fds })) =
            packet::recv(self.channel.as_fd(), true, usize::MAX)
        {
            match transfer::decode_plain::<Report>(bytes) {
                Ok(Report::Started) => progress.started = true,
                Ok(report) => progress.report = Some((report, fds)),
                Err(e) => {
                    let message = format!("it sent an unreadable report: {e}");
                    progress.report = Some((Report::BootstrapFailed(message), Vec::new()));
                }
            }
        }
    }

    /// Waits until the child ends or `deadline` passes, then reads what it reported. Reports are
    /// small datagrams (a large value travels in a memory file), so the child never waits for us to
    /// read them: watching its exit alone is enough.
    fn wait(
        &self,
        progress: &mut Progress,
        deadline: Option<Instant>,
    ) -> Result<ExitStatus, JoinError> {
        loop {
            if let Some(status) = self.poll_exit(progress)? {
                self.drain(progress);
                return Ok(status);
            }
            if deadline::passed(deadline) {
                return Err(JoinError::Timeout);
            }
            sys::wait_readable(self.child.as_fd(), deadline)?;
        }
    }
}

impl<R: DeserializeOwned> Process<R> {
    /// Waits for the child to end and returns what its function returned.
    ///
    /// The error tells apart a panic (with its message), an exit with a code, a kill by a signal, a
    /// child that never started its task, and a value that would not travel.
    pub fn join(self) -> Result<R, JoinError> {
        self.join_inner(None)
    }

    /// Like [`join`](Self::join) if the child has ended, else [`JoinError::Timeout`] at once: the
    /// child keeps running and can be joined again.
    pub fn try_join(&mut self) -> Result<R, JoinError> {
        self.join_inner(Some(Instant::now()))
    }

    /// Like [`join`](Self::join), but gives up with [`JoinError::Timeout`] after `timeout`
    /// (`Duration::MAX`: as long as it takes); the child keeps running and can be joined again.
    /// Python: `join(timeout)`.
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<R, JoinError> {
        self.join_inner(deadline::after(timeout))
    }

    /// Like [`join_timeout`](Self::join_timeout), until `deadline`.
    pub fn join_deadline(&mut self, deadline: Instant) -> Result<R, JoinError> {
        self.join_inner(Some(deadline))
    }

    fn join_inner(&self, deadline: Option<Instant>) -> Result<R, JoinError> {
        let mut progress = self.progress();
        if progress.joined {
            return Err(JoinError::AlreadyJoined);
        }
        let status = self.wait(&mut progress, deadline)?;
        progress.joined = true;
        match progress.report.take() {
            Some((Report::Returned(bytes), fds)) => Ok(transfer::decode(Message { bytes, fds })?),
            Some((Report::Panicked(message), _)) => Err(JoinError::Panicked { message }),
            Some((Report::ResultUnserializable(message), _)) => {
                Err(JoinError::ResultEncode { message })
            }
            Some((Report::BootstrapFailed(message), _)) => Err(JoinError::Bootstrap { message }),
            Some((Report::Started, _)) => {
                unreachable!("`Started` is never stored as the final report")
            }
            None if !progress.started => Err(JoinError::NotStarted { status }),
            None => Err(match status {
                ExitStatus::Exited(code) => JoinError::Exited { code },
                ExitStatus::Signaled(signal) => JoinError::Signaled { signal },
            }),
        }
    }
}

impl<R> fmt::Debug for Process<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("pid", &self.pid())
            .field("exit_status", &self.progress().status)
            .finish()
    }
}

impl<R> Drop for Process<R> {
    fn drop(&mut self) {
        let mut progress = self.progress();
        if matches!(self.poll_exit(&mut progress), Ok(None)) {
            // Still running: someone must reap it when it ends.
            if let Ok(child) = self.child.try_clone() {
                reaper::detach(child);
            }
        }
    }
}
