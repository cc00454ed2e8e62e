//! [`SharedMemory`]: a block of bytes that every process holding it sees.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::shm::{Backing, Kind, Pages, Segment, ShmError};
use crate::transfer;

/// A block of shared bytes. Clones are handles to the same memory; pass one to a [`Process`] (it is
/// an ordinary argument) and the child reads and writes the same bytes.
///
/// Two kinds:
/// - anonymous ([`create`](Self::create)): freed when the last handle in the last process is gone,
///   even if every process is killed; it has no name to leak.
/// - named ([`create_named`](Self::create_named), [`open`](Self::open)): unrelated processes meet
///   at it by name. Creation is exclusive (mode 0600; an existing name is refused, never attached
///   silently). Like Python's, it stays until [`unlink`](Self::unlink)ed; a process that only
///   attaches never removes it. A segment whose creating processes all died (however: SIGKILL
///   included) is removed by [`clean_dead`](Self::clean_dead) (`multiproc clean`) and when its
///   name is created again; one with a live creator is never touched. Unlike anonymous blocks,
///   a file of /dev/shm cannot be sealed: a process of the same user may shrink it. Python's
///   readers then crash with SIGBUS; here [`read_at`](Self::read_at) and
///   [`write_at`](Self::write_at) return [`ShmError::Shrunk`] (their copies go through the kernel,
///   a system call each, which reports the missing pages), and attaching to a shrunk file is
///   [`ShmError::NotASegment`]. Access through [`as_ptr`](Self::as_ptr) still faults.
///
/// Access is by copies ([`write_at`](Self::write_at), [`read_at`](Self::read_at)), which are not
/// atomic: order them with a join, or (with the synchronization primitives) a lock or an event.
///
/// [`Process`]: crate::Process
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{Process, SharedMemory};
///
/// let shm = SharedMemory::create(16)?;
/// let child = Process::spawn(shm.clone(), |shm: SharedMemory| {
///     shm.write_at(0, b"hello from child").unwrap();
/// })?;
/// child.join()?;
/// let mut out = [0u8; 16];
/// shm.read_at(0, &mut out)?;
/// assert_eq!(&out, b"hello from child");
/// # Ok(())
/// # }
/// ```
#[doc(alias = "shared_memory")]
#[derive(Clone)]
pub struct SharedMemory {
    segment: Arc<Segment>,
    name: Option<Arc<str>>,
}

impl SharedMemory {
    /// Creates an anonymous block of `size` zeroed bytes. The pages are reserved now: a full memory
    /// filesystem is [`ShmError::OutOfSpace`] here, never a crash on a later write.
    pub fn create(size: usize) -> Result<SharedMemory, ShmError> {
        let segment = Segment::create_anonymous(Kind::Bytes, size)?;
        Ok(SharedMemory {
            segment: Arc::new(segment),
            name: None,
        })
    }

    /// Creates the named block `name` of `size` zeroed bytes, exclusively. The calling process is
    /// its owner while it holds the handle (and so are processes it passes the handle to).
    ///
    /// Errors: [`ShmError::AlreadyExists`] when a live segment has the name,
    /// [`ShmError::InvalidName`], [`ShmError::OutOfSpace`] when /dev/shm is full.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// use multiproc::{Process, SharedMemory};
    ///
    /// let shm = SharedMemory::create_named("doc-example", 64)?;
    /// let child = Process::spawn((), |()| {
    ///     let same = SharedMemory::open("doc-example").unwrap(); // attach by name
    ///     same.write_at(0, b"hi").unwrap();
    /// })?;
    /// child.join()?;
    /// let mut out = [0; 2];
    /// shm.read_at(0, &mut out)?;
    /// assert_eq!(&out, b"hi");
    /// shm.unlink()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn create_named(name: &str, size: usize) -> Result<SharedMemory, ShmError> {
        let segment = Segment::create_named(name, Kind::Bytes, size, Pages::Reserved)?;
        Ok(SharedMemory {
            segment: Arc::new(segment),
            name: Some(name.into()),
        })
    }

    /// [`create_named`](Self::create_named), with pages taken as they are first written instead
    /// of at creation, as Python's `SharedMemory(create=True)` does: creating, attaching and
    /// closing are quicker (about 20 times, for 1 MiB, on this project's machines), and a segment
    /// larger than what is ever written costs only what is written. The price: a full memory
    /// filesystem shows at a write, not here. Through [`write_at`](Self::write_at) and
    /// [`read_at`](Self::read_at) it is [`ShmError::NoSpaceToWrite`], never a crash; through
    /// [`as_ptr`](Self::as_ptr) it is a SIGBUS, as in Python.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// use multiproc::SharedMemory;
    ///
    /// let big = SharedMemory::create_named_lazy("doc-lazy", 1 << 30)?; // 1 GiB, nothing taken
    /// big.write_at(0, b"only this page is taken")?;
    /// assert_eq!(SharedMemory::open("doc-lazy")?.len(), 1 << 30);
    /// big.unlink()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn create_named_lazy(name: &str, size: usize) -> Result<SharedMemory, ShmError> {
        let segment = Segment::create_named(name, Kind::Bytes, size, Pages::Lazy)?;
        Ok(SharedMemory {
            segment: Arc::new(segment),
            name: Some(name.into()),
        })
    }

    /// Attaches to the named block `name`: [`ShmError::NotFound`] if there is none,
    /// [`ShmError::PermissionDenied`] if the file is another user's or open to others.
    #[doc(alias = "attach")]
    pub fn open(name: &str) -> Result<SharedMemory, ShmError> {
        let segment = Segment::open_named(name, Kind::Bytes)?;
        Ok(SharedMemory {
            segment: Arc::new(segment),
            name: Some(name.into()),
        })
    }

    /// The name of a named block.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Removes the name, so that no one can attach any more; those who have the block keep it.
    /// Nothing to do for an anonymous block. [`ShmError::NotFound`] if the name is already gone.
    pub fn unlink(&self) -> Result<(), ShmError> {
        match &self.name {
            Some(name) => Segment::unlink_named(name),
            None => Ok(()),
        }
    }

    /// Removes every named block whose owners all died; returns their names. Live ones stay.
    /// This is `multiproc clean`.
    pub fn clean_dead() -> Result<Vec<String>, ShmError> {
        Segment::clean_dead()
    }

    /// The size in bytes, as asked at creation (never rounded up).
    #[doc(alias = "size")]
    pub fn len(&self) -> usize {
        self.segment.len()
    }

    /// Whether the block is zero bytes long.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first byte, for code that manages the layout itself. Valid while this handle lives; other
    /// processes may write at any time, so any access through it must be synchronized. For a named
    /// block, a page past the end of a file another process shrank raises SIGBUS when touched
    /// through this pointer (the copies of `read_at` and `write_at` report it instead).
    #[doc(alias = "buf")]
    pub fn as_ptr(&self) -> *mut u8 {
        self.segment.as_ptr()
    }

    /// Copies `data` into the block at `offset`: [`ShmError::OutOfBounds`] past the end, and for
    /// a named block whose file another process shrank, [`ShmError::Shrunk`].
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), ShmError> {
        self.segment.write_at(offset, data)
    }

    /// Copies `out.len()` bytes of the block at `offset` into `out`: [`ShmError::OutOfBounds`]
    /// past the end, and for a named block whose file another process shrank,
    /// [`ShmError::Shrunk`].
    pub fn read_at(&self, offset: usize, out: &mut [u8]) -> Result<(), ShmError> {
        self.segment.read_at(offset, out)
    }
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// The form a handle travels in: the descriptor, and the name if it has one.
#[derive(Serialize)]
struct WireOut<'a> {
    #[serde(serialize_with = "serialize_fd")]
    fd: BorrowedFd<'a>,
    name: Option<&'a str>,
}

#[derive(Deserialize)]
struct WireIn {
    #[serde(deserialize_with = "transfer::deserialize_fd")]
    fd: OwnedFd,
    name: Option<String>,
}

fn serialize_fd<S: Serializer>(fd: &BorrowedFd<'_>, serializer: S) -> Result<S::Ok, S::Error> {
    transfer::serialize_fd(*fd, serializer)
}

impl Serialize for SharedMemory {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireOut {
            fd: self.segment.as_fd(),
            name: self.name(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SharedMemory {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let WireIn { fd, name } = WireIn::deserialize(deserializer)?;
        let backing = if name.is_some() {
            Backing::Named
        } else {
            Backing::Anonymous
        };
        let segment =
            Segment::open_fd(fd, Kind::Bytes, backing).map_err(serde::de::Error::custom)?;
        Ok(SharedMemory {
            segment: Arc::new(segment),
            name: name.map(Into::into),
        })
    }
}
