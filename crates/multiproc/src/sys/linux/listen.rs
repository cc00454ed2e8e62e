//! Sockets between unrelated processes: Unix `SOCK_SEQPACKET` listeners bound to a path, their
//! peers' credentials, and plain sends and receives for handshakes and byte streams.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::net::{
    AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketFlags, SocketType, sockopt,
};

/// How many connections a listening socket holds before they are accepted (the kernel caps it
/// at `net.core.somaxconn`): a burst of clients waits there while a server's handshakes in flight
/// are at their limit.
pub(crate) const BACKLOG: i32 = 4096;

/// A `SOCK_SEQPACKET` socket bound to `path` and listening. Fails with `AddrInUse` if the path
/// exists.
pub(crate) fn seqpacket_listen(path: &Path) -> io::Result<OwnedFd> {
    let socket = seqpacket_socket()?;
    rustix::net::bind(&socket, &SocketAddrUnix::new(path)?)?;
    rustix::net::listen(&socket, BACKLOG)?;
    Ok(socket)
}

/// Accepts one connection (close-on-exec), waiting as long as it takes.
fn accept(listener: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Ok(rustix::net::accept_with(listener, SocketFlags::CLOEXEC)?)
}

/// Accepts one connection (close-on-exec) if one is waiting now.
pub(crate) fn accept_now(listener: BorrowedFd<'_>) -> io::Result<Option<OwnedFd>> {
    if !super::process::wait_readable(listener, Some(std::time::Instant::now()))? {
        return Ok(None);
    }
    accept(listener).map(Some)
}

/// A `SOCK_SEQPACKET` connection to the listener at `path`.
pub(crate) fn seqpacket_connect(path: &Path) -> io::Result<OwnedFd> {
    let socket = seqpacket_socket()?;
    rustix::net::connect(&socket, &SocketAddrUnix::new(path)?)?;
    Ok(socket)
}

fn seqpacket_socket() -> io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// The user id of the process at the other end of a Unix socket (`SO_PEERCRED`).
pub(crate) fn peer_uid(socket: BorrowedFd<'_>) -> io::Result<u32> {
    Ok(sockopt::socket_peercred(socket)?.uid.as_raw())
}

/// This process's effective user id.
pub(crate) fn own_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Sends all of `bytes` (one datagram on a packet socket). Never raises SIGPIPE.
pub(crate) fn send_all(socket: BorrowedFd<'_>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match rustix::net::send(socket, bytes, SendFlags::NOSIGNAL) {
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Receives what is there, up to `buf.len()` bytes (one datagram on a packet socket); 0 when the
/// peer closed.
pub(crate) fn recv_some(socket: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match rustix::net::recv(socket, &mut *buf, RecvFlags::empty()) {
            Ok((n, _)) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether the peer of a connected socket has hung up (closed, or died): checked without
/// waiting and without reading what it may have sent.
pub(crate) fn peer_hung_up(socket: BorrowedFd<'_>) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let mut polls = [PollFd::new(&socket, PollFlags::RDHUP)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        match rustix::event::poll(&mut polls, Some(&now)) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return true,
            Ok(0) => return false,
            Ok(_) => {
                let events = polls[0].revents();
                return events.intersects(PollFlags::RDHUP | PollFlags::HUP | PollFlags::ERR);
            }
        }
    }
}

/// Waits until one of `fds` is readable (or hung up), until `deadline` at most; returns which are.
pub(crate) fn wait_any_readable(
    fds: &[BorrowedFd<'_>],
    deadline: Option<std::time::Instant>,
) -> io::Result<Vec<bool>> {
    use rustix::event::{PollFd, PollFlags};
    let mut polls: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(fd, PollFlags::IN))
        .collect();
    loop {
        let timeout = crate::deadline::remaining(deadline).map(super::process::timespec);
        match rustix::event::poll(&mut polls, timeout.as_ref()) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
            Ok(_) => return Ok(polls.iter().map(|p| !p.revents().is_empty()).collect()),
        }
    }
}

/// Sends what the socket takes now, without waiting: the number of bytes sent (0 when its
/// buffer is full). Never raises SIGPIPE.
pub(crate) fn send_now(socket: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    loop {
        match rustix::net::send(socket, bytes, SendFlags::NOSIGNAL | SendFlags::DONTWAIT) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) => return Ok(0),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives what is there now, without waiting: `None` when nothing is, `Some(0)` when the peer
/// closed.
pub(crate) fn recv_now(socket: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        match rustix::net::recv(socket, &mut *buf, RecvFlags::DONTWAIT) {
            Ok((n, _)) => return Ok(Some(n)),
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Ends a connection both ways, for every descriptor of it: its readers see the end at once.
pub(crate) fn shut_down(socket: BorrowedFd<'_>) {
    let _ = rustix::net::shutdown(socket, rustix::net::Shutdown::Both);
}
