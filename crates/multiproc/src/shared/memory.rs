//! [`SharedMemory`]: a block of bytes that every process holding it sees.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::shm::{Kind, Segment, ShmError};
use crate::transfer;

/// A block of shared bytes. Clones are handles to the same memory; pass one to a [`Process`] (it is
/// an ordinary argument) and the child reads and writes the same bytes. The memory is freed when the
/// last handle in the last process is gone, even if every process is killed: it has no name to leak.
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
}

impl SharedMemory {
    /// Creates an anonymous block of `size` zeroed bytes. The pages are reserved now: a full memory
    /// filesystem is [`ShmError::OutOfSpace`] here, never a crash on a later write.
    pub fn create(size: usize) -> Result<SharedMemory, ShmError> {
        Ok(SharedMemory {
            segment: Arc::new(Segment::create_anonymous(Kind::Bytes, size)?),
        })
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
    /// processes may write at any time, so any access through it must be synchronized.
    #[doc(alias = "buf")]
    pub fn as_ptr(&self) -> *mut u8 {
        self.segment.as_ptr()
    }

    /// Copies `data` into the block at `offset`.
    pub fn write_at(&self, offset: usize, data: &[u8]) -> Result<(), ShmError> {
        self.segment.write_at(offset, data)
    }

    /// Copies `out.len()` bytes of the block at `offset` into `out`.
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

impl Serialize for SharedMemory {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use std::os::fd::AsFd;
        transfer::serialize_fd(self.segment.as_fd(), serializer)
    }
}

impl<'de> Deserialize<'de> for SharedMemory {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fd = transfer::deserialize_fd(deserializer)?;
        let segment = Segment::open_fd(fd, Kind::Bytes).map_err(serde::de::Error::custom)?;
        Ok(SharedMemory {
            segment: Arc::new(segment),
        })
    }
}
