//! A segment: a sealed anonymous memory file, mapped, with a header that lets a process receiving
//! one check what it is before trusting it.
//!
//! Layout: [`HEADER_LEN`] bytes of [`Header`], then the user's bytes. The size is reserved at creation
//! (a full memory filesystem is an error then, never a SIGBUS later) and sealed, so no process can
//! shrink the file under another's mapping.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use super::ShmError;
use crate::sys::{Mapping, Memfd};

/// "multiprc" in ASCII.
const MAGIC: u64 = u64::from_le_bytes(*b"multiprc");
/// Bumped whenever the header or the layout of anything stored in segments changes.
const LAYOUT_VERSION: u32 = 1;
const HEADER_LEN: usize = 64;
const INITIALIZED: u32 = 1;

/// The start of every segment.
#[repr(C)]
struct Header {
    magic: u64,
    layout_version: u32,
    /// Set (release) once the creator has written the header and the initial content.
    initialized: AtomicU32,
    /// The user's size, without header or page rounding.
    len: u64,
    /// What lives in the segment ([`Kind`]), checked by whoever opens it.
    kind: u32,
}

const _: () = assert!(size_of::<Header>() <= HEADER_LEN);

/// What a segment holds. An object opened as another kind is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Kind {
    /// Bytes laid out by the user ([`crate::SharedMemory`]).
    Bytes = 1,
    Lock,
    RLock,
    Semaphore,
    Condition,
    Event,
    Barrier,
    /// A lock followed by values ([`crate::Value`], [`crate::Array`]).
    LockedData,
}

/// A mapped segment. Dropping it unmaps it; the memory lives while any process maps or holds it.
#[derive(Debug)]
pub(crate) struct Segment {
    file: Memfd,
    map: Mapping,
    len: usize,
}

impl Segment {
    /// Creates an anonymous segment of `len` user bytes, zeroed.
    pub(crate) fn create_anonymous(kind: Kind, len: usize) -> Result<Segment, ShmError> {
        Segment::create_anonymous_with(kind, len, |_| {})
    }

    /// Creates an anonymous segment of `len` user bytes; `init` writes the initial content (given
    /// the start of the user bytes) before any other process can see the segment.
    pub(crate) fn create_anonymous_with(
        kind: Kind,
        len: usize,
        init: impl FnOnce(*mut u8),
    ) -> Result<Segment, ShmError> {
        let total = HEADER_LEN
            .checked_add(len)
            .ok_or(ShmError::OutOfSpace { requested: len })?;
        let file = Memfd::create("multiproc-shm")?;
        file.reserve(total as u64).map_err(|e| match e.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                ShmError::OutOfSpace { requested: len }
            }
            _ => ShmError::Os(e),
        })?;
        file.seal_size()?;
        let map = Mapping::map(file.as_fd(), total)?;
        let header = map.as_ptr().cast::<Header>();
        // SAFETY: the mapping is at least HEADER_LEN bytes, page-aligned (so aligned for Header), and
        // no other process has the descriptor yet, so these plain writes race with nothing.
        unsafe {
            (&raw mut (*header).magic).write(MAGIC);
            (&raw mut (*header).layout_version).write(LAYOUT_VERSION);
            (&raw mut (*header).len).write(len as u64);
            (&raw mut (*header).kind).write(kind as u32);
        }
        let segment = Segment { file, map, len };
        init(segment.as_ptr());
        segment
            .header()
            .initialized
            .store(INITIALIZED, Ordering::Release);
        Ok(segment)
    }

    /// Maps a segment received from another process, after checking it holds a `kind`.
    pub(crate) fn open_fd(fd: OwnedFd, kind: Kind) -> Result<Segment, ShmError> {
        let file = Memfd::from_fd(fd);
        if !file.size_is_sealed().unwrap_or(false) {
            return Err(ShmError::NotASegment {
                reason: "its size is not sealed",
            });
        }
        let total = usize::try_from(file.len()?).map_err(|_| ShmError::NotASegment {
            reason: "too large",
        })?;
        if total < HEADER_LEN {
            return Err(ShmError::NotASegment {
                reason: "shorter than the header",
            });
        }
        let map = Mapping::map(file.as_fd(), total)?;
        let header = map.as_ptr().cast::<Header>();
        // SAFETY: the sealed file is at least HEADER_LEN long, the mapping page-aligned; magic,
        // version and len are written once before `initialized` is released, and read after the
        // acquire below, so these reads race with no write.
        let (magic, version) = unsafe {
            (
                (&raw const (*header).magic).read(),
                (&raw const (*header).layout_version).read(),
            )
        };
        if magic != MAGIC {
            return Err(ShmError::NotASegment {
                reason: "bad magic",
            });
        }
        if version != LAYOUT_VERSION {
            return Err(ShmError::VersionMismatch {
                found: version,
                expected: LAYOUT_VERSION,
            });
        }
        let mut segment = Segment { file, map, len: 0 };
        if segment.header().initialized.load(Ordering::Acquire) != INITIALIZED {
            return Err(ShmError::NotYetInitialized);
        }
        // SAFETY: as above; `len` and `kind` were written before `initialized` was released.
        let (len, found) = unsafe {
            (
                (&raw const (*header).len).read(),
                (&raw const (*header).kind).read(),
            )
        };
        if found != kind as u32 {
            return Err(ShmError::NotASegment {
                reason: "it holds another kind of object",
            });
        }
        if len > (total - HEADER_LEN) as u64 {
            return Err(ShmError::NotASegment {
                reason: "declared size exceeds the file",
            });
        }
        segment.len = len as usize;
        Ok(segment)
    }

    fn header(&self) -> &Header {
        // SAFETY: the mapping holds a Header at offset 0 (checked or written at creation), aligned,
        // and lives as long as `self`; its mutable field is atomic.
        unsafe { &*self.map.as_ptr().cast::<Header>() }
    }

    /// The user's bytes.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        // SAFETY: the mapping is HEADER_LEN + len bytes long, so the offset stays inside it.
        unsafe { self.map.as_ptr().add(HEADER_LEN) }
    }

    /// The user's size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn check(&self, offset: usize, len: usize) -> Result<(), ShmError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(ShmError::OutOfBounds {
                offset,
                len,
                size: self.len,
            }),
        }
    }

    /// Copies `data` into the segment at `offset`.
    pub(crate) fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), ShmError> {
        self.check(offset, data.len())?;
        // SAFETY: bounds checked above; the segment never aliases `data` (a Rust slice cannot point
        // into it, only raw pointers can). Bytes another process writes concurrently make the result
        // unspecified but not undefined: the copy goes through raw pointers to shared memory.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.as_ptr().add(offset), data.len())
        };
        Ok(())
    }

    /// Copies bytes of the segment at `offset` into `out`.
    pub(crate) fn read_at(&self, offset: usize, out: &mut [u8]) -> Result<(), ShmError> {
        self.check(offset, out.len())?;
        // SAFETY: as in `write_at`.
        unsafe {
            std::ptr::copy_nonoverlapping(self.as_ptr().add(offset), out.as_mut_ptr(), out.len())
        };
        Ok(())
    }
}

impl AsFd for Segment {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}
