//! Named memory files in /dev/shm (what `shm_open` uses on Linux), and the advisory locks that tell
//! whether their owners still live.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags, RenameFlags};

/// Where named shared memory lives.
const SHM_DIR: &str = "/dev/shm";

/// The /dev/shm directory, for the `*at` calls below.
pub(crate) fn shm_dir() -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        SHM_DIR,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Creates `name` in `dir`, exclusively, mode 0600, read-write. `AlreadyExists` if it exists.
pub(crate) fn create_exclusive(dir: BorrowedFd<'_>, name: &str) -> io::Result<OwnedFd> {
    let flags = OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    Ok(rustix::fs::openat(
        dir,
        name,
        flags,
        Mode::from_raw_mode(0o600),
    )?)
}

/// Opens `name` in `dir` read-write, refusing a link, a file of another user, or a file others may
/// open (mode beyond 0600): a name squatted by someone else is never used.
pub(crate) fn open_own(dir: BorrowedFd<'_>, name: &str) -> io::Result<OwnedFd> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )?;
    let stat = rustix::fs::fstat(&fd)?;
    if stat.st_uid != rustix::process::geteuid().as_raw() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "owned by another user",
        ));
    }
    if stat.st_mode & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "open to other users (mode beyond 0600)",
        ));
    }
    Ok(fd)
}

/// Renames `from` to `to` in `dir`, atomically, failing with `AlreadyExists` rather than replacing.
pub(crate) fn rename_no_replace(dir: BorrowedFd<'_>, from: &str, to: &str) -> io::Result<()> {
    Ok(rustix::fs::renameat_with(
        dir,
        from,
        dir,
        to,
        RenameFlags::NOREPLACE,
    )?)
}

/// Removes `name` from `dir`.
pub(crate) fn unlink(dir: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?)
}

/// The names in /dev/shm that start with `prefix`.
pub(crate) fn list(prefix: &str) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(SHM_DIR)? {
        if let Some(name) = entry?
            .file_name()
            .to_str()
            .filter(|n| n.starts_with(prefix))
        {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Marks the calling process as an owner of `file` for as long as this descriptor (or a duplicate,
/// in this process or another it was sent to) stays open: a shared `flock`, released by the kernel
/// when the last holder dies, however it dies.
pub(crate) fn hold_owner_lock(file: impl AsFd) -> io::Result<()> {
    Ok(rustix::fs::flock(
        file,
        FlockOperation::NonBlockingLockShared,
    )?)
}

/// Whether any process still holds an owner lock on `file`. Takes (and keeps, until the descriptor
/// closes) an exclusive lock when none does, so that no owner appears meanwhile.
pub(crate) fn has_live_owner(file: impl AsFd) -> io::Result<bool> {
    match rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(false),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(true),
        Err(e) => Err(e.into()),
    }
}
