//! Frames of the manager protocol: a 4-byte magic and version (`MPM1`), a 4-byte big-endian
//! payload length, then the payload (MessagePack). See `docs/manager-protocol.md`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use crate::spin::Spinner;
use crate::sys::{self, Stream};

/// The magic and version that start every frame.
pub(crate) const MAGIC: [u8; 4] = *b"MPM1";

/// The default cap on a frame's payload, after authentication.
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

/// A payload is read in pieces of at most this size: a length claimed by the peer is never
/// allocated before the bytes arrive.
const PIECE: usize = 1 << 20;

/// Why a frame was not read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("the peer closed the connection")]
    Closed,
    #[error("not a multiproc manager frame (bad magic)")]
    BadMagic,
    #[error("a frame of {len} bytes is over the limit of {max}")]
    TooLarge { len: u64, max: usize },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// One frame in one buffer: the header, and the payload encoded right after it, so that it is
/// neither copied nor sent in two writes.
pub(crate) struct Frame(Vec<u8>);

impl Frame {
    /// The frame of the payload `encode` writes.
    pub(crate) fn of(encode: impl FnOnce(&mut Vec<u8>)) -> Frame {
        let mut bytes = Vec::with_capacity(128);
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&[0; 4]);
        encode(&mut bytes);
        Frame(bytes)
    }

    /// The payload's length.
    pub(crate) fn payload_len(&self) -> usize {
        self.0.len() - 8
    }

    /// Writes the frame to `out`.
    pub(crate) fn write_to(mut self, out: &mut impl Write) -> io::Result<()> {
        let len = u32::try_from(self.payload_len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a frame over 4 GiB"))?;
        self.0[4..8].copy_from_slice(&len.to_be_bytes());
        out.write_all(&self.0)
    }
}

/// Reads one frame of at most `max` payload bytes.
pub(crate) fn read_frame(input: &mut impl Read, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut header = [0u8; 8];
    let mut filled = 0;
    while filled < header.len() {
        match input.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    if header[..4] != MAGIC {
        return Err(FrameError::BadMagic);
    }
    let len = u32::from_be_bytes(header[4..].try_into().expect("4 bytes")) as usize;
    if len > max {
        return Err(FrameError::TooLarge {
            len: len as u64,
            max,
        });
    }
    let mut payload = Vec::with_capacity(len.min(PIECE));
    while payload.len() < len {
        let start = payload.len();
        payload.resize(start + (len - start).min(PIECE), 0);
        input.read_exact(&mut payload[start..])?;
    }
    Ok(payload)
}

/// Waits until `reader` has bytes buffered or its socket is readable, polling first if `spinner`
/// says polling pays here (see [`crate::spin`]); then a blocking read will not sleep, or only
/// briefly.
fn poll_briefly(reader: &BufReader<Stream>, spinner: &Spinner) {
    if reader.buffer().is_empty() {
        let fd = reader.get_ref().as_fd();
        spinner.spin(None, || {
            sys::wait_readable(fd, Some(Instant::now())).unwrap_or(true)
        });
    }
}

/// Once a frame has begun, the rest must come within this: a peer that sends part of a frame
/// and goes silent loses its connection instead of holding it forever.
pub(crate) const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// [`read_frame`] after [`poll_briefly`]. Waits as long as it takes for a frame to begin, then
/// at most [`FRAME_TIMEOUT`] for the rest of it. `spinner` is the connection's own: whether its
/// frames tend to come while it polls.
pub(crate) fn read_frame_soon(
    reader: &mut BufReader<Stream>,
    max: usize,
    spinner: &Spinner,
) -> Result<Vec<u8>, FrameError> {
    poll_briefly(reader, spinner);
    let buffered = reader.fill_buf().map(<[u8]>::len).unwrap_or(0);
    let whole = buffered >= 8 && {
        let header = reader.buffer();
        let len = u32::from_be_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
        buffered >= 8 + len
    };
    if whole || buffered == 0 {
        return read_frame(reader, max); // no system call for a frame that came whole
    }
    let _ = reader.get_ref().set_read_timeout(Some(FRAME_TIMEOUT));
    let frame = read_frame(reader, max);
    let _ = reader.get_ref().set_read_timeout(None);
    frame
}
