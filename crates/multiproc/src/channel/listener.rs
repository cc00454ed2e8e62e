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

use std::fmt;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

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
///     conn.send(&"hello over TCP".to_string()).unwrap();
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
    authkey: Vec<u8>,
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
                Socket::Unix(sys::seqpacket_listen(&path, 128).map_err(ConnectError::Os)?),
                Address::Unix(path),
            ),
            Address::Tcp(tcp) => {
                let listener = TcpListener::bind(tcp).map_err(ConnectError::Os)?;
                let bound = listener.local_addr().map_err(ConnectError::Os)?;
                (Socket::Tcp(listener), Address::Tcp(bound))
            }
        };
        Ok(Listener {
            socket,
            address,
            authkey: authkey.to_vec(),
        })
    }

    /// Where it listens (with the port chosen, for TCP port 0).
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Accepts the next connection and authenticates it, waiting as long as it takes for one to
    /// come. A peer with the wrong key is [`ConnectError::AuthFailed`] (it was told, with a fixed
    /// code, and nothing else crossed); the listener goes on accepting.
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
        if deadline.is_some()
            && !sys::wait_readable(self.listening(), deadline).map_err(ConnectError::Os)?
        {
            return Err(ConnectError::Timeout);
        }
        match &self.socket {
            Socket::Unix(listener) => {
                let socket = sys::accept(listener.as_fd()).map_err(ConnectError::Os)?;
                let uid = sys::peer_uid(socket.as_fd()).map_err(ConnectError::Os)?;
                if uid != sys::own_uid() {
                    return Err(ConnectError::ForeignUser { uid });
                }
                auth::server(socket.as_fd(), Framing::Packets, &self.authkey)?;
                Ok(Connection::new(socket))
            }
            Socket::Tcp(listener) => {
                let (stream, _) = listener.accept().map_err(ConnectError::Os)?;
                let socket = tcp_socket(stream)?;
                auth::server(socket.as_fd(), Framing::Stream, &self.authkey)?;
                Ok(Connection::over_stream(socket))
            }
        }
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
