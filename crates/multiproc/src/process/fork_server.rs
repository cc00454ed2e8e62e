//! The fork server: a process of this program, started clean (executed again, one thread) the first
//! time a child is started with [`StartMethod::ForkServer`](super::StartMethod::ForkServer), which
//! forks every such child from then on. Both sides live here: [`serve`] in the server, [`start`] in
//! the process that asks for children.
//!
//! # Implementation notes
//!
//! The parent holds a control socket (`SOCK_SEQPACKET`) to its server. A request is one empty
//! datagram carrying two descriptors: the child's end of its bootstrap socket (the task is already
//! in it) and one end of a status socket. The server forks; the child runs the task as a forked
//! child does, its parent-death signal armed on the server; the server answers with the child's pid
//! and a pidfd it opened before the child could be reaped, so it names that child and no other.
//! When the child ends, the server reaps it and writes its exit status into the status socket,
//! where the parent's [`ChildHandle`] reads it; signals go through the pidfd.
//!
//! The server follows its parent (parent-death signal, and it ends when the control socket
//! closes), and its children follow it, so no child outlives the process that asked for it. A
//! server that was killed is replaced at the next start; its children died with it, and their
//! handles say SIGKILL. Each child keeps its own status socket's server end open (only the
//! server's other descriptors are closed in it), so that end closes when both have ended: a
//! handle never sees the server gone while the child still runs.
//!
//! The server is started by the thread that starts children (the main thread or the spawner
//! thread, `spawner.rs`), because its parent-death signal follows that thread.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::SpawnError;
use super::bootstrap::{self, EXIT_NO_TASK};
use super::reaper;
use super::spawner::exec_self;
use crate::sys::{self, ChildHandle};
use crate::transfer::{self, Message, packet};

/// The argument that marks a fork server: `argv = [argv0, FORK_SERVER_FLAG, parent pid]`.
pub(crate) const FORK_SERVER_FLAG: &str = "--multiproc-fork-server";

/// The largest request or reply: both are a few bytes.
const MESSAGE_MAX: usize = 4096;

/// The server's answer to a request.
#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    /// The child runs; its pidfd is the reply's descriptor.
    Started { pid: u32 },
    /// Nothing was started.
    Failed { error: String },
}

// ----- The server -----

/// A child of the server, and where to say how it ended.
struct Child {
    handle: ChildHandle,
    status: OwnedFd,
}

struct Server {
    /// `None` only in a child just forked, which must not hold it.
    control: Option<OwnedFd>,
    children: Vec<Child>,
}

/// The fork server's life, in the process [`init`](crate::init) found to be one: serves its
/// parent's requests until the parent hangs up, then exits.
pub(crate) fn serve(parent: Option<u32>) -> ! {
    if !parent.is_some_and(sys::arm_parent_death_signal) {
        // Started by hand, or the parent is gone already: there is nobody to serve.
        std::process::exit(EXIT_NO_TASK);
    }
    let control = match sys::take_stdin() {
        Ok(control) => control,
        Err(e) => {
            eprintln!("multiproc: the fork server could not take its control socket: {e}");
            std::process::exit(EXIT_NO_TASK);
        }
    };
    let _ = sys::replace_stdin_with_null();
    let mut server = Server {
        control: Some(control),
        children: Vec::new(),
    };
    server.run();
    // The parent is gone: so are the children still running, which follow this process.
    std::process::exit(0)
}

impl Server {
    fn run(&mut self) {
        let me = sys::own_pid();
        loop {
            let ready = {
                let Some(control) = self.control.as_ref() else {
                    return;
                };
                let mut fds = vec![control.as_fd()];
                fds.extend(self.children.iter().map(|child| child.handle.as_fd()));
                match sys::wait_any_readable(&fds, None) {
                    Ok(ready) => ready,
                    Err(_) => return,
                }
            };
            if ready[1..].contains(&true) {
                self.report_ended();
            }
            if ready[0] {
                let Some(control) = self.control.as_ref() else {
                    return;
                };
                // Every request taken off the socket is answered: its sender waits for that.
                let answered = match packet::recv(control.as_fd(), true, MESSAGE_MAX) {
                    Ok(packet::Recv::Message(request)) => self.answer(me, request),
                    Ok(packet::Recv::Empty) => Ok(()),
                    Ok(packet::Recv::TooLarge { len }) => {
                        self.refuse(format!("its request of {len} bytes is not one"))
                    }
                    // The datagram was taken but not whole: its descriptors did not fit under
                    // this process's limit on open files, say.
                    Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                        self.refuse(format!("its request came damaged: {e}"))
                    }
                    Ok(packet::Recv::Closed) | Err(_) => return,
                };
                if answered.is_err() {
                    return;
                }
            }
        }
    }

    /// Reaps the children that ended and tells each one's status socket how.
    fn report_ended(&mut self) {
        self.children.retain(|child| match child.handle.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                // The socket holds nothing else, so the datagram fits; a parent that dropped its
                // end no longer asks.
                let _ = sys::send_now(child.status.as_fd(), &status.encode());
                false
            }
            // Not ours to reap any more: nothing to say.
            Err(_) => false,
        });
    }

    /// Forks the child a request asks for and answers it. An error is the parent gone.
    fn answer(&mut self, me: u32, request: Message) -> io::Result<()> {
        let (reply, fds) = match self.fork(me, request) {
            Ok(child) => match child.handle.pidfd() {
                Ok(pidfd) => {
                    let pid = child.handle.pid();
                    self.children.push(child);
                    (Reply::Started { pid }, vec![pidfd])
                }
                Err(e) => {
                    // A child its parent cannot hold must not run: stop it, reap it later.
                    let _ = child.handle.signal(true);
                    self.children.push(child);
                    let error = format!("its pidfd could not be passed on: {e}");
                    (Reply::Failed { error }, Vec::new())
                }
            },
            Err(e) => (
                Reply::Failed {
                    error: e.to_string(),
                },
                Vec::new(),
            ),
        };
        self.reply(&reply, fds)
    }

    /// Answers a request that started nothing.
    fn refuse(&self, error: String) -> io::Result<()> {
        self.reply(&Reply::Failed { error }, Vec::new())
    }

    fn reply(&self, reply: &Reply, fds: Vec<OwnedFd>) -> io::Result<()> {
        let bytes = transfer::encode_plain(reply).map_err(io::Error::other)?;
        let control = self
            .control
            .as_ref()
            .ok_or_else(|| io::Error::other("no control"))?;
        packet::send(control.as_fd(), &Message { bytes, fds }, false)
    }

    fn fork(&mut self, me: u32, request: Message) -> io::Result<Child> {
        let [channel, status] = <[OwnedFd; 2]>::try_from(request.fds).map_err(|fds| {
            io::Error::other(format!(
                "a request carries 2 descriptors, not {}",
                fds.len()
            ))
        })?;
        // The two descriptors the child's pidfd takes once it runs (the server's and the copy for
        // its parent) are found now, before anything starts: this thread opens nothing else
        // between, so a child never runs whose parent was told it failed.
        let control = self
            .control
            .as_ref()
            .ok_or_else(|| io::Error::other("no control"))?;
        drop([control.try_clone()?, control.try_clone()?]);
        let handle = sys::fork_child(|| {
            // The child keeps its bootstrap socket and its own status socket's end (see the
            // notes), and none of the server's other descriptors.
            self.control = None;
            self.children.clear();
            bootstrap::run_forked_child(me, channel.as_fd())
        })?;
        Ok(Child { handle, status })
    }
}

// ----- The process that asks for children -----

/// This process's connection to its fork server.
struct Connection {
    /// The process that started the server: a forked child inherits the connection, but its
    /// children must follow it, not its parent, so it starts a server of its own.
    owner: u32,
    control: OwnedFd,
    server: ChildHandle,
}

static CONNECTION: Mutex<Option<Connection>> = Mutex::new(None);

/// Why a request failed.
enum Refused {
    /// The server had ended before it could read the request: a new one may take it.
    Unsent,
    Failed(SpawnError),
}

/// Starts a child through this process's fork server, which is started first if there is none or
/// it died. `channel` is the child's end of its bootstrap socket, its task already in it.
pub(crate) fn start(channel: &OwnedFd) -> Result<ChildHandle, SpawnError> {
    let mut slot = CONNECTION.lock().unwrap_or_else(|e| e.into_inner());
    let me = sys::own_pid();
    if slot
        .as_ref()
        .is_some_and(|connection| connection.owner != me)
    {
        // Inherited through a fork: our copies of its descriptors close; the server is not our
        // child to reap.
        *slot = None;
    }
    let mut replaced = false;
    loop {
        let connection = match slot.as_mut() {
            Some(connection) => connection,
            None => slot.insert(Connection::open(me)?),
        };
        match connection.request(channel) {
            Ok(child) => return Ok(child),
            Err(Refused::Unsent) if !replaced => {
                replaced = true;
                retire(slot.take());
            }
            Err(Refused::Unsent) => {
                retire(slot.take());
                return Err(SpawnError::ForkServerGone);
            }
            Err(Refused::Failed(e)) => {
                if matches!(e, SpawnError::ForkServerGone) {
                    retire(slot.take());
                }
                return Err(e);
            }
        }
    }
}

/// A server that ended: it is reaped in the background.
fn retire(connection: Option<Connection>) {
    if let Some(connection) = connection {
        reaper::detach(connection.server);
    }
}

impl Connection {
    fn open(me: u32) -> io::Result<Connection> {
        let (control, theirs) = sys::seqpacket_pair()?;
        let server = exec_self(FORK_SERVER_FLAG, theirs)?;
        Ok(Connection {
            owner: me,
            control,
            server,
        })
    }

    fn request(&self, channel: &OwnedFd) -> Result<ChildHandle, Refused> {
        let failed = |e: io::Error| Refused::Failed(e.into());
        let (status, theirs) = sys::seqpacket_pair().map_err(failed)?;
        let fds = [channel.try_clone().map_err(failed)?, theirs];
        match packet::send_parts(self.control.as_fd(), &[], &fds, 0, false) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Err(Refused::Unsent),
            Err(e) => return Err(failed(e)),
        }
        drop(fds);
        // The request may have been read, the child forked and the task taken: it is never sent
        // again, whatever happens now.
        let Ok(packet::Recv::Message(Message { bytes, fds })) =
            packet::recv(self.control.as_fd(), false, MESSAGE_MAX)
        else {
            return Err(Refused::Failed(SpawnError::ForkServerGone));
        };
        let reply = transfer::decode_plain::<Reply>(bytes).map_err(|e| {
            failed(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the fork server's reply did not decode: {e}"),
            ))
        })?;
        match (reply, <[OwnedFd; 1]>::try_from(fds)) {
            (Reply::Started { pid }, Ok([pidfd])) => {
                Ok(ChildHandle::reaped_elsewhere(pid, pidfd, status))
            }
            (Reply::Started { pid }, Err(fds)) => Err(failed(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the fork server started child {pid} but passed {} descriptors for it, not 1",
                    fds.len()
                ),
            ))),
            (Reply::Failed { error }, _) => Err(failed(io::Error::other(format!(
                "the fork server could not start it: {error}"
            )))),
        }
    }
}
