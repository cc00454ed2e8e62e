//! Byte-stream sockets, the manager's transports: a Unix stream socket (same machine, same user)
//! or TCP; and the listeners that accept them.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use crate::address::Address;

/// A connected stream socket, either kind.
#[derive(Debug)]
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    /// Connects to `address`; a TCP connection must be made within `timeout`, and sends without
    /// delay (messages are written whole).
    pub(crate) fn connect(address: &Address, timeout: Duration) -> io::Result<Stream> {
        match address {
            Address::Unix(path) => UnixStream::connect(path).map(Stream::Unix),
            Address::Tcp(address) => {
                let stream = TcpStream::connect_timeout(address, timeout)?;
                stream.set_nodelay(true)?;
                Ok(Stream::Tcp(stream))
            }
        }
    }

    /// Two connected ends (Unix), to wake a thread that polls one of them.
    pub(crate) fn pair() -> io::Result<(Stream, Stream)> {
        let (a, b) = UnixStream::pair()?;
        Ok((Stream::Unix(a), Stream::Unix(b)))
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

    /// Ends the connection both ways, for every handle of it: its readers see the end at once.
    pub(crate) fn shut_down(&self) {
        super::listen::shut_down(self.as_fd());
    }

    /// Ends this side's writing: the peer reads the end, and can still answer.
    pub(crate) fn shut_down_write(&self) {
        let _ = rustix::net::shutdown(self.as_fd(), rustix::net::Shutdown::Write);
    }

    /// Makes reads give up after `timeout` (`None`: never) with `WouldBlock`.
    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(timeout),
            Stream::Tcp(s) => s.set_read_timeout(timeout),
        }
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => (&*s).read(buf),
            Stream::Tcp(s) => (&*s).read(buf),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => (&*s).write(buf),
            Stream::Tcp(s) => (&*s).write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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

/// A listening stream socket, either kind.
#[derive(Debug)]
pub(crate) enum StreamListener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl StreamListener {
    /// Listens at `address` (a Unix path, which must not exist yet, or a TCP address: the caller
    /// decides which interfaces it may be on).
    pub(crate) fn bind(address: &Address) -> io::Result<StreamListener> {
        let listener = match address {
            Address::Unix(path) => UnixListener::bind(path).map(StreamListener::Unix),
            Address::Tcp(tcp) => TcpListener::bind(tcp).map(StreamListener::Tcp),
        }?;
        // Listening again sets the backlog: a burst of clients waits there while the server's
        // handshakes in flight are at their limit.
        match &listener {
            StreamListener::Unix(l) => rustix::net::listen(l, super::listen::BACKLOG)?,
            StreamListener::Tcp(l) => rustix::net::listen(l, super::listen::BACKLOG)?,
        }
        Ok(listener)
    }

    /// Where it listens (the port chosen, for TCP port 0).
    pub(crate) fn address(&self) -> io::Result<Address> {
        Ok(match self {
            StreamListener::Unix(l) => Address::Unix(
                l.local_addr()?
                    .as_pathname()
                    .ok_or_else(|| io::Error::other("an unnamed Unix socket"))?
                    .to_owned(),
            ),
            StreamListener::Tcp(l) => Address::Tcp(l.local_addr()?),
        })
    }

    pub(crate) fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        match self {
            StreamListener::Unix(l) => l.set_nonblocking(nonblocking),
            StreamListener::Tcp(l) => l.set_nonblocking(nonblocking),
        }
    }

    /// Accepts a connection; the stream blocks, whatever the listener does.
    pub(crate) fn accept(&self) -> io::Result<Stream> {
        match self {
            StreamListener::Unix(l) => {
                let (stream, _) = l.accept()?;
                stream.set_nonblocking(false)?;
                Ok(Stream::Unix(stream))
            }
            StreamListener::Tcp(l) => {
                let (stream, _) = l.accept()?;
                stream.set_nonblocking(false)?;
                stream.set_nodelay(true)?;
                Ok(Stream::Tcp(stream))
            }
        }
    }

    /// The socket and whether it is TCP, to hand to another process.
    pub(crate) fn into_parts(self) -> (OwnedFd, bool) {
        match self {
            StreamListener::Unix(l) => (l.into(), false),
            StreamListener::Tcp(l) => (l.into(), true),
        }
    }

    /// A listening socket this process was given (inherited from a parent that is not a
    /// multiproc program): a Unix or TCP stream socket that listens, or `InvalidInput`.
    pub(crate) fn inherited(fd: OwnedFd) -> io::Result<StreamListener> {
        use rustix::net::{AddressFamily, SocketType, sockopt};
        let not = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_owned());
        if sockopt::socket_type(&fd)? != SocketType::STREAM {
            return Err(not("the inherited descriptor is not a stream socket"));
        }
        if !sockopt::socket_acceptconn(&fd)? {
            return Err(not(
                "the inherited socket does not listen (call listen first)",
            ));
        }
        let tcp = match sockopt::socket_domain(&fd)? {
            AddressFamily::UNIX => false,
            AddressFamily::INET | AddressFamily::INET6 => true,
            _ => return Err(not("the inherited socket is neither Unix nor TCP")),
        };
        Ok(StreamListener::from_parts(fd, tcp))
    }

    /// The listening socket passed to this process by socket activation, systemd's convention:
    /// descriptor 3, with `LISTEN_FDS` at 1 or more (and `LISTEN_PID`, when set, this process's
    /// id). Taken once per process; `None` when there is none (or it was taken).
    pub(crate) fn activated() -> io::Result<Option<StreamListener>> {
        use std::os::fd::FromRawFd;
        use std::sync::atomic::{AtomicBool, Ordering};
        static TAKEN: AtomicBool = AtomicBool::new(false);
        let fds = std::env::var("LISTEN_FDS").ok();
        if fds.and_then(|n| n.parse::<u32>().ok()).unwrap_or(0) == 0 {
            return Ok(None);
        }
        if let Ok(pid) = std::env::var("LISTEN_PID")
            && pid.parse::<u32>().ok() != Some(std::process::id())
        {
            return Ok(None); // passed to another process (the one that set it)
        }
        const FIRST: i32 = 3;
        // SAFETY: F_GETFD reads the descriptor's flags and changes nothing, whatever it is.
        let open = unsafe { libc::fcntl(FIRST, libc::F_GETFD) } != -1;
        if !open || TAKEN.swap(true, Ordering::SeqCst) {
            return Ok(None);
        }
        // SAFETY: by the convention checked above, descriptor 3 was passed to this process to
        // listen on, and belongs to no other part of it; `TAKEN` makes this the one owner, once.
        let fd = unsafe { OwnedFd::from_raw_fd(FIRST) };
        StreamListener::inherited(fd).map(Some)
    }

    /// The listener handed over as [`into_parts`](Self::into_parts) gave it.
    pub(crate) fn from_parts(fd: OwnedFd, tcp: bool) -> StreamListener {
        if tcp {
            StreamListener::Tcp(TcpListener::from(fd))
        } else {
            StreamListener::Unix(UnixListener::from(fd))
        }
    }
}

impl AsFd for StreamListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            StreamListener::Unix(l) => l.as_fd(),
            StreamListener::Tcp(l) => l.as_fd(),
        }
    }
}
