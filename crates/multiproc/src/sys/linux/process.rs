//! Starting, watching, signalling and reaping child processes; the child's side of its bootstrap.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::deadline::remaining;

use rustix::event::{PollFd, PollFlags};
use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions};

/// How a process ended, as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl RawExitStatus {
    /// How long [`RawExitStatus::encode`]'s bytes are.
    pub(crate) const ENCODED_LEN: usize = 5;

    /// The status as a datagram: a kind byte (0 exited, 1 signaled), then the code or signal,
    /// little-endian.
    pub(crate) fn encode(self) -> [u8; Self::ENCODED_LEN] {
        let (kind, value) = match self {
            RawExitStatus::Exited(code) => (0, code),
            RawExitStatus::Signaled(signal) => (1, signal),
        };
        let mut bytes = [kind; Self::ENCODED_LEN];
        bytes[1..].copy_from_slice(&value.to_le_bytes());
        bytes
    }

    /// The status [`RawExitStatus::encode`] wrote, or `None` for any other bytes.
    pub(crate) fn decode(bytes: &[u8]) -> Option<RawExitStatus> {
        let (&kind, value) = bytes.split_first()?;
        let value = i32::from_le_bytes(value.try_into().ok()?);
        match kind {
            0 => Some(RawExitStatus::Exited(value)),
            1 => Some(RawExitStatus::Signaled(value)),
            _ => None,
        }
    }
}

/// A process this one started, held by a pidfd: signals and waits can never reach a recycled pid.
#[derive(Debug)]
pub(crate) struct ChildHandle {
    pid: u32,
    pidfd: OwnedFd,
    reaped_by: ReapedBy,
}

/// Who reaps the child, and so where its exit status comes from.
#[derive(Debug)]
enum ReapedBy {
    /// This process: the child is ours, reaped through its pidfd.
    Us,
    /// Its parent, another process (a fork server), which writes the status into this socket
    /// (one [`RawExitStatus::encode`] datagram) once it has reaped the child.
    Parent(OwnedFd),
}

impl ChildHandle {
    fn adopt(pid: u32) -> io::Result<ChildHandle> {
        let raw = Pid::from_raw(pid as i32).ok_or_else(|| io::Error::other("child pid is zero"))?;
        // The child is ours and not yet reaped, so `pid` cannot have been reused: the pidfd names it.
        let pidfd = rustix::process::pidfd_open(raw, PidfdFlags::empty())?;
        Ok(ChildHandle {
            pid,
            pidfd,
            reaped_by: ReapedBy::Us,
        })
    }

    /// The handle of a child another process started for us and reaps: `pidfd` names it (its
    /// parent opened it before it could be reaped), and `status` is where the parent writes how it
    /// ended.
    pub(crate) fn reaped_elsewhere(pid: u32, pidfd: OwnedFd, status: OwnedFd) -> ChildHandle {
        ChildHandle {
            pid,
            pidfd,
            reaped_by: ReapedBy::Parent(status),
        }
    }

    /// Another handle to the same child.
    pub(crate) fn try_clone(&self) -> io::Result<ChildHandle> {
        Ok(ChildHandle {
            pid: self.pid,
            pidfd: self.pidfd.try_clone()?,
            reaped_by: match &self.reaped_by {
                ReapedBy::Us => ReapedBy::Us,
                ReapedBy::Parent(status) => ReapedBy::Parent(status.try_clone()?),
            },
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// A new descriptor of the child's pidfd, to hand to another process.
    pub(crate) fn pidfd(&self) -> io::Result<OwnedFd> {
        self.pidfd.try_clone()
    }

    /// Reaps the child if it has ended; `None` while it runs. A child reaped elsewhere gives the
    /// status its parent reported, as often as asked.
    pub(crate) fn try_wait(&self) -> io::Result<Option<RawExitStatus>> {
        match &self.reaped_by {
            ReapedBy::Us => self.reap(),
            ReapedBy::Parent(status) => self.reported(status.as_fd()),
        }
    }

    fn reap(&self) -> io::Result<Option<RawExitStatus>> {
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG;
        let status = loop {
            match rustix::process::waitid(WaitId::PidFd(self.pidfd.as_fd()), options) {
                Err(rustix::io::Errno::INTR) => continue,
                other => break other?,
            }
        };
        Ok(
            status.map(|s| match (s.exit_status(), s.terminating_signal()) {
                (_, Some(signal)) => RawExitStatus::Signaled(signal),
                (Some(code), None) => RawExitStatus::Exited(code),
                (None, None) => RawExitStatus::Exited(0),
            }),
        )
    }

    /// The status the child's parent wrote, read without taking it off the socket. A parent that
    /// ended without writing one took the child with it (the child follows its parent with
    /// SIGKILL): once the child is gone, that is its status.
    fn reported(&self, status: BorrowedFd<'_>) -> io::Result<Option<RawExitStatus>> {
        use rustix::net::RecvFlags;
        let mut bytes = [0u8; RawExitStatus::ENCODED_LEN + 1];
        let received = loop {
            match rustix::net::recv(status, &mut bytes, RecvFlags::PEEK | RecvFlags::DONTWAIT) {
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => return Ok(None),
                other => break other?.0,
            }
        };
        if received == 0 {
            let ended = wait_readable(self.pidfd.as_fd(), Some(Instant::now()))?;
            return Ok(ended.then_some(RawExitStatus::Signaled(libc::SIGKILL)));
        }
        RawExitStatus::decode(&bytes[..received])
            .map(Some)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the child's parent reported its end as {:?}",
                        &bytes[..received]
                    ),
                )
            })
    }

    /// Sends SIGTERM (`force == false`) or SIGKILL. A child that has already ended is not an error.
    pub(crate) fn signal(&self, force: bool) -> io::Result<()> {
        let signal = if force { Signal::KILL } else { Signal::TERM };
        match rustix::process::pidfd_send_signal(&self.pidfd, signal) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl AsFd for ChildHandle {
    /// What becomes readable when [`ChildHandle::try_wait`] has the status: the pidfd of a child of
    /// ours, the status socket of one reaped elsewhere.
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.reaped_by {
            ReapedBy::Us => self.pidfd.as_fd(),
            ReapedBy::Parent(status) => status.as_fd(),
        }
    }
}

/// This process's id.
/// Raises this process's limit on open descriptors to the most it may have (the hard limit): a
/// server holding a thousand handshakes and a thousand connections needs more than the usual
/// 1024. Where the limit cannot be raised, the server pauses its accepts when it runs out.
pub(crate) fn raise_descriptor_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

pub(crate) fn own_pid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// Whether the calling thread is the process's first thread, which lives as long as the process.
pub(crate) fn is_main_thread() -> bool {
    rustix::thread::gettid() == rustix::process::getpid()
}

/// Starts this same executable again (`/proc/self/exe`, so a binary replaced on disk meanwhile is
/// not picked up) with `args`, and `stdin` as its standard input. No code runs between fork and exec,
/// so the standard library uses its fastest path (posix_spawn, a vfork).
pub(crate) fn spawn_self(
    argv0: &OsStr,
    args: &[&OsStr],
    stdin: OwnedFd,
) -> io::Result<ChildHandle> {
    let child = Command::new("/proc/self/exe")
        .arg0(argv0)
        .args(args)
        .stdin(Stdio::from(stdin))
        .spawn()?;
    // Dropping `std::process::Child` neither waits nor kills: the pidfd takes over.
    ChildHandle::adopt(child.id())
}

/// Forks this process; the child runs `child` on a copy of the calling thread and ends with the code
/// it returns, without running exit handlers. The parent gets the child's handle.
pub(crate) fn fork_child(child: impl FnOnce() -> i32) -> io::Result<ChildHandle> {
    // SAFETY: after fork only the calling thread exists in the child. Memory another thread was
    // changing at the time is either behind a lock, which the copy shows as held (the child may then
    // deadlock, the hazard documented on `StartMethod::Fork`, but never reads a half-made value),
    // or behind atomics, which are whole. glibc's fork handlers leave malloc usable in the child.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
            // SAFETY: `_exit` ends the process at once; nothing is borrowed across it.
            unsafe { libc::_exit(code) }
        }
        pid => ChildHandle::adopt(pid as u32),
    }
}

/// Asks for SIGKILL when the parent dies, then checks that the parent is still `expected_parent`:
/// a parent that died before the request leaves the child with another parent and no signal.
/// Returns false in that case; the caller must end.
pub(crate) fn arm_parent_death_signal(expected_parent: u32) -> bool {
    if rustix::process::set_parent_process_death_signal(Some(Signal::KILL)).is_err() {
        return false;
    }
    rustix::process::getppid().is_some_and(|p| p.as_raw_nonzero().get() as u32 == expected_parent)
}

/// Takes this process's standard input as a close-on-exec descriptor (the bootstrap channel).
pub(crate) fn take_stdin() -> io::Result<OwnedFd> {
    Ok(rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdin(), 3)?)
}

/// Puts /dev/null on standard input, as Python does for its children.
pub(crate) fn replace_stdin_with_null() -> io::Result<()> {
    let null = std::fs::File::open("/dev/null")?;
    rustix::stdio::dup2_stdin(null)?;
    Ok(())
}

/// `d` as a `poll` timeout.
pub(super) fn timespec(d: Duration) -> rustix::event::Timespec {
    rustix::event::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos() as _,
    }
}

/// Waits until `fd` is readable (or hung up) or `deadline` passes (`None`: no limit). Returns
/// whether it is readable.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> io::Result<bool> {
    wait_for(fd, PollFlags::IN, deadline)
}

/// Waits until `fd` takes more bytes (or hung up) or `deadline` passes (`None`: no limit). Returns
/// whether it does.
pub(crate) fn wait_writable(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> io::Result<bool> {
    wait_for(fd, PollFlags::OUT, deadline)
}

fn wait_for(fd: BorrowedFd<'_>, events: PollFlags, deadline: Option<Instant>) -> io::Result<bool> {
    let mut polls = [PollFd::new(&fd, events)];
    loop {
        let timeout = remaining(deadline).map(timespec);
        match rustix::event::poll(&mut polls, timeout.as_ref()) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(ready) => return Ok(ready > 0),
        }
    }
}

/// The name of signal `signal` (`SIGKILL` for 9), for the common ones.
pub(crate) fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => return None,
    })
}

/// Ends this process at once with SIGKILL: no destructor, no exit handler, as a crash would.
pub(crate) fn kill_self() -> ! {
    let _ = rustix::process::kill_process(rustix::process::getpid(), Signal::KILL);
    // SIGKILL cannot be caught; the process ends before this line.
    std::process::abort()
}

/// How many tasks on this machine are runnable now, the reader included (the fourth field of
/// `/proc/loadavg`, `running/total`), and how many CPUs it has online: more tasks than CPUs means
/// some wait for one. Both count the whole machine (a container's limit is not in them).
pub(crate) fn runnable_tasks() -> Option<(u32, u32)> {
    use std::io::Read;
    let mut buf = [0u8; 128];
    let mut file = std::fs::File::open("/proc/loadavg").ok()?;
    let len = file.read(&mut buf).ok()?;
    let text = std::str::from_utf8(&buf[..len]).ok()?;
    let (running, _total) = text.split_whitespace().nth(3)?.split_once('/')?;
    // SAFETY: sysconf takes no pointer and has no precondition.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    Some((running.parse().ok()?, u32::try_from(online).ok()?))
}
