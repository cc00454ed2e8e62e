//! The reaper: children whose handle was dropped while they ran are reaped as soon as they end, by
//! a thread of this process that waits on their pidfds, so that no zombie is left behind.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Mutex, mpsc};

use crate::sys::{self, ChildHandle, Stream};

/// The reaper of one process (a forked child needs its own): where to send children, and how to
/// wake it.
struct Reaper {
    pid: u32,
    children: mpsc::Sender<ChildHandle>,
    wake: Stream,
}

static REAPER: Mutex<Option<Reaper>> = Mutex::new(None);

/// Hands `child`, still running, to the reaper. If the reaper cannot start (no thread, no socket),
/// the child is reaped when the handle is dropped no more: it stays a zombie until this process
/// ends, which is all a failure to start a thread can cost here.
pub(crate) fn detach(child: ChildHandle) {
    let mut slot = REAPER.lock().unwrap_or_else(|e| e.into_inner());
    let pid = sys::own_pid();
    if slot.as_ref().is_none_or(|r| r.pid != pid) {
        *slot = start(pid);
    }
    if let Some(reaper) = slot.as_ref()
        && reaper.children.send(child).is_ok()
    {
        let _ = (&reaper.wake).write_all(&[1]);
    }
}

fn start(pid: u32) -> Option<Reaper> {
    let (wake, woken) = Stream::pair().ok()?;
    let (children, incoming) = mpsc::channel();
    std::thread::Builder::new()
        .name("multiproc-reaper".into())
        .spawn(move || reap(&woken, &incoming))
        .ok()?;
    Some(Reaper {
        pid,
        children,
        wake,
    })
}

/// Waits for the children to end, reaping each as it does; takes new ones when woken.
fn reap(woken: &Stream, incoming: &mpsc::Receiver<ChildHandle>) {
    let mut children: Vec<ChildHandle> = Vec::new();
    loop {
        children.extend(incoming.try_iter());
        // Reaped (or no longer ours to reap): gone from the list.
        children.retain(|child| matches!(child.try_wait(), Ok(None)));
        let mut fds: Vec<BorrowedFd<'_>> = vec![woken.as_fd()];
        fds.extend(children.iter().map(AsFd::as_fd));
        let Ok(ready) = sys::wait_any_readable(&fds, None) else {
            continue;
        };
        if ready[0] {
            let _ = (&*woken).read(&mut [0u8; 64]);
        }
    }
}
