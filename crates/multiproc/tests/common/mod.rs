//! Helpers shared by the cross-process tests: deadlines, joining children, watching processes that
//! are not ours, flags in shared memory, and a watchdog that ends a test binary that hangs.
#![allow(dead_code)] // each test file uses its own subset

pub mod redis;

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags};

/// Generous: these machines are shared and noisy. A deadline only bounds a failure.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Joins `process` within [`DEADLINE`] and gives its result; the test fails if it did not run to
/// its end.
pub fn join<R: serde::de::DeserializeOwned>(process: multiproc::Process<R>) -> R {
    let name = process.name().to_owned();
    join_result(process).unwrap_or_else(|e| panic!("{name} did not run to its end: {e}"))
}

/// Joins `process` within [`DEADLINE`] and gives what `join` says. A child still running at the
/// deadline is killed first, so that a failing test leaves nothing running (a survivor holding the
/// output pipe would stall CI).
pub fn join_result<R: serde::de::DeserializeOwned>(
    mut process: multiproc::Process<R>,
) -> Result<R, multiproc::JoinError> {
    let joined = process.join_timeout(DEADLINE);
    if joined.as_ref().is_err_and(multiproc::JoinError::is_timeout) {
        let _ = process.kill();
    }
    joined
}

/// How long a test binary may run in all. Each of ours takes seconds; one that runs this long has
/// a test stuck in a wait, and is ended (the harness names a test that runs over 60 s).
const WATCHDOG: Duration = Duration::from_secs(300);

// Starts the watchdog when the binary loads, before the harness runs any test (the same hook as
// `multiproc::test_support!`). A child that re-executes the binary gets one too: it ends long
// before.
#[used]
#[allow(unsafe_code)] // a constructor, as multiproc::test_support! makes: it runs safe code only
#[unsafe(link_section = ".init_array")]
static START_WATCHDOG: extern "C" fn() = {
    extern "C" fn start_watchdog() {
        let _ = std::thread::Builder::new()
            .name("test-watchdog".into())
            .spawn(|| {
                std::thread::sleep(WATCHDOG);
                eprintln!(
                    "watchdog: this test binary ran for {WATCHDOG:?}; a test is stuck. Ending it."
                );
                std::process::abort();
            });
    }
    start_watchdog
};

/// The code of the manager's refusal; the test fails if `result` is anything else.
pub fn refused<T: std::fmt::Debug>(
    result: Result<T, multiproc::ManagerError>,
) -> multiproc::ErrorCode {
    match result {
        Err(multiproc::ManagerError::Remote { code, .. }) => code,
        other => panic!("expected a refusal from the manager, got {other:?}"),
    }
}

/// Polls `condition` until it holds or `DEADLINE` passes; false on timeout. For conditions that
/// another process makes true (a flag in shared memory), not for timing.
pub fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + DEADLINE;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    condition()
}

/// A process watched through a pidfd, so its death can be awaited without being its parent.
pub struct Watched(Option<OwnedFd>, u32);

/// Starts watching `pid`. A process already gone is watched as dead.
pub fn watch(pid: u32) -> Watched {
    let pid = Pid::from_raw(pid as i32).expect("nonzero pid");
    match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => Watched(Some(fd), pid.as_raw_nonzero().get() as u32),
        Err(rustix::io::Errno::SRCH) => Watched(None, 0),
        Err(e) => panic!("pidfd_open({pid:?}): {e}"),
    }
}

impl Watched {
    /// Whether the process ended within `DEADLINE`.
    pub fn dies_within_deadline(&self) -> bool {
        let Some(fd) = &self.0 else { return true };
        let mut polls = [PollFd::new(fd, PollFlags::IN)];
        let timeout = Timespec {
            tv_sec: DEADLINE.as_secs() as i64,
            tv_nsec: 0,
        };
        loop {
            match rustix::event::poll(&mut polls, Some(&timeout)) {
                Ok(n) => return n == 1,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => panic!("poll: {e}"),
            }
        }
    }

    /// Panics unless the process ends within `DEADLINE`; a survivor is killed first, so that a
    /// failing test leaves nothing behind (a survivor holding the output pipe would stall CI).
    pub fn assert_dies(&self, what: &str) {
        if !self.dies_within_deadline() {
            let _ = rustix::process::pidfd_send_signal(
                self.0.as_ref().unwrap(),
                rustix::process::Signal::KILL,
            );
            panic!(
                "{what}: process {} is still alive after {DEADLINE:?}",
                self.1
            );
        }
    }

    /// Whether the process is still running right now.
    pub fn is_running(&self) -> bool {
        let Some(fd) = &self.0 else { return false };
        let mut polls = [PollFd::new(fd, PollFlags::IN)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        rustix::event::poll(&mut polls, Some(&zero)).expect("poll") == 0
    }
}

/// Sends SIGKILL to `pid`.
pub fn sigkill(pid: u32) {
    let pid = Pid::from_raw(pid as i32).expect("nonzero pid");
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("kill");
}

/// Stops (`true`: SIGSTOP) or resumes (SIGCONT) `pid`.
pub fn pause(pid: u32, stop: bool) {
    let pid = Pid::from_raw(pid as i32).expect("nonzero pid");
    let signal = if stop {
        rustix::process::Signal::STOP
    } else {
        rustix::process::Signal::CONT
    };
    rustix::process::kill_process(pid, signal).expect("kill");
}

/// Blocks the calling process forever (until a signal ends it).
pub fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// A one-byte flag in shared memory that one process raises and another waits for.
pub fn flag() -> multiproc::SharedMemory {
    multiproc::SharedMemory::create(1).expect("shared memory")
}

pub fn raise(flag: &multiproc::SharedMemory) {
    flag.write_at(0, &[1]).expect("in bounds");
}

pub fn is_raised(flag: &multiproc::SharedMemory) -> bool {
    let mut byte = [0];
    flag.read_at(0, &mut byte).expect("in bounds");
    byte[0] == 1
}

/// A slot in shared memory for one `u32` (a pid), 0 until written.
pub fn write_u32(shm: &multiproc::SharedMemory, value: u32) {
    shm.write_at(0, &value.to_le_bytes()).expect("in bounds");
}

pub fn read_u32(shm: &multiproc::SharedMemory) -> u32 {
    let mut bytes = [0; 4];
    shm.read_at(0, &mut bytes).expect("in bounds");
    u32::from_le_bytes(bytes)
}

/// A value whose serialization always fails (and whose deserialization always succeeds), to check
/// that errors surface in the caller.
#[derive(Debug)]
pub struct Unserializable;

impl serde::Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value refuses to travel"))
    }
}

impl<'de> serde::Deserialize<'de> for Unserializable {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Ok(Unserializable)
    }
}

/// A numeric field of `/proc/<pid>/status` (`Threads`, `VmPeak` in KiB, ...).
pub fn status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("a live process");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}
