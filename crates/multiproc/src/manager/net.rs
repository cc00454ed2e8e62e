//! The manager's transports: a Unix stream socket (same machine, same user) or TCP (loopback
//! unless the user opts in).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

use super::ManagerError;
use crate::channel::{Address, ConnectError, HANDSHAKE_TIMEOUT};

/// A connection, either kind.
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    /// Connects to `address`.
    pub(crate) fn connect(address: &Address) -> io::Result<Stream> {
        match address {
            Address::Unix(path) => UnixStream::connect(path).map(Stream::Unix),
            Address::Tcp(address) => {
                let stream = TcpStream::connect_timeout(address, HANDSHAKE_TIMEOUT)?;
                stream.set_nodelay(true)?;
                Ok(Stream::Tcp(stream))
            }
        }
    }

    pub(crate) fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }

    pub(crate) fn is_unix(&self) -> bool {
        matches!(self, Stream::Unix(_))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
        }
    }
}

/// A listening socket, either kind.
pub(crate) enum Listening {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Listening {
    /// Listens at `address`. TCP off the loopback interface needs `allow_remote`: nothing is
    /// encrypted, and frames after the handshake are not authenticated.
    pub(crate) fn bind(address: &Address, allow_remote: bool) -> Result<Listening, ManagerError> {
        match address {
            Address::Unix(path) => UnixListener::bind(path)
                .map(Listening::Unix)
                .map_err(ManagerError::Os),
            Address::Tcp(tcp) => {
                if !tcp.ip().is_loopback() && !allow_remote {
                    return Err(ConnectError::NotLoopback { address: *tcp }.into());
                }
                TcpListener::bind(tcp)
                    .map(Listening::Tcp)
                    .map_err(ManagerError::Os)
            }
        }
    }

    /// Where it listens (the port chosen, for TCP port 0).
    pub(crate) fn address(&self) -> io::Result<Address> {
        Ok(match self {
            Listening::Unix(l) => Address::Unix(
                l.local_addr()?
                    .as_pathname()
                    .ok_or_else(|| io::Error::other("an unnamed Unix socket"))?
                    .to_owned(),
            ),
            Listening::Tcp(l) => Address::Tcp(l.local_addr()?),
        })
    }

    pub(crate) fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        match self {
            Listening::Unix(l) => l.set_nonblocking(nonblocking),
            Listening::Tcp(l) => l.set_nonblocking(nonblocking),
        }
    }

    /// Accepts a connection; the stream blocks, whatever the listener does.
    pub(crate) fn accept(&self) -> io::Result<Stream> {
        match self {
            Listening::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
            Listening::Tcp(l) => {
                let (stream, _) = l.accept()?;
                stream.set_nodelay(true)?;
                Ok(Stream::Tcp(stream))
            }
        }
    }

    /// The socket and its kind, to hand to the server process.
    pub(crate) fn into_parts(self) -> (OwnedFd, bool) {
        match self {
            Listening::Unix(l) => (l.into(), false),
            Listening::Tcp(l) => (l.into(), true),
        }
    }

    pub(crate) fn from_parts(fd: OwnedFd, tcp: bool) -> Listening {
        if tcp {
            Listening::Tcp(TcpListener::from(fd))
        } else {
            Listening::Unix(UnixListener::from(fd))
        }
    }
}

impl AsFd for Listening {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listening::Unix(l) => l.as_fd(),
            Listening::Tcp(l) => l.as_fd(),
        }
    }
}
