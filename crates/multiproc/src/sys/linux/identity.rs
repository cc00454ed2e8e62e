//! Who holds a lock: a process named so that a recycled pid is not mistaken for the holder, and a
//! cheap test of whether that process still lives.
//!
//! A process is its pid plus the low 32 bits of its start time (clock ticks since boot, field 22 of
//! `/proc/PID/stat`). A new process that reuses the pid starts later, so it does not match.

use std::cell::Cell;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

/// A live or dead process, packed into a nonzero `u64`: `pid << 32 | start time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcessId(u64);

/// This process's identity, computed once; reset in a forked child by the fork handler.
static OWN: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static TID: Cell<u32> = const { Cell::new(0) };
}

static REGISTER_FORK_HANDLER: Once = Once::new();

extern "C" fn after_fork_in_child() {
    OWN.store(0, Ordering::Relaxed);
    // Only the forking thread exists in the child; its thread id changed too.
    TID.with(|tid| tid.set(0));
}

impl ProcessId {
    /// This process.
    #[inline]
    pub(crate) fn own() -> ProcessId {
        let own = OWN.load(Ordering::Relaxed);
        if own != 0 {
            return ProcessId(own);
        }
        ProcessId::find_own()
    }

    /// This process, the first time (in it, or in a forked child).
    #[cold]
    fn find_own() -> ProcessId {
        REGISTER_FORK_HANDLER.call_once(|| {
            // SAFETY: registers a handler that only stores to an atomic and a thread-local Cell
            // (async-signal-safe work); the handler is a plain `extern "C" fn` with no captures.
            unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        });
        let pid = std::process::id();
        let start = start_time(pid).expect("/proc/self/stat is readable");
        let id = ProcessId::new(pid, start);
        OWN.store(id.0, Ordering::Relaxed);
        id
    }

    fn new(pid: u32, start: u64) -> ProcessId {
        ProcessId((u64::from(pid) << 32) | (start & 0xffff_ffff))
    }

    pub(crate) fn pid(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The packed form (never 0).
    pub(crate) fn to_u64(self) -> u64 {
        self.0
    }

    /// From the packed form; `None` for values no process has.
    pub(crate) fn from_u64(packed: u64) -> Option<ProcessId> {
        (packed >> 32 != 0).then_some(ProcessId(packed))
    }

    /// Whether this process still runs. A zombie (ended, not yet reaped) is dead.
    pub(crate) fn is_alive(self) -> bool {
        match stat_fields(self.pid()) {
            Some((state, start)) => {
                !matches!(state, 'Z' | 'X' | 'x') && ProcessId::new(self.pid(), start) == self
            }
            None => false,
        }
    }
}

/// The calling thread's kernel id, cached.
pub(crate) fn thread_id() -> u32 {
    TID.with(|tid| {
        if tid.get() == 0 {
            tid.set(rustix::thread::gettid().as_raw_nonzero().get() as u32);
        }
        tid.get()
    })
}

fn start_time(pid: u32) -> Option<u64> {
    stat_fields(pid).map(|(_, start)| start)
}

/// The state letter and start time of `pid`, from `/proc/PID/stat`.
fn stat_fields(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is the state; field 22 the start time, 19 fields further.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        let me = ProcessId::own();
        assert_eq!(me.pid(), std::process::id());
        assert!(me.is_alive());
        assert_eq!(ProcessId::from_u64(me.to_u64()), Some(me));
        // Same pid, another start time: a recycled pid is not the holder.
        let impostor = ProcessId((me.0 & !0xffff_ffff) | ((me.0 + 1) & 0xffff_ffff));
        assert!(!impostor.is_alive());
        assert_eq!(ProcessId::from_u64(0), None);
    }
}
