//! A segment: a memory file, mapped, with a header that lets a process receiving one check what it
//! is before trusting it.
//!
//! Layout: [`HEADER_LEN`] bytes of [`Header`], then the user's bytes. The size is reserved at creation
//! (a full memory filesystem is an error then, never a SIGBUS later), unless a named segment is
//! asked for lazily ([`Pages::Lazy`]): then a copy that finds no page left is
//! [`ShmError::NoSpaceToWrite`], told from a shrink by the file's size.
//!
//! Anonymous segments are sealed memfds: no process can shrink one under another's mapping, and
//! the memory is gone when the last process holding it is, however they end. A named segment
//! cannot be sealed: another process of the user can shrink its file, and touching a page past the
//! new end raises SIGBUS. So its header is read, and its bytes copied, through the kernel
//! ([`Mapping::copy_out`], [`Mapping::copy_in`]), which reports such a page as an error:
//! [`ShmError::Shrunk`], never a crash. Named segments are
//! files of /dev/shm (`multiproc.NAME`), mode 0600, created whole under a temporary name and renamed
//! into place; their creator holds a shared `flock` on them while it holds the segment, which is how
//! [`Segment::clean_dead`] tells a live owner from a dead one (the rule is `crate::sweep`'s, shared
//! with managers' socket directories).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::ShmError;
use crate::sweep::{self, NAMED_SEGMENTS, SEGMENTS_BEING_MADE};
use crate::sys::{self, Fault, Mapping, MemFile};

/// Whether a new segment's pages are taken at creation or as they are first written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pages {
    /// Now: a full memory filesystem is an error at creation, never later.
    Reserved,
    /// As written: creation is quicker; a write that finds the filesystem full fails then.
    Lazy,
}

/// "multiprc" in ASCII.
const MAGIC: u64 = u64::from_le_bytes(*b"multiprc");
/// Bumped whenever the header or the layout of anything stored in segments changes.
const LAYOUT_VERSION: u32 = 2;
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
    /// A queue's state followed by its ring of records ([`crate::Queue`]).
    Queue,
}

/// Where a segment's memory file comes from, which decides what is checked when it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backing {
    /// A sealed memfd, passed from process to process.
    Anonymous,
    /// A file of /dev/shm, opened by name.
    Named,
}

/// A mapped segment. Dropping it unmaps it; the memory lives while any process maps or holds it.
#[derive(Debug)]
pub(crate) struct Segment {
    file: MemFile,
    map: Mapping,
    len: usize,
    /// Whether the file's size is sealed (anonymous segments): then plain copies cannot fault.
    sealed: bool,
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
        let file = MemFile::create("multiproc-shm")?;
        Segment::build(file, kind, len, Pages::Reserved, true, init)
    }

    /// Sizes (reserving its pages if asked), seals (if asked), maps and initializes a new segment
    /// in `file`.
    fn build(
        file: MemFile,
        kind: Kind,
        len: usize,
        pages: Pages,
        seal: bool,
        init: impl FnOnce(*mut u8),
    ) -> Result<Segment, ShmError> {
        let total = HEADER_LEN
            .checked_add(len)
            .ok_or(ShmError::OutOfSpace { requested: len })?;
        let sized = match pages {
            Pages::Reserved => file.reserve(total as u64),
            Pages::Lazy => file.set_len(total as u64),
        };
        sized.map_err(|e| match e.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                ShmError::OutOfSpace { requested: len }
            }
            _ => ShmError::Os(e),
        })?;
        if seal {
            file.seal_size()?;
        }
        let map = Mapping::map(file.as_fd(), total)?;
        let header = map.as_ptr().cast::<Header>();
        // SAFETY: the mapping is at least HEADER_LEN bytes, page-aligned (so aligned for Header), and
        // no other process can reach the file yet, so these plain writes race with nothing.
        unsafe {
            (&raw mut (*header).magic).write(MAGIC);
            (&raw mut (*header).layout_version).write(LAYOUT_VERSION);
            (&raw mut (*header).len).write(len as u64);
            (&raw mut (*header).kind).write(kind as u32);
        }
        let segment = Segment {
            file,
            map,
            len,
            sealed: seal,
        };
        init(segment.as_ptr());
        segment
            .header()
            .initialized
            .store(INITIALIZED, Ordering::Release);
        Ok(segment)
    }

    /// Maps a segment received from another process, after checking it holds a `kind`.
    pub(crate) fn open_fd(fd: OwnedFd, kind: Kind, backing: Backing) -> Result<Segment, ShmError> {
        let file = MemFile::from_fd(fd);
        let sealed = file.size_is_sealed().unwrap_or(false);
        if backing == Backing::Anonymous && !sealed {
            return Err(ShmError::NotASegment {
                reason: "its size is not sealed",
            });
        }
        Segment::check(file, kind, sealed)
    }

    /// Maps `file` and checks its header: magic, version, initialized, kind, size. Unsealed, the
    /// header is read through the kernel (the file may have been shrunk since its size was read).
    fn check(file: MemFile, kind: Kind, sealed: bool) -> Result<Segment, ShmError> {
        let not_a_segment = |reason| ShmError::NotASegment { reason };
        let total = usize::try_from(file.len()?).map_err(|_| not_a_segment("too large"))?;
        if total < HEADER_LEN {
            return Err(not_a_segment("shorter than the header"));
        }
        let map = Mapping::map(file.as_fd(), total)?;
        /// A copy of a header, aligned as the header is in a mapping.
        #[repr(C, align(64))]
        struct HeaderCopy([u8; HEADER_LEN]);
        let mut copy = HeaderCopy([0; HEADER_LEN]);
        let header = if sealed {
            map.as_ptr().cast::<Header>()
        } else {
            map.copy_out(0, &mut copy.0).map_err(|fault| match fault {
                Fault::Gone => not_a_segment("shorter than the header"),
                Fault::Os(e) => ShmError::Os(e),
            })?;
            (&raw const copy).cast::<Header>()
        };
        // SAFETY: `header` is the mapping's start (the file is at least HEADER_LEN long, and the
        // mapping page-aligned) or the aligned copy of it, so the atomic field is in bounds and
        // aligned; only atomics are read before `initialized` is acquired.
        let initialized = unsafe { (*header).initialized.load(Ordering::Acquire) };
        // SAFETY: the rest of the header is written once, before `initialized` is released, which
        // the acquire above has seen (or the checks below refuse the segment). A copy was made
        // after the creator's rename put the segment where it could be opened.
        let (magic, version, len, found) = unsafe {
            (
                (&raw const (*header).magic).read(),
                (&raw const (*header).layout_version).read(),
                (&raw const (*header).len).read(),
                (&raw const (*header).kind).read(),
            )
        };
        if magic != MAGIC {
            return Err(not_a_segment("bad magic"));
        }
        if version != LAYOUT_VERSION {
            return Err(ShmError::VersionMismatch {
                found: version,
                expected: LAYOUT_VERSION,
            });
        }
        if initialized != INITIALIZED {
            return Err(ShmError::NotYetInitialized);
        }
        if found != kind as u32 {
            return Err(not_a_segment("it holds another kind of object"));
        }
        if len > (total - HEADER_LEN) as u64 {
            return Err(not_a_segment("declared size exceeds the file"));
        }
        Ok(Segment {
            file,
            map,
            len: len as usize,
            sealed,
        })
    }

    /// Creates the named segment `name` of `len` zeroed bytes, exclusively: an existing live one
    /// is [`ShmError::AlreadyExists`]; one whose owners all died is removed and replaced.
    pub(crate) fn create_named(
        name: &str,
        kind: Kind,
        len: usize,
        pages: Pages,
    ) -> Result<Segment, ShmError> {
        check_name(name)?;
        let dir = sys::shm_dir_opened()?;
        let creating = SEGMENTS_BEING_MADE.name(&unique().to_string());
        let fd = sys::create_exclusive(dir.as_fd(), &creating)?;
        let built = sweep::claim(&fd)
            .map_err(ShmError::from)
            .and_then(|()| Segment::build(MemFile::from_fd(fd), kind, len, pages, false, |_| {}));
        let segment = match built {
            Ok(segment) => segment,
            Err(e) => {
                let _ = sys::unlink(dir.as_fd(), &creating);
                return Err(e);
            }
        };
        let path = NAMED_SEGMENTS.name(name);
        let mut renamed = sys::rename_no_replace(dir.as_fd(), &creating, &path);
        // A dead owner's segment is in the way: remove it and try again. A sweeper may remove it
        // first (then our removal fails, and the rename succeeds); a live one stays in the way.
        for _ in 0..3 {
            if !matches!(&renamed, Err(e) if e.kind() == io::ErrorKind::AlreadyExists) {
                break;
            }
            NAMED_SEGMENTS.remove_if_abandoned(dir, &path);
            renamed = sys::rename_no_replace(dir.as_fd(), &creating, &path);
        }
        match renamed {
            Ok(()) => Ok(segment),
            Err(e) => {
                let _ = sys::unlink(dir.as_fd(), &creating);
                Err(match e.kind() {
                    io::ErrorKind::AlreadyExists => ShmError::AlreadyExists {
                        name: name.to_owned(),
                    },
                    _ => ShmError::Os(e),
                })
            }
        }
    }

    /// Attaches to the named segment `name`. Attaching does not make this process an owner.
    pub(crate) fn open_named(name: &str, kind: Kind) -> Result<Segment, ShmError> {
        check_name(name)?;
        let dir = sys::shm_dir_opened()?;
        let fd =
            sys::open_own(dir.as_fd(), &NAMED_SEGMENTS.name(name)).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => ShmError::NotFound {
                    name: name.to_owned(),
                },
                io::ErrorKind::PermissionDenied => ShmError::PermissionDenied {
                    name: name.to_owned(),
                    reason: e.to_string(),
                },
                _ => ShmError::Os(e),
            })?;
        Segment::check(MemFile::from_fd(fd), kind, false)
    }

    /// Removes the name `name`; processes that have the segment keep it.
    pub(crate) fn unlink_named(name: &str) -> Result<(), ShmError> {
        check_name(name)?;
        let dir = sys::shm_dir_opened()?;
        sys::unlink(dir.as_fd(), &NAMED_SEGMENTS.name(name)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ShmError::NotFound {
                name: name.to_owned(),
            },
            _ => ShmError::Os(e),
        })
    }

    /// Removes every named segment (and every one left half-created) whose owners all died (see
    /// `sweep`). Returns the names removed. Segments with a live owner, and files of other users,
    /// stay.
    pub(crate) fn clean_dead() -> Result<Vec<String>, ShmError> {
        let mut removed = SEGMENTS_BEING_MADE.sweep()?;
        for file in NAMED_SEGMENTS.sweep()? {
            let prefix = NAMED_SEGMENTS.name("");
            removed.push(file.strip_prefix(&prefix).unwrap_or(&file).to_owned());
        }
        Ok(removed)
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

    fn check_range(&self, offset: usize, len: usize) -> Result<(), ShmError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(ShmError::OutOfBounds {
                offset,
                len,
                size: self.len,
            }),
        }
    }

    /// Copies `data` into the segment at `offset`. A named segment shrunk by another process is
    /// [`ShmError::Shrunk`] (the bytes before the missing page may have been written).
    pub(crate) fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), ShmError> {
        self.check_range(offset, data.len())?;
        if !self.sealed {
            return self.checked(
                offset,
                data.len(),
                self.map.copy_in(HEADER_LEN + offset, data),
            );
        }
        // SAFETY: bounds checked above, and the file's size is sealed, so every byte is backed;
        // the segment never aliases `data` (a Rust slice cannot point into it, only raw pointers
        // can). Bytes another process writes concurrently make the result unspecified but not
        // undefined: the copy goes through raw pointers to shared memory.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.as_ptr().add(offset), data.len())
        };
        Ok(())
    }

    /// Copies bytes of the segment at `offset` into `out`. A named segment shrunk by another
    /// process is [`ShmError::Shrunk`].
    pub(crate) fn read_at(&self, offset: usize, out: &mut [u8]) -> Result<(), ShmError> {
        self.check_range(offset, out.len())?;
        if !self.sealed {
            let len = out.len();
            return self.checked(offset, len, self.map.copy_out(HEADER_LEN + offset, out));
        }
        // SAFETY: as in `write_at`.
        unsafe {
            std::ptr::copy_nonoverlapping(self.as_ptr().add(offset), out.as_mut_ptr(), out.len())
        };
        Ok(())
    }

    /// The outcome of a checked copy of `len` bytes at `offset`.
    fn checked(&self, offset: usize, len: usize, copy: Result<(), Fault>) -> Result<(), ShmError> {
        copy.map_err(|fault| match fault {
            Fault::Gone => {
                let now = self
                    .file
                    .len()
                    .map_or(0, |total| total.saturating_sub(HEADER_LEN as u64));
                if now >= self.len as u64 {
                    // The file is whole: the page was never taken, and none was left to take
                    // (a lazily reserved segment on a full filesystem).
                    ShmError::NoSpaceToWrite { offset, len }
                } else {
                    ShmError::Shrunk {
                        offset,
                        len,
                        size: self.len,
                        now,
                    }
                }
            }
            Fault::Os(e) => ShmError::Os(e),
        })
    }
}

impl AsFd for Segment {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Names are `[A-Za-z0-9._-]{1,200}`: no path separator, nothing the shell or /dev/shm would mangle.
fn check_name(name: &str) -> Result<(), ShmError> {
    let valid = (1..=200).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && name != "."
        && name != "..";
    if valid {
        Ok(())
    } else {
        Err(ShmError::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// A number no other call in this process returns.
fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
