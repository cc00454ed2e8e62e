//! What processes own by name, and sweeping what dead owners left: named shared memory segments
//! (files of /dev/shm) and the private directories of managers' sockets (in the temporary
//! directory), by one rule.
//!
//! Each is an entry of a directory whose name starts with its kind's prefix. Its owners hold a
//! shared lock on its owner file (the entry itself, for a file; `owner` inside, for a directory)
//! for as long as they hold it; the kernel drops the lock of a process that dies, however it
//! dies, and no pid is involved, so a recycled pid cannot make a dead owner look alive. An entry
//! is swept when both hold:
//! - nobody may still be making it: its name carries no maker, or names one that no longer runs
//!   (an entry being made has no lock yet, for a moment; a recycled pid only delays the sweep);
//! - its owner file is missing (the maker died before it finished) or no owner holds its lock.
//!
//! Entries of other users, links, files open to other users, and entries with a live owner are
//! never touched. [`Manager::start`](crate::Manager::start) and
//! [`SharedMemory::create_named`](crate::SharedMemory::create_named) sweep their own kind;
//! `multiproc clean` sweeps both.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::sys;

/// Whether the entries are files (their own owner file) or directories (an `owner` file inside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    File,
    Directory,
}

/// A kind of owned entry: where they are, how their names begin, and whether a name says who
/// makes it (`{prefix}{pid}.{rest}`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owned {
    dir: fn() -> PathBuf,
    prefix: &'static str,
    shape: Shape,
    names_maker: bool,
}

/// Named shared memory segments: `multiproc.NAME` in /dev/shm.
pub(crate) const NAMED_SEGMENTS: Owned = Owned {
    dir: sys::shm_dir,
    prefix: "multiproc.",
    shape: Shape::File,
    names_maker: false,
};

/// Segments being made, before they are renamed to their name: `multiproc-creating.PID.N`.
pub(crate) const SEGMENTS_BEING_MADE: Owned = Owned {
    dir: sys::shm_dir,
    prefix: "multiproc-creating.",
    shape: Shape::File,
    names_maker: true,
};

/// Managers' private socket directories: `multiproc-manager.PID.NONCE` in the temporary directory.
pub(crate) const MANAGER_DIRS: Owned = Owned {
    dir: std::env::temp_dir,
    prefix: "multiproc-manager.",
    shape: Shape::Directory,
    names_maker: true,
};

/// The name of a directory's owner file.
const OWNER: &str = "owner";

impl Owned {
    /// Where the entries are.
    pub(crate) fn dir(&self) -> PathBuf {
        (self.dir)()
    }

    /// The directory, opened for the `*at` calls.
    pub(crate) fn open_dir(&self) -> io::Result<OwnedFd> {
        sys::open_dir(&self.dir())
    }

    /// The entry's name for `rest` (after the prefix, and the maker if names carry one: this
    /// process).
    pub(crate) fn name(&self, rest: &str) -> String {
        if self.names_maker {
            format!("{}{}.{rest}", self.prefix, std::process::id())
        } else {
            format!("{}{rest}", self.prefix)
        }
    }

    /// Removes every entry whose owners all died (and nobody makes); returns their names.
    pub(crate) fn sweep(&self) -> io::Result<Vec<String>> {
        let dir = self.open_dir()?;
        let mut removed = Vec::new();
        for name in sys::list(&self.dir(), self.prefix)? {
            if self.remove_if_abandoned(&dir, &name) {
                removed.push(name);
            }
        }
        Ok(removed)
    }

    /// Removes `name` from `dir` if it is ours and abandoned (see the module's rule); whether it
    /// did.
    pub(crate) fn remove_if_abandoned(&self, dir: &OwnedFd, name: &str) -> bool {
        if self.maker_runs(name) {
            return false;
        }
        match self.shape {
            Shape::File => {
                let Ok(file) = sys::open_own(dir.as_fd(), name) else {
                    return false;
                };
                // The exclusive lock taken by the check is held while unlinking, so that no owner
                // can appear in between.
                matches!(sys::has_live_owner(&file), Ok(false))
                    && sys::unlink(dir.as_fd(), name).is_ok()
            }
            Shape::Directory => {
                if !sys::is_own_dir(dir.as_fd(), name) {
                    return false;
                }
                let abandoned = match sys::open_own(dir.as_fd(), &format!("{name}/{OWNER}")) {
                    Ok(owner) => matches!(sys::has_live_owner(&owner), Ok(false)),
                    Err(e) => e.kind() == io::ErrorKind::NotFound,
                };
                abandoned && std::fs::remove_dir_all(self.dir().join(name)).is_ok()
            }
        }
    }

    /// Whether `name` says who makes it, and that process runs.
    fn maker_runs(&self, name: &str) -> bool {
        self.names_maker
            && name
                .strip_prefix(self.prefix)
                .and_then(|rest| rest.split('.').next())
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(sys::process_runs)
    }
}

/// Makes `file` one this process owns: a shared lock on it, held while the descriptor (or a
/// copy, in any process) is open.
pub(crate) fn claim(file: impl AsFd) -> io::Result<()> {
    sys::hold_owner_lock(file)
}

/// A private directory (mode 0700) of a kind with [`Shape::Directory`], owned by this process for
/// as long as the value lives; removed when dropped.
#[derive(Debug)]
pub(crate) struct OwnedDir {
    path: PathBuf,
    /// Holds the owner lock.
    _owner: File,
}

impl OwnedDir {
    /// Makes a fresh directory of `kind`, and becomes its owner.
    pub(crate) fn create(kind: &Owned) -> io::Result<OwnedDir> {
        debug_assert_eq!(kind.shape, Shape::Directory);
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| io::Error::other(e.to_string()))?;
        let name = kind.name(&format!("{:016x}", u64::from_le_bytes(nonce)));
        let dir = kind.open_dir()?;
        sys::create_private_dir(dir.as_fd(), &name)?;
        let path = kind.dir().join(&name);
        let owned = || -> io::Result<File> {
            // Locked before it gets its name: a sweeper never sees an owner file without a lock.
            let making = format!("{name}/{OWNER}.new");
            let owner = File::from(sys::create_exclusive(dir.as_fd(), &making)?);
            claim(&owner)?;
            sys::rename_no_replace(dir.as_fd(), &making, &format!("{name}/{OWNER}"))?;
            Ok(owner)
        };
        match owned() {
            Ok(owner) => Ok(OwnedDir {
                path,
                _owner: owner,
            }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&path);
                Err(e)
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OwnedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
