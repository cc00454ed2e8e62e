//! [`QueueProxy`] and [`JoinableQueueProxy`]: queues that live in the manager.

use std::ops::Deref;
use std::time::{Duration, Instant};

use rmpv::Value;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Proxy, deadline_arg, forever, from_value, proxy, to_value, waited};
use crate::EncodesAs;
use crate::channel::TasksLost;
use crate::deadline;
use crate::manager::ManagerError;
use crate::manager::handle::Handle;
use crate::manager::protocol::{Kind, Op};

proxy! {
    /// A queue that lives in a [`Manager`](crate::Manager): [`Queue`](crate::Queue)'s methods,
    /// each a round trip. Any process holding a handle may put and get, on other machines too
    /// (over TCP), without shared memory. A `get` or `put` that waits does so on a connection
    /// taken for it, and holds up nothing else.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// let manager = multiproc::Manager::start()?;
    /// let queue = manager.queue_bounded::<u32>(1)?;
    /// queue.put(7)?;
    /// assert!(queue.try_put(8).unwrap_err().is_full());
    /// assert_eq!(queue.get()?, 7);
    /// assert!(queue.try_get().unwrap_err().is_empty());
    /// queue.close()?;
    /// assert!(queue.put(9).is_err()); // Closed
    /// # Ok(())
    /// # }
    /// ```
    pub struct QueueProxy<T> = Kind::Queue;
}

/// A queue's state: `[len, max_items or nil, closed, unfinished]`.
#[derive(Deserialize)]
struct State(usize, Option<usize>, bool, usize);

impl<T> QueueProxy<T> {
    fn state(&self) -> Result<State, ManagerError> {
        from_value(self.handle.call(Op::QueueState, Vec::new())?)
    }

    /// The number of items now (a snapshot). Python: `qsize()`.
    #[doc(alias = "qsize")]
    pub fn len(&self) -> Result<usize, ManagerError> {
        Ok(self.state()?.0)
    }

    /// Whether it holds no item now (a snapshot).
    #[doc(alias = "empty")]
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// Whether it holds as many items as it may now (a snapshot); never for
    /// [`Manager::queue`](crate::Manager::queue).
    #[doc(alias = "full")]
    pub fn is_full(&self) -> Result<bool, ManagerError> {
        let State(len, max, ..) = self.state()?;
        Ok(max.is_some_and(|max| len >= max))
    }

    /// The item limit given to [`Manager::queue_bounded`](crate::Manager::queue_bounded), if any.
    #[doc(alias = "maxsize")]
    pub fn max_items(&self) -> Result<Option<usize>, ManagerError> {
        Ok(self.state()?.1)
    }

    /// Closes the queue, for every process, as [`Queue::close`](crate::Queue::close) does: later
    /// puts fail with [`ErrorCode::Closed`](crate::ErrorCode::Closed); gets take the items left,
    /// then fail with `Closed` instead of waiting forever. Waiters are woken.
    pub fn close(&self) -> Result<(), ManagerError> {
        self.handle.call(Op::QueueClose, Vec::new()).map(drop)
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> Result<bool, ManagerError> {
        Ok(self.state()?.2)
    }
}

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    /// Puts `item` at the back, waiting for room as long as it takes (a bounded queue).
    pub fn put(&self, item: impl EncodesAs<T>) -> Result<(), ManagerError> {
        forever(self.put_within(item.encoded(), None))
    }

    /// Puts `item` if there is room now, else [`ManagerError::Full`]. Python: `put_nowait`.
    #[doc(alias = "put_nowait")]
    pub fn try_put(&self, item: impl EncodesAs<T>) -> Result<(), ManagerError> {
        self.put_within(item.encoded(), Some(Instant::now()))
    }

    /// Puts `item`, waiting at most `timeout` for room ([`ManagerError::Full`]; `Duration::MAX`:
    /// as long as it takes).
    pub fn put_timeout(
        &self,
        item: impl EncodesAs<T>,
        timeout: Duration,
    ) -> Result<(), ManagerError> {
        self.put_within(item.encoded(), deadline::after(timeout))
    }

    /// Puts `item`, waiting until `deadline` for room ([`ManagerError::Full`]).
    pub fn put_deadline(
        &self,
        item: impl EncodesAs<T>,
        deadline: Instant,
    ) -> Result<(), ManagerError> {
        self.put_within(item.encoded(), Some(deadline))
    }

    fn put_within<I: Serialize + ?Sized>(
        &self,
        item: &I,
        deadline: Option<Instant>,
    ) -> Result<(), ManagerError> {
        let args = vec![to_value(item)?, deadline_arg(deadline)];
        let answer = self.handle.call(Op::QueuePut, args)?;
        waited(answer, ManagerError::Full).map(drop)
    }

    /// Takes the oldest item, waiting as long as it takes.
    pub fn get(&self) -> Result<T, ManagerError> {
        forever(self.get_within(None))
    }

    /// Takes the oldest item if there is one now, else [`ManagerError::Empty`]. Python:
    /// `get_nowait`.
    #[doc(alias = "get_nowait")]
    pub fn try_get(&self) -> Result<T, ManagerError> {
        self.get_within(Some(Instant::now()))
    }

    /// Takes the oldest item, waiting at most `timeout` for one ([`ManagerError::Empty`];
    /// `Duration::MAX`: as long as it takes).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, ManagerError> {
        self.get_within(deadline::after(timeout))
    }

    /// Takes the oldest item, waiting until `deadline` for one ([`ManagerError::Empty`]).
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, ManagerError> {
        self.get_within(Some(deadline))
    }

    fn get_within(&self, deadline: Option<Instant>) -> Result<T, ManagerError> {
        let answer = self
            .handle
            .call(Op::QueueGet, vec![deadline_arg(deadline)])?;
        match waited(answer, ManagerError::Empty)? {
            Value::Array(mut one) if one.len() == 1 => from_value(one.remove(0)),
            other => Err(ManagerError::Protocol(format!("queue.get gave {other}"))),
        }
    }
}

/// A [`QueueProxy`] that also counts unfinished items, as
/// [`JoinableQueue`](crate::JoinableQueue) does: each put adds one,
/// [`task_done`](Self::task_done) takes one away, and [`join`](Self::join) waits until none is
/// left. Everything else is the queue's (it derefs to [`QueueProxy`]). Python:
/// `manager.JoinableQueue()`.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// let manager = multiproc::Manager::start()?;
/// let jobs = manager.joinable_queue::<u32>()?;
/// jobs.put(7)?;
/// assert_eq!(jobs.get()?, 7);
/// assert!(jobs.try_join().unwrap_err().is_timeout()); // taken, not yet done
/// jobs.task_done()?;
/// jobs.join()?;
/// assert!(jobs.task_done().is_err()); // TooManyTaskDone
/// # Ok(())
/// # }
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "", transparent)]
pub struct JoinableQueueProxy<T>(QueueProxy<T>);

impl<T> Proxy for JoinableQueueProxy<T> {
    const KIND: Kind = Kind::Queue;

    fn from_handle(handle: Handle) -> Self {
        JoinableQueueProxy(QueueProxy::from_handle(handle))
    }
}

impl<T> JoinableQueueProxy<T> {
    /// Says that an item taken from the queue was dealt with; one call too many is
    /// [`ErrorCode::TooManyTaskDone`](crate::ErrorCode::TooManyTaskDone), and changes nothing.
    pub fn task_done(&self) -> Result<(), ManagerError> {
        self.0.handle.call(Op::QueueTaskDone, Vec::new()).map(drop)
    }

    /// The number of items put and not yet declared done (a snapshot).
    pub fn unfinished(&self) -> Result<usize, ManagerError> {
        Ok(self.0.state()?.3)
    }

    /// Waits until every item put was taken and declared done, as long as it takes. Items taken
    /// by a process whose connection then ended (it died, say) are not waited for: the `join`
    /// that ends reports them, once, as [`ManagerError::TasksLost`] (Python's waits forever).
    pub fn join(&self) -> Result<(), ManagerError> {
        forever(self.join_until(None))
    }

    /// Succeeds if every item put was declared done, else [`ManagerError::Timeout`].
    pub fn try_join(&self) -> Result<(), ManagerError> {
        self.join_until(Some(Instant::now()))
    }

    /// [`join`](Self::join), at most `timeout` (`Duration::MAX`: as long as it takes), else
    /// [`ManagerError::Timeout`].
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), ManagerError> {
        self.join_until(deadline::after(timeout))
    }

    /// [`join`](Self::join), until `deadline`, else [`ManagerError::Timeout`].
    pub fn join_deadline(&self, deadline: Instant) -> Result<(), ManagerError> {
        self.join_until(Some(deadline))
    }

    fn join_until(&self, deadline: Option<Instant>) -> Result<(), ManagerError> {
        let answer = self
            .0
            .handle
            .call(Op::QueueJoin, vec![deadline_arg(deadline)])?;
        match waited(answer, ManagerError::Timeout)? {
            Value::Nil => Ok(()),
            lost => Err(TasksLost {
                items: lost.as_u64().ok_or_else(|| {
                    ManagerError::Protocol(format!("expected a count of lost items, got {lost}"))
                })?,
            }
            .into()),
        }
    }
}

impl<T> Deref for JoinableQueueProxy<T> {
    type Target = QueueProxy<T>;
    fn deref(&self) -> &QueueProxy<T> {
        &self.0
    }
}

impl<T> Clone for JoinableQueueProxy<T> {
    /// Another handle to the same queue.
    fn clone(&self) -> Self {
        JoinableQueueProxy(self.0.clone())
    }
}

impl<T> std::fmt::Debug for JoinableQueueProxy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.handle.debug("JoinableQueueProxy", f)
    }
}
