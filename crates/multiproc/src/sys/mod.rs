//! The operating system. Every call into libc or rustix, every `/proc` read and every
//! `std::os::unix` socket lives below this module; nothing above it has a `cfg(target_os)`. One
//! backend per system (`linux` now), whose items have the names listed here: a second backend
//! gives the same names, and this list is the whole of what the rest of the crate may use.
//!
//! Unsafe code is allowed here, in [`crate::shm`] and in the raw synchronization states only; every
//! block says why it is sound.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as backend;

#[cfg(not(target_os = "linux"))]
compile_error!("multiproc supports Linux only for now (see docs/architecture.md, layer `sys`)");

pub(crate) mod image;

// Waiting on shared memory.
pub(crate) use backend::{futex_wait, futex_wake, futex_wake_all};
// Who holds a lock: processes and threads.
pub(crate) use backend::{ProcessId, thread_id};
// Memory: files and their mappings.
pub(crate) use backend::{Fault, Mapping, MemFile};
// Files and directories that processes own by name, and their owner locks.
pub(crate) use backend::{
    create_exclusive, create_private_dir, file_identity, flock_holders, has_live_owner,
    hold_owner_lock, is_own_dir, list, open_dir, open_own, process_runs, rename_no_replace,
    shm_dir, shm_dir_opened, unlink,
};
// Packet sockets: pairs, listeners, descriptors passed along.
pub(crate) use backend::{
    Received, accept_now, own_uid, peer_hung_up, peer_uid, recv_now, recv_some, recv_with_fds,
    send_all, send_now, send_with_fds, seqpacket_connect, seqpacket_listen, seqpacket_pair,
    shut_down, wait_any_readable, wait_readable, wait_writable,
};
// Byte-stream sockets (the manager's transports).
pub(crate) use backend::{Stream, StreamListener};
// Processes: starting, watching, ending.
pub(crate) use backend::{
    ChildHandle, RawExitStatus, arm_parent_death_signal, fork_child, is_main_thread, kill_self,
    own_pid, raise_descriptor_limit, replace_stdin_with_null, signal_name, spawn_self, take_stdin,
};
// The machine: how many of its tasks want a CPU now; which CPU a thread runs on, and may.
pub(crate) use backend::{CpuAffinity, current_cpu, runnable_tasks};
