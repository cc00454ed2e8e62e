//! Shared mappings of a file into this process.

use std::io;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use rustix::mm::{MapFlags, ProtFlags};

/// A `MAP_SHARED`, read-write mapping of a whole file, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; what is stored in it is synchronized by
// the types built on top (atomics, locks), exactly as for memory shared with other processes.
unsafe impl Send for Mapping {}
// SAFETY: as above; `Mapping` itself only hands out the raw pointer.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` from offset 0, shared and read-write.
    pub(crate) fn map(fd: BorrowedFd<'_>, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map zero bytes",
            ));
        }
        // SAFETY: a fresh mapping chosen by the kernel (null hint) aliases no Rust object; the
        // caller keeps the file at least `len` bytes long for the mapping's life (sealed memfds).
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd,
                0,
            )?
        };
        let ptr = NonNull::new(ptr.cast::<u8>()).expect("mmap never returns null on success");
        Ok(Mapping { ptr, len })
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Copies `out.len()` bytes of the mapping at `offset` into `out`, through the kernel
    /// (`process_vm_readv` on this process): a page the file no longer backs, because another
    /// process shrank it, is [`Fault::Gone`] instead of a SIGBUS. The range must be inside the
    /// mapping.
    pub(crate) fn copy_out(&self, offset: usize, out: &mut [u8]) -> Result<(), Fault> {
        self.check(offset, out.len());
        let local = libc::iovec {
            iov_base: out.as_mut_ptr().cast(),
            iov_len: out.len(),
        };
        let remote = libc::iovec {
            // SAFETY: in bounds (checked above).
            iov_base: unsafe { self.as_ptr().add(offset) }.cast(),
            iov_len: out.len(),
        };
        // SAFETY: both vectors describe memory of this process that stays mapped for the call:
        // `out`, borrowed mutably (the kernel writes it, as a `read` would), and a range of this
        // mapping, which `&self` keeps. The kernel reports a fault as EFAULT, never a signal.
        let copied = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
        settle(copied, out.len())
    }

    /// Copies `data` into the mapping at `offset`, through the kernel (`process_vm_writev`): as
    /// [`copy_out`](Self::copy_out), a page no longer backed is [`Fault::Gone`]; the bytes before
    /// it may have been written.
    pub(crate) fn copy_in(&self, offset: usize, data: &[u8]) -> Result<(), Fault> {
        self.check(offset, data.len());
        let local = libc::iovec {
            iov_base: data.as_ptr().cast_mut().cast(),
            iov_len: data.len(),
        };
        let remote = libc::iovec {
            // SAFETY: in bounds (checked above).
            iov_base: unsafe { self.as_ptr().add(offset) }.cast(),
            iov_len: data.len(),
        };
        // SAFETY: as in `copy_out`; the kernel only reads `data` (the iovec's pointer is mutable
        // by type alone) and writes the mapping's range, which `&self` keeps mapped.
        let copied = unsafe { libc::process_vm_writev(libc::getpid(), &local, 1, &remote, 1, 0) };
        settle(copied, data.len())
    }

    fn check(&self, offset: usize, len: usize) {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.len),
            "a copy of {len} bytes at {offset} out of a mapping of {}",
            self.len
        );
    }
}

/// Why a checked copy did not happen.
#[derive(Debug)]
pub(crate) enum Fault {
    /// Part of the range is no longer backed by the file.
    Gone,
    /// The kernel refused the copy for another reason (the system calls may be filtered).
    Os(io::Error),
}

/// A checked copy's result: all of `len` bytes, or why not.
fn settle(copied: isize, len: usize) -> Result<(), Fault> {
    match usize::try_from(copied) {
        Ok(n) if n == len => Ok(()),
        Ok(_) => Err(Fault::Gone), // stopped at a page that is gone
        Err(_) => match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::EFAULT) => Err(Fault::Gone),
            e => Err(Fault::Os(e)),
        },
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr..ptr+len` is exactly the region `map` created, and it is unmapped once,
        // here; no reference into it outlives the `Mapping` (users hold it through an `Arc`).
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
