//! [`SimpleQueue`]: a queue for many producer and consumer processes, with no size limit of its own.
//!
//! # Implementation notes
//!
//! Both ends of one [`pipe`] (a `SOCK_SEQPACKET` pair), held by every handle: `put` sends on one,
//! `get` receives on the other. The kernel queues each datagram whole and hands it to exactly one
//! receiver, so producers and consumers need no lock; a process killed during `put` leaves the
//! item whole or absent; an item put just before its process exits stays queued (no feeder thread,
//! so nothing to flush and no join deadlock).

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{
    Connection, GetError, GetTimeoutError, PutError, PutTimeoutError, RecvError, RecvTimeoutError,
    SendError, SendTimeoutError, pipe,
};
use crate::EncodesAs;
use crate::deadline;

/// A queue shared by processes: any of them may [`put`](Self::put) and [`get`](Self::get); each
/// item goes to exactly one getter. Python's `SimpleQueue`, except that `put` serializes in the
/// caller, so a value that does not serialize is an error there (Python's `Queue` drops it silently).
///
/// It has the methods and the errors of [`Queue`](crate::Queue), less its bound and `close`: `put`
/// waits only while the kernel's buffer for the queue is full (as Python's does when its pipe is),
/// and an item of any size goes.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{Process, SimpleQueue};
///
/// let queue = SimpleQueue::<u32>::new()?;
/// let producer = Process::spawn(queue.clone(), |q: SimpleQueue<u32>| {
///     for i in 0..5 {
///         q.put(&i).unwrap();
///     }
/// })?;
/// let got: Vec<u32> = (0..5).map(|_| queue.get()).collect::<Result<_, _>>()?;
/// assert_eq!(got, [0, 1, 2, 3, 4]);
/// assert!(queue.try_get().unwrap_err().is_empty());
/// producer.join()?;
/// # Ok(())
/// # }
/// ```
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct SimpleQueue<T> {
    put_end: Connection<T>,
    get_end: Connection<T>,
}

impl<T> SimpleQueue<T> {
    /// An empty queue.
    pub fn new() -> io::Result<SimpleQueue<T>> {
        let (mut get_end, mut put_end) = pipe()?;
        // Any size goes, as on a `Queue`: large items travel in memory files.
        get_end.set_max_message_size(usize::MAX);
        put_end.set_max_message_size(usize::MAX);
        Ok(SimpleQueue { put_end, get_end })
    }

    /// Whether no item is waiting now (a snapshot).
    #[doc(alias = "empty")]
    pub fn is_empty(&self) -> bool {
        !self.get_end.poll(Duration::ZERO).unwrap_or(false)
    }
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// Adds an item, waiting as long as it takes for room in the kernel's buffer.
    pub fn put(&self, item: impl EncodesAs<T>) -> Result<(), PutError> {
        self.put_end.send(item).map_err(put_error)
    }

    /// Adds an item if the kernel's buffer takes it now, else [`PutTimeoutError::Full`].
    #[doc(alias = "put_nowait")]
    pub fn try_put(&self, item: impl EncodesAs<T>) -> Result<(), PutTimeoutError> {
        self.put_within(item.encoded(), Some(Instant::now()))
    }

    /// Adds an item, waiting at most `timeout` for room ([`PutTimeoutError::Full`];
    /// `Duration::MAX`: as long as it takes).
    pub fn put_timeout(
        &self,
        item: impl EncodesAs<T>,
        timeout: Duration,
    ) -> Result<(), PutTimeoutError> {
        self.put_within(item.encoded(), deadline::after(timeout))
    }

    /// Adds an item, waiting until `deadline` for room ([`PutTimeoutError::Full`]).
    pub fn put_deadline(
        &self,
        item: impl EncodesAs<T>,
        deadline: Instant,
    ) -> Result<(), PutTimeoutError> {
        self.put_within(item.encoded(), Some(deadline))
    }

    fn put_within<I: Serialize + ?Sized>(
        &self,
        item: &I,
        deadline: Option<Instant>,
    ) -> Result<(), PutTimeoutError> {
        self.put_end
            .send_within(item, deadline)
            .map_err(|e| match e {
                SendTimeoutError::Timeout => PutTimeoutError::Full,
                SendTimeoutError::Send(e) => put_error(e).into(),
            })
    }

    /// Takes the oldest item, waiting for one as long as it takes.
    pub fn get(&self) -> Result<T, GetError> {
        self.get_end.recv().map_err(get_error)
    }

    /// Takes the oldest item if there is one now, else [`GetTimeoutError::Empty`].
    #[doc(alias = "get_nowait")]
    pub fn try_get(&self) -> Result<T, GetTimeoutError> {
        self.get_within(Some(Instant::now()))
    }

    /// Takes the oldest item, waiting at most `timeout` for one ([`GetTimeoutError::Empty`];
    /// `Duration::MAX`: as long as it takes).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.get_within(deadline::after(timeout))
    }

    /// Takes the oldest item, waiting until `deadline` for one ([`GetTimeoutError::Empty`]).
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, GetTimeoutError> {
        self.get_within(Some(deadline))
    }

    fn get_within(&self, deadline: Option<Instant>) -> Result<T, GetTimeoutError> {
        self.get_end.recv_within(deadline).map_err(|e| match e {
            RecvTimeoutError::Timeout => GetTimeoutError::Empty,
            RecvTimeoutError::Recv(e) => get_error(e).into(),
        })
    }
}

/// A pipe's send error as the queue's. Both ends are in every handle, so the other end cannot be
/// gone, and no size is too large: what is left is the value's encoding, or the system.
fn put_error(e: SendError) -> PutError {
    match e {
        SendError::Encode(e) => PutError::Encode(e),
        SendError::Os(e) => PutError::Os(e),
        other => PutError::Os(io::Error::other(other.to_string())),
    }
}

/// A pipe's receive error as the queue's (see [`put_error`]).
fn get_error(e: RecvError) -> GetError {
    match e {
        RecvError::Decode(e) => GetError::Decode(e),
        RecvError::Os(e) => GetError::Os(e),
        other => GetError::Os(io::Error::other(other.to_string())),
    }
}

impl<T> Clone for SimpleQueue<T> {
    fn clone(&self) -> Self {
        SimpleQueue {
            put_end: self.put_end.clone(),
            get_end: self.get_end.clone(),
        }
    }
}

impl<T> fmt::Debug for SimpleQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleQueue")
            .field("empty", &self.is_empty())
            .finish()
    }
}
