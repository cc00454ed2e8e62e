//! Memory files: anonymous (memfd) or named (a file of /dev/shm). Shared memory segments and the
//! spill area of large messages.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{FallocateFlags, MemfdFlags, SealFlags};

/// A memory file, close-on-exec: anonymous and sealable, or a named file of /dev/shm.
#[derive(Debug)]
pub(crate) struct MemFile(OwnedFd);

impl MemFile {
    /// Creates an empty memory file; `name` shows in /proc/PID/fd for debugging.
    pub(crate) fn create(name: &str) -> io::Result<MemFile> {
        let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
        Ok(MemFile(fd))
    }

    /// Adopts a descriptor received from elsewhere; it is checked before its content is trusted.
    pub(crate) fn from_fd(fd: OwnedFd) -> MemFile {
        MemFile(fd)
    }

    /// Sets the size to `len` and reserves its pages now, so that a full memory filesystem is an
    /// error here (`StorageFull`) and never a SIGBUS on a later write. A size beyond the memory
    /// available is refused first: a memfd's filesystem has no size limit, and reserving more than
    /// there is would summon the out-of-memory killer instead of an error.
    pub(crate) fn reserve(&self, len: u64) -> io::Result<()> {
        self.set_len(len)?;
        if len > 0 {
            match rustix::fs::fallocate(&self.0, FallocateFlags::empty(), 0, len) {
                Ok(()) => {}
                Err(rustix::io::Errno::NOSPC) => {
                    return Err(io::Error::new(
                        io::ErrorKind::StorageFull,
                        "no space left for shared memory",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Sets the size to `len` and reserves nothing: pages are taken as they are first written,
    /// and a write when the filesystem is full faults (a SIGBUS through the mapping; an error
    /// through [`Mapping::copy_in`](super::Mapping::copy_in)). A size beyond the memory available
    /// is refused, as by [`reserve`](Self::reserve): it could never be filled.
    pub(crate) fn set_len(&self, len: u64) -> io::Result<()> {
        // Small sizes skip the check (two file reads); the risk is one huge request.
        const CHECK_ABOVE: u64 = 64 << 20;
        if len > CHECK_ABOVE && super::available_memory().is_some_and(|available| len > available) {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "more shared memory than the memory available",
            ));
        }
        rustix::fs::ftruncate(&self.0, len)?;
        Ok(())
    }

    /// Freezes the size (no shrink, no grow, no further seals): every mapping of it stays valid.
    pub(crate) fn seal_size(&self) -> io::Result<()> {
        rustix::fs::fcntl_add_seals(
            &self.0,
            SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL,
        )?;
        Ok(())
    }

    /// Whether the size is frozen, so that a mapping of it can never fault past the end.
    pub(crate) fn size_is_sealed(&self) -> io::Result<bool> {
        let seals = rustix::fs::fcntl_get_seals(&self.0)?;
        Ok(seals.contains(SealFlags::SHRINK | SealFlags::GROW))
    }

    /// The current size in bytes.
    pub(crate) fn len(&self) -> io::Result<u64> {
        Ok(rustix::fs::fstat(&self.0)?.st_size as u64)
    }

    /// Writes all of `data` at `offset`.
    pub(crate) fn write_all_at(&self, mut data: &[u8], mut offset: u64) -> io::Result<()> {
        while !data.is_empty() {
            match rustix::io::pwrite(&self.0, data, offset) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    data = &data[n..];
                    offset += n as u64;
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Reads exactly `len` bytes from the start.
    pub(crate) fn read_exact(&self, len: usize) -> io::Result<Vec<u8>> {
        let mut out = vec![0u8; len];
        let mut done = 0;
        while done < len {
            match rustix::io::pread(&self.0, &mut out[done..], done as u64) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => done += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    #[cfg(test)]
    pub(crate) fn into_fd(self) -> OwnedFd {
        self.0
    }
}

impl AsFd for MemFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
