//! [`Listener`] and [`Client`]: [`Connection`]s between unrelated processes, over a Unix socket
//! path or TCP, after mutual authentication with a shared key (see `auth` for the handshake).
//!
//! # Implementation notes
//!
//! A Unix address is a `SOCK_SEQPACKET` socket, so a connection accepted from it is the same kind
//! as a [`pipe`](super::pipe) end: messages of any size, handles included. The listener accepts
//! only peers of its own user (`SO_PEERCRED`), whatever key they hold. A TCP address is a byte
//! stream with a frame header per message; it carries no handles, and listens on loopback unless
//! [`Listener::bind_remote`] says otherwise.
//!
//! `accept` runs the handshakes of every connection that came at once, without blocking on any
//! ([`Admission`], as the manager's gate does): a peer that connects and says nothing costs a
//! real client nothing. Handshakes progress while some `accept` runs; those that finish beyond
//! what it returns wait, in order, for the next.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::admission::{Admission, Admitted};
use super::auth::{self, Framing};
use super::{ConnectError, Connection};
use crate::address::Address;
use crate::deadline;
use crate::sys;

enum Socket {
    Unix(OwnedFd),
    Tcp(TcpListener),
}

/// Accepts authenticated [`Connection`]s. Python's `multiprocessing.connection.Listener`, with a
/// key always required and checked both ways.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{Address, Client, Connection, Listener, Process};
///
/// let listener = Listener::bind("127.0.0.1:0", b"secret key")?;
/// let address = listener.address().to_string();
/// let client = Process::spawn(address, |address: String| {
///     let conn: Connection<String> = Client::connect(address.as_str(), b"secret key").unwrap();
///     conn.send("hello over TCP").unwrap();
/// })?;
/// let conn: Connection<String> = listener.accept()?;
/// assert_eq!(conn.recv()?, "hello over TCP");
/// client.join()?;
/// # Ok(())
/// # }
/// ```
pub struct Listener {
    socket: Socket,
    address: Address,
    gate: Mutex<Gate>,
}

/// The handshakes in flight, and what came of those that ended and was not returned yet.
struct Gate {
    admission: Admission<OwnedFd>,
    ended: VecDeque<Result<OwnedFd, ConnectError>>,
}

impl Listener {
    /// Listens at `address`, a Unix socket path (which must not exist yet) or a loopback TCP
    /// address. A TCP address on another interface is [`ConnectError::NotLoopback`]: use
    /// [`bind_remote`](Self::bind_remote) to accept from the network.
    pub fn bind(address: impl Into<Address>, authkey: &[u8]) -> Result<Listener, ConnectError> {
        let address = address.into();
        if let Address::Tcp(tcp) = address
            && !tcp.ip().is_loopback()
        {
            return Err(ConnectError::NotLoopback { address: tcp });
        }
        Listener::bind_any(address, authkey)
    }

    /// Listens at `address`, on any interface: the explicit opt-in to connections from other
    /// machines. The key keeps out whoever lacks it, but nothing is encrypted and messages after
    /// the handshake are not authenticated: use it on trusted networks only.
    pub fn bind_remote(
        address: impl Into<Address>,
        authkey: &[u8],
    ) -> Result<Listener, ConnectError> {
        Listener::bind_any(address.into(), authkey)
    }

    fn bind_any(address: Address, authkey: &[u8]) -> Result<Listener, ConnectError> {
        check_key(authkey)?;
        let (socket, address) = match address {
            Address::Unix(path) => (
                Socket::Unix(sys::seqpacket_listen(&path).map_err(ConnectError::Os)?),
                Address::Unix(path),
            ),
            Address::Tcp(tcp) => {
                let listener = TcpListener::bind(tcp).map_err(ConnectError::Os)?;
                listener.set_nonblocking(true).map_err(ConnectError::Os)?;
                let bound = listener.local_addr().map_err(ConnectError::Os)?;
                (Socket::Tcp(listener), Address::Tcp(bound))
            }
        };
        Ok(Listener {
            socket,
            address,
            gate: Mutex::new(Gate {
                admission: Admission::new(authkey),
                ended: VecDeque::new(),
            }),
        })
    }

    /// Where it listens (with the port chosen, for TCP port 0).
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Accepts the next connection and authenticates it, waiting as long as it takes for one to
    /// come. A peer with the wrong key is [`ConnectError::AuthFailed`] (it was told, with a fixed
    /// code, and nothing else crossed; refusals are answered twenty a second at most), a peer of
    /// another user on a Unix socket [`ConnectError::ForeignUser`]; the listener goes on
    /// accepting. A peer that does not finish its handshake within
    /// [`HANDSHAKE_TIMEOUT`](crate::HANDSHAKE_TIMEOUT) is dropped, and delays no one.
    pub fn accept<T>(&self) -> Result<Connection<T>, ConnectError> {
        self.accept_until(None)
    }

    /// As [`accept`](Self::accept) if a connection is waiting now ([`ConnectError::Timeout`] if
    /// none is); its handshake then has its own deadline.
    pub fn try_accept<T>(&self) -> Result<Connection<T>, ConnectError> {
        self.accept_until(Some(Instant::now()))
    }

    /// As [`accept`](Self::accept), waiting at most `timeout` for a connection to come
    /// ([`ConnectError::Timeout`]; `Duration::MAX`: as long as it takes); the handshake then has
    /// its own deadline.
    pub fn accept_timeout<T>(&self, timeout: Duration) -> Result<Connection<T>, ConnectError> {
        self.accept_until(deadline::after(timeout))
    }

    /// As [`accept_timeout`](Self::accept_timeout), waiting until `deadline`.
    pub fn accept_deadline<T>(&self, deadline: Instant) -> Result<Connection<T>, ConnectError> {
        self.accept_until(Some(deadline))
    }

    fn accept_until<T>(&self, deadline: Option<Instant>) -> Result<Connection<T>, ConnectError> {
        let mut gate = self.lock_gate();
        let mut outcomes = Vec::new();
        // Past the deadline, only the handshakes started by then (or in the first round, for
        // connections that were waiting when this call began) are waited for.
        let mut cutoff: Option<Instant> = None;
        loop {
            if let Some(ended) = gate.ended.pop_front() {
                return ended.map(|socket| self.connection(socket));
            }
            let now = Instant::now();
            if let (Some(deadline), Some(cutoff)) = (deadline, cutoff)
                && now >= deadline
                && !gate.admission.started_by(cutoff)
            {
                return Err(ConnectError::Timeout);
            }
            let room_at = gate.admission.room_at(now);
            let accepting = room_at <= now;
            let mut fds = Vec::new();
            if accepting {
                fds.push(self.listening());
            }
            let first_socket = fds.len();
            fds.extend(gate.admission.sockets());
            let wake = [
                gate.admission.next_deadline(),
                deadline.filter(|&d| d > now),
                (!accepting).then_some(room_at),
            ]
            .into_iter()
            .flatten()
            .min();
            // A first round looks at what is there without waiting.
            let wake = if cutoff.is_none() { Some(now) } else { wake };
            let ready = sys::wait_any_readable(&fds, wake).map_err(ConnectError::Os)?;
            drop(fds);
            gate.admission
                .progress(&ready[first_socket..], &mut outcomes);
            if accepting && ready[0] {
                self.accept_waiting(&mut gate, &mut outcomes)?;
            }
            if cutoff.is_none() {
                cutoff = Some(deadline.map_or(Instant::now(), |d| d.max(Instant::now())));
            }
            for outcome in outcomes.drain(..) {
                match outcome {
                    Admitted::In(socket) => gate.ended.push_back(Ok(socket)),
                    Admitted::Refused(error) => gate.ended.push_back(Err(error)),
                    Admitted::Refusing(refusal) => gate.ended.push_back(Err(refusal.send())),
                    Admitted::Evicted => {}
                }
            }
        }
    }

    /// Accepts the connections waiting now, while there is room, and starts their handshakes; a
    /// peer of another user (on a Unix socket) ends at once, as [`ConnectError::ForeignUser`].
    fn accept_waiting(
        &self,
        gate: &mut Gate,
        outcomes: &mut Vec<Admitted<OwnedFd>>,
    ) -> Result<(), ConnectError> {
        while gate.admission.has_room(Instant::now(), outcomes) {
            let socket = match &self.socket {
                Socket::Unix(listener) => {
                    let Some(socket) =
                        sys::accept_now(listener.as_fd()).map_err(ConnectError::Os)?
                    else {
                        return Ok(());
                    };
                    let uid = sys::peer_uid(socket.as_fd()).map_err(ConnectError::Os)?;
                    if uid != sys::own_uid() {
                        gate.ended.push_back(Err(ConnectError::ForeignUser { uid }));
                        continue;
                    }
                    socket
                }
                Socket::Tcp(listener) => match listener.accept() {
                    Ok((stream, _)) => tcp_socket(stream)?,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) => return Err(ConnectError::Os(e)),
                },
            };
            gate.admission.start(socket);
        }
        Ok(())
    }

    /// An authenticated socket as a connection of its kind.
    fn connection<T>(&self, socket: OwnedFd) -> Connection<T> {
        match self.socket {
            Socket::Unix(_) => Connection::new(socket),
            Socket::Tcp(_) => Connection::over_stream(socket),
        }
    }

    fn lock_gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn listening(&self) -> BorrowedFd<'_> {
        match &self.socket {
            Socket::Unix(fd) => fd.as_fd(),
            Socket::Tcp(listener) => listener.as_fd(),
        }
    }
}

impl Drop for Listener {
    /// Removes a Unix socket's path, as Python's `Listener.close` does.
    fn drop(&mut self) {
        if let Address::Unix(path) = &self.address {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Connects to a [`Listener`]. Python's `multiprocessing.connection.Client`.
#[derive(Debug)]
pub struct Client;

impl Client {
    /// Connects to the listener at `address` and authenticates both ways with `authkey`: a wrong
    /// key on either side is [`ConnectError::AuthFailed`], and nothing else crosses.
    pub fn connect<T>(
        address: impl Into<Address>,
        authkey: &[u8],
    ) -> Result<Connection<T>, ConnectError> {
        check_key(authkey)?;
        match address.into() {
            Address::Unix(path) => {
                let socket = sys::seqpacket_connect(&path).map_err(ConnectError::Os)?;
                auth::client(socket.as_fd(), Framing::Packets, authkey)?;
                Ok(Connection::new(socket))
            }
            Address::Tcp(address) => {
                let stream = TcpStream::connect_timeout(&address, auth::HANDSHAKE_TIMEOUT)
                    .map_err(ConnectError::Os)?;
                let socket = tcp_socket(stream)?;
                auth::client(socket.as_fd(), Framing::Stream, authkey)?;
                Ok(Connection::over_stream(socket))
            }
        }
    }
}

fn check_key(authkey: &[u8]) -> Result<(), ConnectError> {
    if authkey.is_empty() {
        return Err(ConnectError::Os(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an empty authkey authenticates nobody",
        )));
    }
    Ok(())
}

/// A connected TCP socket as a descriptor: blocking, no Nagle delay (messages are sent whole).
fn tcp_socket(stream: TcpStream) -> Result<OwnedFd, ConnectError> {
    stream.set_nonblocking(false).map_err(ConnectError::Os)?;
    stream.set_nodelay(true).map_err(ConnectError::Os)?;
    Ok(stream.into())
}
