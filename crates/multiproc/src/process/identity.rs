//! Where this process stands in the tree, for naming children the way Python does:
//! `Process-3`, and `Process-3:1` for the first child of `Process-3`; and its own name.
//!
//! The tree position is kept in atomics, not behind a lock: a forked child must be able to reset it
//! even if another thread of its parent was reading it at the moment of the fork.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// This process's name; `None` in a process multiproc did not start.
static NAME: Mutex<Option<String>> = Mutex::new(None);

/// The process this code runs in, as Python's `multiprocessing.current_process()` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentProcess {
    name: String,
    pid: u32,
}

impl CurrentProcess {
    /// Its name: the one its parent gave (`Process-N` by default), or `MainProcess`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

/// The process this code runs in.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{Process, current_process};
///
/// assert_eq!(current_process().name(), "MainProcess");
/// let child = Process::builder().name("worker").spawn((), |()| current_process().name().to_string())?;
/// assert_eq!(child.join()?, "worker");
/// # Ok(())
/// # }
/// ```
pub fn current_process() -> CurrentProcess {
    let name = NAME.lock().unwrap_or_else(|e| e.into_inner()).clone();
    CurrentProcess {
        name: name.unwrap_or_else(|| "MainProcess".to_owned()),
        pid: std::process::id(),
    }
}

/// Levels of the tree that names keep; deeper descendants are named after their last levels.
const DEPTH: usize = 16;

/// This process's own identity (`DEPTH_USED` levels): empty in the first process.
static IDENTITY: [AtomicU32; DEPTH] = [const { AtomicU32::new(0) }; DEPTH];
static DEPTH_USED: AtomicU32 = AtomicU32::new(0);
/// How many children this process has started.
static CHILDREN: AtomicU32 = AtomicU32::new(0);

/// Called once in a new child, before it runs anything else (so before it has other threads).
pub(crate) fn become_child(name: String, identity: &[u32]) {
    // `try_lock`: in a forked child, a lock held by a parent thread at the fork stays held forever;
    // the name is then left as the parent's rather than the child deadlocking.
    if let Ok(mut slot) = NAME.try_lock() {
        *slot = Some(name);
    }
    let kept = &identity[identity.len().saturating_sub(DEPTH)..];
    for (slot, level) in IDENTITY.iter().zip(kept) {
        slot.store(*level, Ordering::Relaxed);
    }
    DEPTH_USED.store(kept.len() as u32, Ordering::Relaxed);
    CHILDREN.store(0, Ordering::Relaxed);
}

/// The identity of the next child, and its default name.
pub(crate) fn next_child() -> (Vec<u32>, String) {
    let n = CHILDREN.fetch_add(1, Ordering::Relaxed) + 1;
    let used = DEPTH_USED.load(Ordering::Relaxed) as usize;
    let mut identity: Vec<u32> = IDENTITY[..used]
        .iter()
        .map(|l| l.load(Ordering::Relaxed))
        .collect();
    identity.push(n);
    let name = identity
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(":");
    (identity, format!("Process-{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_tree() {
        // One test owns the globals; the harness runs no other test touching them.
        let (id, name) = next_child();
        assert_eq!((id, name.as_str()), (vec![1], "Process-1"));
        become_child("x".into(), &[3, 1]);
        let (id, name) = next_child();
        assert_eq!((id, name.as_str()), (vec![3, 1, 1], "Process-3:1:1"));
    }
}
