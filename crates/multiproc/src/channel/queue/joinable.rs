//! [`JoinableQueue`]: a [`Queue`] that also counts the items not yet declared done.

use std::fmt;
use std::ops::Deref;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::super::TaskDoneError;
use super::Queue;
use crate::deadline::{self, Timeout};
use crate::sync::raw::{GetCounters, QueueGuard, Side, Signal, lock_queue};

/// A [`Queue`] that also counts unfinished items: each [`put`](Queue::put) adds one,
/// [`task_done`](Self::task_done) takes one away, and [`join`](Self::join) waits until none is
/// left. Everything else is the queue's (it derefs to [`Queue`]).
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{JoinableQueue, Process};
///
/// let jobs = JoinableQueue::<u32>::new()?;
/// Process::spawn(jobs.clone(), |jobs: JoinableQueue<u32>| {
///     while let Ok(job) = jobs.get() {
///         let _ = job * 2; // the work
///         jobs.task_done().unwrap();
///     }
/// })?;
/// for job in 0..10 {
///     jobs.put(&job)?;
/// }
/// // Every job taken and declared done (`join()` waits without a limit).
/// jobs.join_timeout(std::time::Duration::from_secs(30))?;
/// assert!(jobs.task_done().is_err()); // one too many
/// jobs.close(); // the worker's get fails, and it ends
/// # Ok(())
/// # }
/// ```
#[derive(Serialize, Deserialize)]
#[serde(transparent, bound = "")]
pub struct JoinableQueue<T>(Queue<T>);

impl<T> JoinableQueue<T> {
    /// An empty joinable queue with no limit on its number of items.
    pub fn new() -> crate::Result<JoinableQueue<T>> {
        Queue::new().map(JoinableQueue)
    }

    /// An empty joinable queue holding at most `max_items` items (see [`Queue::bounded`]).
    pub fn bounded(max_items: usize) -> crate::Result<JoinableQueue<T>> {
        Queue::bounded(max_items).map(JoinableQueue)
    }

    /// Declares one item taken from the queue done. More calls than items put is
    /// [`TaskDoneError`], and changes nothing.
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        let mut guard = self.locked(Side::Get);
        let view = guard.fresh_view();
        let unfinished = view.unfinished();
        if unfinished == 0 {
            return Err(TaskDoneError);
        }
        guard.commit_gets(GetCounters {
            done: view.get.done + 1,
            ..view.get
        });
        if unfinished == 1 {
            guard.notify(Signal::AllDone, true);
        }
        Ok(())
    }

    /// The number of items put and not yet declared done (a snapshot).
    pub fn unfinished(&self) -> usize {
        self.0.object.state().peek().unfinished() as usize
    }

    /// Waits until every item put has been declared done, as long as it takes.
    pub fn join(&self) {
        self.join_until(None);
    }

    /// Succeeds if every item put has been declared done now, else [`Timeout`].
    pub fn try_join(&self) -> Result<(), Timeout> {
        self.join_within(Some(Instant::now()))
    }

    /// Waits at most `timeout` (`Duration::MAX`: as long as it takes) until every item put has
    /// been declared done, else [`Timeout`].
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), Timeout> {
        self.join_within(deadline::after(timeout))
    }

    /// Waits until `deadline` for every item put to be declared done, else [`Timeout`].
    pub fn join_deadline(&self, deadline: Instant) -> Result<(), Timeout> {
        self.join_within(Some(deadline))
    }

    fn join_within(&self, deadline: Option<Instant>) -> Result<(), Timeout> {
        self.join_until(deadline).then_some(()).ok_or(Timeout)
    }

    fn join_until(&self, deadline: Option<Instant>) -> bool {
        // A closed queue still counts: its items may yet be taken and declared done. The put lock:
        // holding it while looking blocks only putters, not the getters that make progress.
        let (_, done) = self
            .locked(Side::Put)
            .wait_until(Signal::AllDone, deadline, false, |v| v.unfinished() == 0)
            .expect("a queue's lock is always recoverable");
        done
    }

    fn locked(&self, side: Side) -> QueueGuard<'_> {
        // Every holder marks the lock consistent at once, so it never becomes unrecoverable; and
        // without a deadline, taking it cannot time out.
        lock_queue(&self.0.object, side, None).expect("a queue's lock is always recoverable")
    }
}

impl<T> Deref for JoinableQueue<T> {
    type Target = Queue<T>;
    fn deref(&self) -> &Queue<T> {
        &self.0
    }
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue(self.0.clone())
    }
}

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinableQueue")
            .field("len", &self.len())
            .field("unfinished", &self.unfinished())
            .field("closed", &self.is_closed())
            .finish()
    }
}
