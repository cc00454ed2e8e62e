//! The private directories of managers' sockets, and sweeping those left by dead managers.
//!
//! [`Manager::start`](super::Manager::start) makes a fresh `0700` directory for its socket and
//! holds a shared `flock` on the `owner` file inside for as long as it lives. If the starting
//! process is killed (SIGKILL included), the kernel drops the lock, the server follows its parent,
//! and the directory is left behind; the next start, or `multiproc clean`, removes it. A directory
//! whose owner lives is never touched, whatever its age, and pid reuse cannot fool the check.

use std::fs::File;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ManagerError;
use crate::sys;

/// Where the directories are made, and how their names begin.
const PREFIX: &str = "multiproc-manager-";

/// A directory without an owner file yet is being made, unless it is older than this.
const MAKING: Duration = Duration::from_secs(60);

/// A manager's private directory; removed when dropped.
#[derive(Debug)]
pub(crate) struct PrivateDir {
    path: PathBuf,
    /// Holds the owner lock.
    _owner: File,
}

impl PrivateDir {
    /// Makes a fresh directory, and becomes its owner.
    pub(crate) fn create() -> Result<PrivateDir, ManagerError> {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce)
            .map_err(|e| ManagerError::Os(io::Error::other(e.to_string())))?;
        let path = std::env::temp_dir().join(format!(
            "{PREFIX}{}-{:016x}",
            std::process::id(),
            u64::from_le_bytes(nonce)
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(ManagerError::Os)?;
        let owned = || -> io::Result<File> {
            // Locked before it gets its name: a sweeper never sees an owner file without a lock.
            let making = path.join("owner.new");
            let owner = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&making)?;
            sys::hold_owner_lock(&owner)?;
            std::fs::rename(&making, path.join("owner"))?;
            Ok(owner)
        };
        match owned() {
            Ok(owner) => Ok(PrivateDir {
                path,
                _owner: owner,
            }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&path);
                Err(ManagerError::Os(e))
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes the directories of managers whose starting process died; returns them.
pub(crate) fn clean_dead() -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(std::env::temp_dir())? {
        let Ok(entry) = entry else { continue };
        if !entry.file_name().to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        let path = entry.path();
        // Ours only: a directory (not a link to one) of this user.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != sys::own_uid() {
            continue;
        }
        let dead = match File::open(path.join("owner")) {
            Ok(owner) => !sys::has_live_owner(&owner)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => meta
                .modified()
                .ok()
                .and_then(|at| at.elapsed().ok())
                .is_some_and(|age| age > MAKING),
            Err(_) => false,
        };
        if dead && std::fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    Ok(removed)
}
