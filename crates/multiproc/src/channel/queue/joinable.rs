//! [`JoinableQueue`]: a [`Queue`] that also counts the items not yet declared done.

use std::fmt;
use std::ops::Deref;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::super::{JoinTimeoutError, TaskDoneError, TasksLost};
use super::{Kind, Queue};
use crate::deadline;
use crate::sync::raw::{GetCounters, QueueGuard, Side, Signal, lock_queue};

/// How often a `join` looks for consumers that died holding items.
const HOLDER_CHECK: Duration = Duration::from_millis(50);

/// A [`Queue`] that also counts unfinished items: each [`put`](Queue::put) adds one,
/// [`task_done`](Self::task_done) takes one away, and [`join`](Self::join) waits until none is
/// left. Everything else is the queue's (it derefs to [`Queue`]).
///
/// The queue knows which process holds each item taken and not declared done. When a consumer
/// dies holding items (killed, say), a waiting `join` notices within tens of milliseconds: those
/// items count as done, and the `join` that ends reports them as [`TasksLost`] (Python's `join`
/// waits forever). The items are gone with their consumer; put them again to have them done.
/// Up to 64 consumer processes at once are told apart; the items of further ones are not, and
/// their loss is not noticed.
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
        Queue::create(None, Kind::Joinable).map(JoinableQueue)
    }

    /// An empty joinable queue holding at most `max_items` items (see [`Queue::bounded`]).
    pub fn bounded(max_items: usize) -> crate::Result<JoinableQueue<T>> {
        Queue::create(Some(max_items), Kind::Joinable).map(JoinableQueue)
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

    /// Waits until every item put has been declared done, as long as it takes; [`TasksLost`] if
    /// some were lost instead, with consumers that died holding them (they no longer count).
    pub fn join(&self) -> Result<(), TasksLost> {
        match self.join_until(None) {
            Ok(()) => Ok(()),
            Err(JoinTimeoutError::Lost(lost)) => Err(lost),
            Err(JoinTimeoutError::Timeout) => unreachable!("a join without a deadline"),
        }
    }

    /// Succeeds if every item put has been declared done now, else
    /// [`JoinTimeoutError::Timeout`] (or [`Lost`](JoinTimeoutError::Lost), as for
    /// [`join`](Self::join)).
    pub fn try_join(&self) -> Result<(), JoinTimeoutError> {
        self.join_until(Some(Instant::now()))
    }

    /// Waits at most `timeout` (`Duration::MAX`: as long as it takes) until every item put has
    /// been declared done, else [`JoinTimeoutError::Timeout`] (or
    /// [`Lost`](JoinTimeoutError::Lost), as for [`join`](Self::join)).
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        self.join_until(deadline::after(timeout))
    }

    /// Waits until `deadline` for every item put to be declared done (see
    /// [`join_timeout`](Self::join_timeout)).
    pub fn join_deadline(&self, deadline: Instant) -> Result<(), JoinTimeoutError> {
        self.join_until(Some(deadline))
    }

    fn join_until(&self, deadline: Option<Instant>) -> Result<(), JoinTimeoutError> {
        loop {
            // A closed queue still counts: its items may yet be taken and declared done. The put
            // lock: holding it while looking blocks only putters, not the getters that make
            // progress. Every HOLDER_CHECK, the get lock, to count lost the items of consumers
            // that died (the put lock released first: the two are never held together).
            let check = Instant::now() + HOLDER_CHECK;
            let until = deadline.map_or(check, |d| d.min(check));
            let (_, done) = self
                .locked(Side::Put)
                .wait_until(Signal::AllDone, Some(until), false, |v| v.unfinished() == 0)
                .expect("a queue's lock is always recoverable");
            if done {
                return match self.0.object.state().report_lost() {
                    0 => Ok(()),
                    items => Err(TasksLost { items }.into()),
                };
            }
            let mut resolved = false;
            let mut getters = self.locked(Side::Get);
            while getters.resolve_dead_holder() {
                resolved = true;
            }
            drop(getters);
            // Resolved ones may have ended the wait: look again before giving up.
            if !resolved && deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(JoinTimeoutError::Timeout);
            }
        }
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
