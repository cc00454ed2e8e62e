//! [`QueueProxy`]: a queue that lives in the manager.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use rmpv::Value;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Handle, ManagerError, from_value, to_value};

/// A queue that lives in a [`Manager`](super::Manager): any process holding a handle may put and
/// get. Each handle has a connection of its own, so a `get` that waits holds up nothing else.
/// Unlike [`Queue`](crate::Queue), it reaches processes on other machines (over TCP) and needs no
/// shared memory, at the cost of a round trip per operation.
///
/// It is joinable, as Python's manager queue is: every item put is unfinished until a
/// [`task_done`](Self::task_done), and [`join`](Self::join) waits until none is.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use std::time::Duration;
/// let manager = multiproc::Manager::start()?;
/// let jobs = manager.joinable_queue::<u32>()?;
/// jobs.put(&7)?;
/// assert_eq!(jobs.get()?, 7);
/// assert!(!jobs.join_timeout(Duration::ZERO)?); // taken, not yet done
/// jobs.task_done()?;
/// jobs.join()?;
/// assert!(jobs.task_done().is_err()); // TooManyTaskDone
/// # Ok(())
/// # }
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct QueueProxy<T> {
    handle: Handle,
    #[serde(skip)]
    _items: PhantomData<fn(T) -> T>,
}

fn timeout_ms(timeout: Option<Duration>) -> Value {
    timeout.map_or(Value::Nil, super::waiting::timeout_ms)
}

impl<T> QueueProxy<T> {
    pub(crate) fn new(handle: Handle) -> Self {
        QueueProxy {
            handle,
            _items: PhantomData,
        }
    }

    /// The number of items now. Python: `qsize()`.
    #[doc(alias = "qsize")]
    pub fn len(&self) -> Result<usize, ManagerError> {
        from_value(self.handle.call("queue.len", Vec::new())?)
    }

    /// Whether it holds no item now.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// Says that an item taken from the queue was dealt with; one call too many is
    /// [`ErrorCode::TooManyTaskDone`](super::ErrorCode::TooManyTaskDone).
    pub fn task_done(&self) -> Result<(), ManagerError> {
        self.handle.call("queue.task_done", Vec::new()).map(drop)
    }

    /// Waits until every item put was taken and declared done, as long as it takes.
    pub fn join(&self) -> Result<(), ManagerError> {
        self.join_within(None).map(drop)
    }

    /// [`join`](Self::join), at most `timeout`; whether every item was done.
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        self.join_within(Some(timeout))
    }

    fn join_within(&self, timeout: Option<Duration>) -> Result<bool, ManagerError> {
        let answer = self.handle.call("queue.join", vec![timeout_ms(timeout)])?;
        Ok(answer.as_str() != Some("timeout"))
    }
}

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    /// Puts `item`, waiting for room as long as it takes (a bounded queue).
    pub fn put(&self, item: &T) -> Result<(), ManagerError> {
        self.put_within(item, None).map(drop)
    }

    /// Puts `item` if there is room now; false if the queue is full. Python: `put_nowait`.
    #[doc(alias = "put_nowait")]
    pub fn try_put(&self, item: &T) -> Result<bool, ManagerError> {
        self.put_within(item, Some(Duration::ZERO))
    }

    /// Puts `item`, waiting at most `timeout` for room; false if the queue stayed full.
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<bool, ManagerError> {
        self.put_within(item, Some(timeout))
    }

    fn put_within(&self, item: &T, timeout: Option<Duration>) -> Result<bool, ManagerError> {
        let answer = self
            .handle
            .call("queue.put", vec![to_value(item)?, timeout_ms(timeout)])?;
        Ok(answer.as_str() != Some("timeout"))
    }

    /// Takes the oldest item, waiting as long as it takes.
    pub fn get(&self) -> Result<T, ManagerError> {
        self.get_within(None)?
            .ok_or_else(|| ManagerError::Protocol("a get without a timeout timed out".into()))
    }

    /// Takes the oldest item if there is one now. Python: `get_nowait`.
    #[doc(alias = "get_nowait")]
    pub fn try_get(&self) -> Result<Option<T>, ManagerError> {
        self.get_within(Some(Duration::ZERO))
    }

    /// Takes the oldest item, waiting at most `timeout`; `None` if none came.
    pub fn get_timeout(&self, timeout: Duration) -> Result<Option<T>, ManagerError> {
        self.get_within(Some(timeout))
    }

    fn get_within(&self, timeout: Option<Duration>) -> Result<Option<T>, ManagerError> {
        match self.handle.call("queue.get", vec![timeout_ms(timeout)])? {
            Value::Array(mut one) if one.len() == 1 => from_value(one.remove(0)).map(Some),
            answer if answer.as_str() == Some("timeout") => Ok(None),
            other => Err(ManagerError::Protocol(format!("queue.get gave {other}"))),
        }
    }
}

impl<T> Clone for QueueProxy<T> {
    /// Another handle to the same queue, with a connection of its own.
    fn clone(&self) -> Self {
        QueueProxy::new(self.handle.reconnect_or_share())
    }
}

impl<T> fmt::Debug for QueueProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.debug("QueueProxy", f)
    }
}
