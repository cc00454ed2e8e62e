//! Messages over a byte stream (TCP): a 16-byte header (magic `MPS1`, 4 reserved bytes, the body's
//! length, little-endian), then the body. Unlike a packet socket, a stream cannot carry handles,
//! and readers and writers must take turns: each end serializes its own readers and writers.

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::Mutex;
use std::time::Instant;

use crate::sys;

const MAGIC: [u8; 4] = *b"MPS1";
const HEADER_LEN: usize = 16;
/// A body is read in pieces of at most this size, so a length claimed by the peer is never
/// allocated before the bytes arrive.
const PIECE: usize = 1 << 20;

/// One end's turn-taking: a message is written, or read, whole before the next one starts.
#[derive(Debug, Default)]
pub(crate) struct Turns {
    pub(crate) read: Mutex<()>,
    pub(crate) write: Mutex<()>,
}

/// What [`recv_frame`] found.
pub(crate) enum Frame {
    Message(Vec<u8>),
    /// A body of `len` bytes, over the limit: the connection is shut down (the stream cannot skip
    /// it without reading it).
    TooLarge {
        len: u64,
    },
    /// The peer closed its end between messages.
    Closed,
    /// Nothing began to arrive before the deadline.
    Timeout,
}

/// Sends `bytes` as one message.
pub(crate) fn send_frame(socket: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<()> {
    let mut header = [0u8; HEADER_LEN];
    header[..4].copy_from_slice(&MAGIC);
    header[8..].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
    if bytes.len() <= 64 * 1024 {
        // One send for a small message: no wait for an acknowledgement between header and body.
        sys::send_all(socket, &[&header[..], bytes].concat())
    } else {
        sys::send_all(socket, &header)?;
        sys::send_all(socket, bytes)
    }
}

/// Receives one message of at most `max_len` bytes; waits until `deadline` for it to begin.
pub(crate) fn recv_frame(
    socket: BorrowedFd<'_>,
    max_len: usize,
    deadline: Option<Instant>,
) -> io::Result<Frame> {
    if deadline.is_some() && !sys::wait_readable(socket, deadline)? {
        return Ok(Frame::Timeout);
    }
    let mut header = [0u8; HEADER_LEN];
    let first = sys::recv_some(socket, &mut header)?;
    if first == 0 {
        return Ok(Frame::Closed);
    }
    read_exact(socket, &mut header[first..])?;
    if header[..4] != MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "malformed multiproc stream: bad header",
        ));
    }
    let len = u64::from_le_bytes(header[8..].try_into().expect("8 bytes"));
    if len > max_len as u64 {
        sys::shut_down(socket);
        return Ok(Frame::TooLarge { len });
    }
    let len = len as usize;
    let mut body = Vec::with_capacity(len.min(PIECE));
    while body.len() < len {
        let start = body.len();
        body.resize(start + (len - start).min(PIECE), 0);
        read_exact(socket, &mut body[start..])?;
    }
    Ok(Frame::Message(body))
}

fn read_exact(socket: BorrowedFd<'_>, mut buf: &mut [u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match sys::recv_some(socket, buf)? {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection in the middle of a message",
                ));
            }
            n => buf = &mut buf[n..],
        }
    }
    Ok(())
}
