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
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Connection, RecvError, RecvTimeoutError, SendError, pipe};

/// A queue shared by processes: any of them may [`put`](Self::put) and [`get`](Self::get); each
/// item goes to exactly one getter. Python's `SimpleQueue`, except that `put` serializes in the
/// caller, so a value that does not serialize is an error there (Python's `Queue` drops it silently).
///
/// `put` waits while the kernel's buffer for the queue is full (as Python's does when its pipe is).
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
        let (get_end, put_end) = pipe()?;
        Ok(SimpleQueue { put_end, get_end })
    }

    /// Whether no item is waiting now (a snapshot).
    #[doc(alias = "empty")]
    pub fn is_empty(&self) -> bool {
        !self.get_end.poll(Duration::ZERO).unwrap_or(false)
    }
}

impl<T: Serialize + DeserializeOwned> SimpleQueue<T> {
    /// Adds an item.
    pub fn put(&self, item: &T) -> Result<(), SendError> {
        self.put_end.send(item)
    }

    /// Takes the oldest item, waiting for one as long as it takes.
    pub fn get(&self) -> Result<T, RecvError> {
        self.get_end.recv()
    }

    /// Takes the oldest item, waiting at most `timeout`
    /// ([`RecvTimeoutError::Timeout`] when none came).
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.get_end.recv_timeout(timeout)
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
