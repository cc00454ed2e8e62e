//! Named files and directories that processes own: made private (mode 0600 or 0700), opened only
//! if they are this user's and private, and the advisory locks that tell whether their owners
//! still live. Named shared memory is such a file, in /dev/shm (what `shm_open` uses on Linux).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags, RenameFlags};

/// Where named shared memory lives.
pub(crate) fn shm_dir() -> PathBuf {
    PathBuf::from("/dev/shm")
}

/// [`shm_dir`], opened once for the process (for the `*at` calls): it does not move, and each
/// named segment's creation, attach and unlink saves an open and a close.
pub(crate) fn shm_dir_opened() -> io::Result<BorrowedFd<'static>> {
    static OPENED: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();
    if let Some(dir) = OPENED.get() {
        return Ok(dir.as_fd());
    }
    let dir = open_dir(&shm_dir())?;
    Ok(OPENED.get_or_init(|| dir).as_fd())
}

/// The directory at `path`, for the `*at` calls below.
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
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

/// Creates the directory `name` in `dir`, mode 0700 (only this user may enter it).
pub(crate) fn create_private_dir(dir: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    Ok(rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))?)
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

/// Whether `name` in `dir` is a directory (not a link to one) of this user.
pub(crate) fn is_own_dir(dir: BorrowedFd<'_>, name: &str) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|stat| {
        FileType::from_raw_mode(stat.st_mode) == FileType::Directory
            && stat.st_uid == rustix::process::geteuid().as_raw()
    })
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

/// Removes the file `name` from `dir`.
pub(crate) fn unlink(dir: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?)
}

/// The names in the directory at `path` that start with `prefix`.
pub(crate) fn list(path: &Path, prefix: &str) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path)? {
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

/// Whether a process with id `pid` runs: it exists and is not a zombie (a zombie holds nothing and
/// makes nothing). A recycled pid counts as running: callers only use this to leave alone what a
/// live process may still be making.
pub(crate) fn process_runs(pid: u32) -> bool {
    let Some(raw) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(raw) {
        Ok(()) | Err(rustix::io::Errno::PERM) => {}
        Err(_) => return false,
    }
    // The state is the field after the command name, which ends with the last ')'.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X'))
}

/// The processes holding a `flock` on each file, by device and inode, as `/proc/locks` tells
/// (without taking any lock: nobody who is attaching meanwhile is disturbed). The device is
/// the kernel's `major:minor` in hex, as there.
pub(crate) fn flock_holders() -> io::Result<std::collections::HashMap<(String, u64), Vec<u32>>> {
    let mut holders: std::collections::HashMap<(String, u64), Vec<u32>> = Default::default();
    for line in std::fs::read_to_string("/proc/locks")?.lines() {
        // "1: FLOCK  ADVISORY  READ  1234 00:1a:5678 0 EOF" (a blocked request has "->" first)
        let fields: Vec<&str> = line.split_whitespace().filter(|f| *f != "->").collect();
        if fields.get(1) != Some(&"FLOCK") {
            continue;
        }
        let (Some(pid), Some(file)) = (fields.get(4), fields.get(5)) else {
            continue;
        };
        let mut parts = file.rsplitn(2, ':');
        let (Some(inode), Some(device)) = (parts.next(), parts.next()) else {
            continue;
        };
        if let (Ok(pid), Ok(inode)) = (pid.parse::<u32>(), inode.parse::<u64>()) {
            let owners = holders.entry((device.to_owned(), inode)).or_default();
            if !owners.contains(&pid) {
                owners.push(pid);
            }
        }
    }
    Ok(holders)
}

/// A file's device (as `/proc/locks` writes it: `major:minor` in hex) and inode, its size and
/// its last change, not following a link.
pub(crate) fn file_identity(
    path: &Path,
) -> io::Result<((String, u64), u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    let dev = meta.dev();
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    let device = format!("{major:02x}:{minor:02x}");
    Ok(((device, meta.ino()), meta.size(), meta.modified()?))
}
