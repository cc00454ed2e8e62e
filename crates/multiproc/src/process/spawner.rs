//! Starting a child: the bootstrap socket, the start method, and the thread that owns every child.
//!
//! # Implementation notes
//!
//! A child asks the kernel for SIGKILL when its parent dies (`PR_SET_PDEATHSIG`), but "parent" there
//! means the *thread* that started it: a child started from a thread that later ends would be killed
//! with it. So children are started either from the main thread, which lives as long as the process,
//! or by a dedicated spawner thread that never ends. A forked child is single-threaded, so its one
//! thread counts as its main thread.
//!
//! The task is written into the socket before the child exists, so starting never waits on it.
//! A fork server (`fork_server.rs`) is started by the same threads, for the same reason.

use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Mutex, mpsc};

use super::bootstrap::{self, BOOTSTRAP_FLAG};
use super::{SpawnError, StartMethod, fork_server};
use crate::sys::{self, ChildHandle};
use crate::transfer::{Message, packet};

/// A started child and our end of its bootstrap socket.
pub(crate) struct Started {
    pub(crate) child: ChildHandle,
    pub(crate) channel: OwnedFd,
}

/// Starts a child that will run `task`.
pub(crate) fn start(method: StartMethod, task: Message) -> Result<Started, SpawnError> {
    if sys::is_main_thread() {
        start_here(method, task)
    } else {
        spawner_thread()?.start(method, task)
    }
}

fn start_here(method: StartMethod, task: Message) -> Result<Started, SpawnError> {
    let (ours, theirs) = sys::seqpacket_pair()?;
    packet::send(ours.as_fd(), &task, true)?;
    let child = match method {
        StartMethod::Spawn => exec_self(BOOTSTRAP_FLAG, theirs)?,
        StartMethod::Fork => {
            // What the parent has buffered would otherwise be printed twice.
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
            let parent = sys::own_pid();
            let child = sys::fork_child(|| bootstrap::run_forked_child(parent, theirs.as_fd()))?;
            drop(theirs);
            child
        }
        StartMethod::ForkServer => fork_server::start(&theirs)?,
    };
    Ok(Started {
        child,
        channel: ours,
    })
}

/// Executes this program again as `argv0 role parent-pid`, `stdin` on its standard input: a child
/// ([`BOOTSTRAP_FLAG`]) or a fork server.
pub(super) fn exec_self(role: &str, stdin: OwnedFd) -> io::Result<ChildHandle> {
    let argv0 = std::env::args_os()
        .next()
        .unwrap_or_else(|| "multiproc-child".into());
    let parent = sys::own_pid().to_string();
    sys::spawn_self(&argv0, &[role.as_ref(), parent.as_ref()], stdin)
}

struct Request {
    method: StartMethod,
    task: Message,
    reply: mpsc::SyncSender<Result<Started, SpawnError>>,
}

/// The spawner thread of one process (a forked child needs its own).
#[derive(Clone)]
struct Spawner {
    pid: u32,
    requests: mpsc::Sender<Request>,
}

static SPAWNER: Mutex<Option<Spawner>> = Mutex::new(None);

fn spawner_thread() -> io::Result<Spawner> {
    let mut slot = SPAWNER.lock().unwrap_or_else(|e| e.into_inner());
    let pid = sys::own_pid();
    if let Some(spawner) = slot.as_ref().filter(|s| s.pid == pid) {
        return Ok(spawner.clone());
    }
    let (requests, incoming) = mpsc::channel::<Request>();
    std::thread::Builder::new()
        .name("multiproc-spawner".into())
        .spawn(move || {
            for request in incoming {
                let _ = request.reply.send(start_here(request.method, request.task));
            }
        })?;
    let spawner = Spawner { pid, requests };
    *slot = Some(spawner.clone());
    Ok(spawner)
}

impl Spawner {
    fn start(&self, method: StartMethod, task: Message) -> Result<Started, SpawnError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let gone = || io::Error::other("the multiproc spawner thread is gone");
        self.requests
            .send(Request {
                method,
                task,
                reply,
            })
            .map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
}
