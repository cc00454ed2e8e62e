//! The Linux backend.

mod cpu;
mod futex;
mod identity;
mod listen;
mod memfile;
mod memory;
mod mmap;
mod named;
mod process;
mod socket;
mod stream;

pub(crate) use cpu::{CpuAffinity, current_cpu};
pub(crate) use futex::{futex_wait, futex_wake, futex_wake_all};
pub(crate) use identity::{ProcessId, thread_id};
pub(crate) use listen::{
    accept_now, own_uid, peer_hung_up, peer_uid, recv_now, recv_some, send_all, send_now,
    seqpacket_connect, seqpacket_listen, shut_down, wait_any_readable,
};
pub(crate) use memfile::MemFile;
pub(crate) use memory::available_memory;
pub(crate) use mmap::{Fault, Mapping};
pub(crate) use named::{
    create_exclusive, create_private_dir, file_identity, flock_holders, has_live_owner,
    hold_owner_lock, is_own_dir, list, open_dir, open_own, process_runs, rename_no_replace,
    shm_dir, shm_dir_opened, unlink,
};
pub(crate) use process::{
    ChildHandle, RawExitStatus, arm_parent_death_signal, fork_child, is_main_thread, kill_self,
    own_pid, raise_descriptor_limit, replace_stdin_with_null, runnable_tasks, signal_name,
    spawn_self, take_stdin, wait_readable, wait_writable,
};
pub(crate) use socket::{Received, recv_with_fds, send_with_fds, seqpacket_pair};
pub(crate) use stream::{Stream, StreamListener};
