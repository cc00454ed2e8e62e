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
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
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
            if self.remove_if_abandoned(dir.as_fd(), &name) {
                removed.push(name);
            }
        }
        Ok(removed)
    }

    /// Removes `name` from `dir` if it is ours and abandoned (see the module's rule); whether it
    /// did.
    pub(crate) fn remove_if_abandoned(&self, dir: BorrowedFd<'_>, name: &str) -> bool {
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

/// What a process owns by name, as `multiproc ls` lists it ([`resources`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resource {
    /// A named shared memory block, or a manager's socket directory.
    pub kind: ResourceKind,
    /// Its name: the block's (as `SharedMemory::create_named` took it), or the directory's.
    pub name: String,
    /// Where it is: the file in `/dev/shm`, or the socket in the directory.
    pub path: PathBuf,
    /// Its size in bytes (a block's file, its header included), for a block.
    pub size: Option<u64>,
    /// When it was last changed.
    pub modified: std::time::SystemTime,
    /// The processes that hold it (their owner lock on it): none, and it is abandoned, for
    /// `multiproc clean` to remove.
    pub owners: Vec<u32>,
}

impl Resource {
    /// Whether a live process holds it.
    pub fn is_held(&self) -> bool {
        !self.owners.is_empty()
    }
}

/// What a [`Resource`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResourceKind {
    /// A named shared memory block ([`SharedMemory::create_named`](crate::SharedMemory::create_named)).
    SharedMemory,
    /// A manager's private socket directory ([`Manager::start`](crate::Manager::start)).
    ManagerSocket,
}

/// This user's named shared memory blocks and manager socket directories, each with who holds
/// it, without touching any (listing takes no lock: a process attaching meanwhile is not
/// disturbed). Python has no such listing; `multiproc ls` prints it.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// let block = multiproc::SharedMemory::create_named("listed-in-the-docs", 64)?;
/// let listed = multiproc::resources()?;
/// let ours = listed.iter().find(|r| r.name == "listed-in-the-docs").expect("listed");
/// assert!(ours.owners.contains(&std::process::id()));
/// block.unlink()?;
/// # Ok(())
/// # }
/// ```
pub fn resources() -> io::Result<Vec<Resource>> {
    let holders = sys::flock_holders()?;
    let mut found = Vec::new();
    let mut add = |kind, name: String, path: PathBuf, owner_file: PathBuf| {
        // Gone meanwhile, or not ours to read: not listed.
        if let Ok((identity, size, modified)) = sys::file_identity(&owner_file) {
            found.push(Resource {
                kind,
                name,
                path,
                size: (kind == ResourceKind::SharedMemory).then_some(size),
                modified,
                owners: holders.get(&identity).cloned().unwrap_or_default(),
            });
        }
    };
    let segments = NAMED_SEGMENTS.dir();
    for file in sys::list(&segments, NAMED_SEGMENTS.prefix)? {
        let path = segments.join(&file);
        let name = file[NAMED_SEGMENTS.prefix.len()..].to_owned();
        add(ResourceKind::SharedMemory, name, path.clone(), path);
    }
    let managers = MANAGER_DIRS.dir();
    for dir in sys::list(&managers, MANAGER_DIRS.prefix)? {
        let path = managers.join(&dir);
        add(
            ResourceKind::ManagerSocket,
            dir,
            path.join("manager.sock"),
            path.join(OWNER),
        );
    }
    found.sort_by(|a, b| (a.kind as u8, &a.name).cmp(&(b.kind as u8, &b.name)));
    Ok(found)
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
