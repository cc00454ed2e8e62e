//! One [`Message`] per datagram on a `SOCK_SEQPACKET` socket, descriptors attached.
//!
//! Layout: a 24-byte header (magic `MPK1`, flags, body length, tag; little-endian), then the body
//! inline. A body longer than the inline limit ([`INLINE_MAX`] unless the sender chose less) is
//! spilled into a sealed memfd sent as the first descriptor, so a send never waits for the reader
//! however large the message: the datagram stays small. The tag is the sender's: pipes say in it
//! the CPU they ran on, plus one (see `crate::spin::Spinner::peer_ran_on`), queues number their
//! side-channel items with it.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::Message;
use crate::sys::{self, MemFile, Received};

const MAGIC: [u8; 4] = *b"MPK1";
const HEADER_LEN: usize = 24;
const FLAG_SPILLED: u32 = 1;

/// Bodies up to this size travel in the datagram itself.
pub(crate) const INLINE_MAX: usize = 64 * 1024;

/// The most descriptors one message may carry (one slot is kept for the spill file).
pub(crate) const MAX_HANDLES: usize = 252;

/// Sends `message` as one datagram. With `nonblocking`, a full peer queue is `WouldBlock`.
pub(crate) fn send(socket: BorrowedFd<'_>, message: &Message, nonblocking: bool) -> io::Result<()> {
    send_parts(socket, &message.bytes, &message.fds, 0, nonblocking)
}

/// Sends `bytes` with `handles` attached as one datagram marked with `tag`, without first
/// gathering them into a [`Message`].
pub(crate) fn send_parts(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    handles: &[OwnedFd],
    tag: u64,
    nonblocking: bool,
) -> io::Result<()> {
    Outgoing::new(bytes, handles, INLINE_MAX)?.send(socket, tag, nonblocking)
}

/// A datagram ready to go: the body is in it, or already written to its spill file. Preparing
/// does the slow part (copying a large body), so the send itself can happen under a lock.
pub(crate) struct Outgoing<'a> {
    body: &'a [u8],
    len: u64,
    spill: Option<MemFile>,
    handles: &'a [OwnedFd],
}

impl<'a> Outgoing<'a> {
    /// Prepares `bytes` with `handles`, spilling a body longer than `inline_max`.
    pub(crate) fn new(
        bytes: &'a [u8],
        handles: &'a [OwnedFd],
        inline_max: usize,
    ) -> io::Result<Outgoing<'a>> {
        if handles.len() > MAX_HANDLES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a message may carry at most {MAX_HANDLES} handles, not {}",
                    handles.len()
                ),
            ));
        }
        let spill = if bytes.len() > inline_max.min(INLINE_MAX) {
            let file = MemFile::create("multiproc-message")?;
            file.write_all_at(bytes, 0)?;
            file.seal_size()?;
            Some(file)
        } else {
            None
        };
        Ok(Outgoing {
            body: if spill.is_some() { &[] } else { bytes },
            len: bytes.len() as u64,
            spill,
            handles,
        })
    }

    /// Sends the datagram, marked with `tag`.
    pub(crate) fn send(
        &self,
        socket: BorrowedFd<'_>,
        tag: u64,
        nonblocking: bool,
    ) -> io::Result<()> {
        let mut header = [0u8; HEADER_LEN];
        header[..4].copy_from_slice(&MAGIC);
        let flags = if self.spill.is_some() {
            FLAG_SPILLED
        } else {
            0
        };
        header[4..8].copy_from_slice(&flags.to_le_bytes());
        header[8..16].copy_from_slice(&self.len.to_le_bytes());
        header[16..24].copy_from_slice(&tag.to_le_bytes());

        let mut fds: Vec<BorrowedFd<'_>> = Vec::with_capacity(self.handles.len() + 1);
        fds.extend(self.spill.as_ref().map(|f| f.as_fd()));
        fds.extend(self.handles.iter().map(|f| f.as_fd()));
        let sent = sys::send_with_fds(
            socket,
            &[IoSlice::new(&header), IoSlice::new(self.body)],
            &fds,
            nonblocking,
        )?;
        debug_assert_eq!(
            sent,
            HEADER_LEN + self.body.len(),
            "a datagram is sent whole"
        );
        Ok(())
    }
}

/// What [`recv`] found.
pub(crate) enum Recv {
    Message(Message),
    /// A message of `len` bytes, above the receiver's limit: consumed and dropped, unread.
    TooLarge {
        len: u64,
    },
    /// The peer closed its end and every message it sent has been read.
    Closed,
    /// Nothing waiting (non-blocking only).
    Empty,
}

thread_local! {
    /// Where datagrams land before their body is copied out: allocated once per thread.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; HEADER_LEN + INLINE_MAX]);
}

/// A received datagram whose body may still be in its spill file.
pub(crate) struct Datagram {
    /// The sender's tag.
    pub(crate) tag: u64,
    flags: u32,
    body_len: u64,
    inline: Vec<u8>,
    fds: Vec<OwnedFd>,
}

/// What [`recv_datagram`] found.
pub(crate) enum Incoming {
    Datagram(Datagram),
    Closed,
    Empty,
}

/// Receives one datagram without reading a spilled body.
pub(crate) fn recv_datagram(socket: BorrowedFd<'_>, nonblocking: bool) -> io::Result<Incoming> {
    let mut fds = Vec::new();
    SCRATCH.with(|scratch| {
        let mut buf = scratch.borrow_mut();
        let len = match sys::recv_with_fds(socket, &mut buf, &mut fds, nonblocking)? {
            Received::Datagram(len) => len,
            Received::Closed => return Ok(Incoming::Closed),
            Received::Empty => return Ok(Incoming::Empty),
        };
        if len < HEADER_LEN || buf[..4] != MAGIC {
            return Err(malformed("bad header"));
        }
        let field = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
        Ok(Incoming::Datagram(Datagram {
            flags: u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes")),
            body_len: field(8),
            tag: field(16),
            inline: buf[HEADER_LEN..len].to_vec(),
            fds,
        }))
    })
}

impl Datagram {
    /// The message, its body read from the spill file if it was spilled; a body over `max_len`
    /// is [`Recv::TooLarge`], dropped unread.
    pub(crate) fn open(self, max_len: usize) -> io::Result<Recv> {
        let Datagram {
            flags,
            body_len,
            inline,
            mut fds,
            ..
        } = self;
        if body_len > max_len as u64 {
            return Ok(Recv::TooLarge { len: body_len });
        }
        let bytes = if flags & FLAG_SPILLED != 0 {
            if !inline.is_empty() || fds.is_empty() {
                return Err(malformed("spilled message without its file"));
            }
            let file = MemFile::from_fd(fds.remove(0));
            if !file.size_is_sealed()? || file.len()? < body_len {
                return Err(malformed(
                    "spill file is unsealed or shorter than the message",
                ));
            }
            let body_len = usize::try_from(body_len).map_err(|_| malformed("message too large"))?;
            file.read_exact(body_len)?
        } else {
            if body_len != inline.len() as u64 {
                return Err(malformed("length does not match the datagram"));
            }
            inline
        };
        Ok(Recv::Message(Message { bytes, fds }))
    }
}

/// Receives one message of at most `max_len` bytes. With `nonblocking`, returns [`Recv::Empty`]
/// instead of waiting. A longer one is [`Recv::TooLarge`], refused before its body is read.
pub(crate) fn recv(socket: BorrowedFd<'_>, nonblocking: bool, max_len: usize) -> io::Result<Recv> {
    recv_tagged(socket, nonblocking, max_len).map(|(received, _)| received)
}

/// [`recv`], and the tag of the datagram received (0 if none was).
pub(crate) fn recv_tagged(
    socket: BorrowedFd<'_>,
    nonblocking: bool,
    max_len: usize,
) -> io::Result<(Recv, u64)> {
    match recv_datagram(socket, nonblocking)? {
        Incoming::Datagram(datagram) => {
            let tag = datagram.tag;
            Ok((datagram.open(max_len)?, tag))
        }
        Incoming::Closed => Ok((Recv::Closed, 0)),
        Incoming::Empty => Ok((Recv::Empty, 0)),
    }
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed multiproc packet: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::{decode, encode};

    fn pair() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
        sys::seqpacket_pair().unwrap()
    }

    fn received(socket: BorrowedFd<'_>) -> Message {
        match recv(socket, true, usize::MAX).unwrap() {
            Recv::Message(m) => m,
            _ => panic!("expected a message"),
        }
    }

    #[test]
    fn small_and_spilled_messages_arrive_whole() {
        let (a, b) = pair();
        for len in [0, 1, INLINE_MAX, INLINE_MAX + 1, 3 << 20] {
            let value: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            send(a.as_fd(), &encode(&value).unwrap(), true).unwrap();
            let back: Vec<u8> = decode(received(b.as_fd())).unwrap();
            assert_eq!(back, value, "length {len}");
        }
        assert!(matches!(
            recv(b.as_fd(), true, usize::MAX).unwrap(),
            Recv::Empty
        ));
    }

    #[test]
    fn closed_peer_is_reported_after_the_last_message() {
        let (a, b) = pair();
        send(a.as_fd(), &encode(&7u32).unwrap(), true).unwrap();
        drop(a);
        assert_eq!(decode::<u32>(received(b.as_fd())).unwrap(), 7);
        assert!(matches!(
            recv(b.as_fd(), true, usize::MAX).unwrap(),
            Recv::Closed
        ));
    }

    #[test]
    fn descriptors_travel_with_their_message() {
        let (a, b) = pair();
        let file = MemFile::create("t").unwrap();
        file.write_all_at(b"hello", 0).unwrap();
        let message = Message {
            bytes: vec![1, 2, 3],
            fds: vec![file.into_fd()],
        };
        send(a.as_fd(), &message, true).unwrap();
        let got = received(b.as_fd());
        assert_eq!(got.bytes, vec![1, 2, 3]);
        assert_eq!(got.fds.len(), 1);
        let file = MemFile::from_fd(got.fds.into_iter().next().unwrap());
        assert_eq!(file.read_exact(5).unwrap(), b"hello");
    }

    #[test]
    fn too_many_handles_are_refused_before_sending() {
        let (a, b) = pair();
        let fds = (0..=MAX_HANDLES)
            .map(|_| MemFile::create("t").unwrap().into_fd())
            .collect();
        let err = send(a.as_fd(), &Message { bytes: vec![], fds }, true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(matches!(
            recv(b.as_fd(), true, usize::MAX).unwrap(),
            Recv::Empty
        ));
    }

    #[test]
    fn garbage_is_a_typed_error() {
        let (a, b) = pair();
        sys::send_with_fds(a.as_fd(), &[IoSlice::new(b"GET / HTTP/1.1\r\n")], &[], true).unwrap();
        let err = recv(b.as_fd(), true, usize::MAX)
            .err()
            .expect("garbage must be refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
