//! [`Queue`] and [`JoinableQueue`]: many producer and consumer processes, items of any size.
//!
//! # Implementation notes
//!
//! A queue is a shared-memory segment (a [`RawQueue`]: robust locks for putters and for getters,
//! condition variables and counters, then a ring of records) and a `SOCK_SEQPACKET` pair held by
//! every handle, the side channel.
//!
//! - An item of at most [`RING_ITEM_MAX`] bytes that carries no handle is copied into the ring:
//!   one lock, one copy in, one copy out, no system call unless someone sleeps.
//! - Any other item (a large one, or one carrying descriptors) travels on the side channel as a
//!   datagram, its body spilled into a sealed memfd. The ring gets a small record with the
//!   datagram's tag, so ring order stays queue order.
//!
//! A side item is put under the put lock in three steps: take a tag (committed at once), send the
//! datagram, commit the record. A getter, under the get lock, commits the record's removal, then
//! receives datagrams, dropping any with a smaller tag, until it gets its own. A datagram whose
//! putter or getter died between those steps is an orphan with a tag smaller than every later
//! record's, dropped by the next side get; so a SIGKILL anywhere leaves whole items or nothing,
//! and the queue working (see [`RawQueue`] for the ring itself).
//!
//! No feeder thread: `put` returns once the item is in the queue, so an item put just before its
//! process exits is never lost, and there is nothing to flush or join.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ops::Deref;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{GetError, GetTimeoutError, PutError, PutTimeoutError, TaskDoneError};
use crate::deadline::{self, Timeout};
use crate::failpoint::{self, Failpoint};
use crate::shm::Object;
use crate::sync::raw::{
    GetCounters, LockFailed, PutCounters, QueueGuard, RECORD_HEADER, RawQueue, Side, Signal, View,
    lock_queue, record_size,
};
use crate::sys;
use crate::transfer::{self, Message, packet};

/// The ring's size in bytes: the most memory a queue holds in items up to [`RING_ITEM_MAX`].
/// Reserved when the queue is created (so a queue never fails for memory later).
pub const RING_BYTES: usize = 4 << 20;

/// The largest encoded item kept in the ring (1 MiB of data and its envelope); larger ones go
/// through a memory file on the side channel. Ring items cost two copies and no system call;
/// side items a memory file each, which is about five times slower per byte.
pub const RING_ITEM_MAX: usize = (1 << 20) + 4096;

/// Bytes of large items a queue holds at most (items above the ring's limit, spilled to memory
/// files). One item alone may exceed it: a queue always takes one.
pub const SIDE_BYTES_MAX: u64 = 64 << 20;

/// Side-channel items in flight at most, far below what the socket's buffer holds, so that
/// sending one never waits (it is done under the queue's lock).
const SIDE_ITEMS_MAX: u64 = 64;

/// Side datagrams carry at most this much body inline; more goes to a memory file.
const SIDE_INLINE_MAX: usize = 512;

const KIND_RING: u32 = 1;
const KIND_SIDE: u32 = 2;
/// A side record's payload: the datagram's tag and the bytes counted against the budget.
const SIDE_RECORD: usize = 16;

/// How long `try_put`/`try_get` wait for the queue's lock: it is held for microseconds by another
/// putter or getter, or by a dead one until the lock's liveness check notices (tens of
/// milliseconds). A try never waits for room or for an item.
pub(crate) const TRY_LOCK: Duration = Duration::from_millis(100);

/// A queue shared by processes: any of them may [`put`](Self::put) and [`get`](Self::get); each
/// item goes to exactly one getter, in the order the items were put.
///
/// Unlike Python's `Queue`:
/// - `put` serializes in the caller: a value that does not serialize is [`PutError::Encode`]
///   there, instead of being dropped silently by a feeder thread;
/// - there is no feeder thread: when `put` returns, the item is in the queue, so a process may
///   exit right after it without losing the item or deadlocking its parent's `join`;
/// - [`close`](Self::close) closes the queue for every process (see there).
///
/// Small items live in a shared ring of [`RING_BYTES`]; larger ones ([`RING_ITEM_MAX`]) in memory
/// files, up to [`SIDE_BYTES_MAX`] in flight. Beyond these, `put` waits for room even on an
/// unbounded queue, which bounds the memory a queue holds.
///
/// A process killed in the middle of `put` or `get`, even by SIGKILL, leaves every item whole or
/// absent, and the queue working for everyone else.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{Process, Queue};
///
/// let queue = Queue::<String>::new()?;
/// let producer = Process::spawn(queue.clone(), |q: Queue<String>| {
///     for word in ["hello", "from", "a child"] {
///         q.put(&word.to_string()).unwrap();
///     }
/// })?;
/// producer.join()?; // fine to join first: the items are already in the queue
/// assert_eq!(queue.len(), 3);
/// assert_eq!(queue.get()?, "hello");
/// # Ok(())
/// # }
/// ```
pub struct Queue<T> {
    object: Object<RawQueue, u8>,
    put_end: Arc<OwnedFd>,
    get_end: Arc<OwnedFd>,
    _items: PhantomData<fn(T) -> T>,
}

impl<T> Queue<T> {
    /// An empty queue with no limit on its number of items.
    pub fn new() -> crate::Result<Queue<T>> {
        Queue::create(u64::MAX)
    }

    /// An empty queue holding at most `max_items` items: `put` waits while it is full,
    /// `try_put`/`put_timeout` give [`PutTimeoutError::Full`]. Python: `Queue(maxsize)`.
    ///
    /// `max_items` 0 is refused (Python would make it unbounded: use [`Queue::new`]).
    #[doc(alias = "maxsize")]
    pub fn bounded(max_items: usize) -> crate::Result<Queue<T>> {
        if max_items == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a bounded queue holds at least one item",
            )
            .into());
        }
        Queue::create(max_items as u64)
    }

    /// An unbounded queue with a ring of `ring_bytes` (a multiple of 8, at least 4096): for
    /// internal queues that carry small items and should be quick to create.
    pub(crate) fn with_ring(ring_bytes: usize) -> crate::Result<Queue<T>> {
        Queue::create_with(u64::MAX, ring_bytes)
    }

    fn create(max_items: u64) -> crate::Result<Queue<T>> {
        Queue::create_with(max_items, RING_BYTES)
    }

    fn create_with(max_items: u64, ring_bytes: usize) -> crate::Result<Queue<T>> {
        debug_assert!(ring_bytes % 8 == 0 && ring_bytes >= 4096);
        let object = Object::create_zeroed(RawQueue::new(max_items, SIDE_BYTES_MAX), ring_bytes)?;
        let (put_end, get_end) = sys::seqpacket_pair()?;
        Ok(Queue {
            object,
            put_end: Arc::new(put_end),
            get_end: Arc::new(get_end),
            _items: PhantomData,
        })
    }

    /// The number of items in the queue now (a snapshot). Python: `qsize()`.
    #[doc(alias = "qsize")]
    pub fn len(&self) -> usize {
        self.object.state().peek().len() as usize
    }

    /// Whether the queue holds no item now (a snapshot).
    #[doc(alias = "empty")]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue holds as many items as it may now (a snapshot); never for
    /// [`Queue::new`].
    pub fn is_full(&self) -> bool {
        self.object.state().peek().len() >= self.object.state().max_items()
    }

    /// The item limit given to [`Queue::bounded`], if any.
    pub fn max_items(&self) -> Option<usize> {
        let max = self.object.state().max_items();
        (max != u64::MAX).then_some(max as usize)
    }

    /// Closes the queue, for every process: later puts fail with [`PutError::Closed`]; gets take
    /// the items left, then fail with [`GetError::Closed`] instead of waiting forever. Waiters
    /// are woken.
    ///
    /// Python's `close()` only stops the calling process's feeder thread, which this queue does
    /// not have: a process that is done putting need not call anything.
    pub fn close(&self) {
        self.object.state().close();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.object.state().is_closed()
    }

    /// The largest item kept in this queue's ring: [`RING_ITEM_MAX`] for the standard ring, a
    /// quarter of a smaller one.
    fn ring_item_max(&self) -> usize {
        let ring = self.object.values().1;
        if ring >= RING_BYTES {
            RING_ITEM_MAX
        } else {
            ring / 4
        }
    }

    fn lock(
        &self,
        side: Side,
        deadline: Option<Instant>,
    ) -> Result<Option<QueueGuard<'_>>, io::Error> {
        match lock_queue(&self.object, side, deadline) {
            Ok(guard) => Ok(Some(guard)),
            Err(LockFailed::Timeout) => Ok(None),
            Err(LockFailed::NotRecoverable) => Err(not_recoverable()),
        }
    }
}

fn not_recoverable() -> io::Error {
    io::Error::other("the queue's lock is not recoverable")
}

/// Deadlines of one operation: for the lock, and for the item or room to come.
#[derive(Clone, Copy)]
struct Deadlines {
    lock: Option<Instant>,
    wait: Option<Instant>,
}

impl Deadlines {
    const FOREVER: Deadlines = Deadlines {
        lock: None,
        wait: None,
    };

    /// Both at `deadline` (`None`: forever).
    fn at(deadline: Option<Instant>) -> Deadlines {
        Deadlines {
            lock: deadline,
            wait: deadline,
        }
    }

    fn now() -> Deadlines {
        let now = Instant::now();
        Deadlines {
            lock: Some(now + TRY_LOCK),
            wait: Some(now),
        }
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// Puts `item` at the back, waiting for room as long as it takes.
    pub fn put(&self, item: &T) -> Result<(), PutError> {
        self.put_within(item, Deadlines::FOREVER)
            .map_err(|e| match e {
                PutTimeoutError::Put(e) => e,
                PutTimeoutError::Full => unreachable!("no deadline"),
            })
    }

    /// Puts `item` if there is room now, else [`PutTimeoutError::Full`]. Python: `put_nowait`.
    ///
    /// It waits for no room, but may wait briefly for the queue's lock: microseconds while another
    /// process puts, up to 100 ms when the holder died and the lock's liveness check must notice.
    #[doc(alias = "put_nowait")]
    pub fn try_put(&self, item: &T) -> Result<(), PutTimeoutError> {
        self.put_within(item, Deadlines::now())
    }

    /// Puts `item`, waiting at most `timeout` for room ([`PutTimeoutError::Full`];
    /// `Duration::MAX`: as long as it takes). Python: `put(item, timeout=...)`.
    pub fn put_timeout(&self, item: &T, timeout: Duration) -> Result<(), PutTimeoutError> {
        self.put_within(item, Deadlines::at(deadline::after(timeout)))
    }

    /// Puts `item`, waiting until `deadline` for room ([`PutTimeoutError::Full`]).
    pub fn put_deadline(&self, item: &T, deadline: Instant) -> Result<(), PutTimeoutError> {
        self.put_within(item, Deadlines::at(Some(deadline)))
    }

    /// Takes the oldest item, waiting for one as long as it takes.
    pub fn get(&self) -> Result<T, GetError> {
        self.get_within(Deadlines::FOREVER).map_err(|e| match e {
            GetTimeoutError::Get(e) => e,
            GetTimeoutError::Empty => unreachable!("no deadline"),
        })
    }

    /// Takes the oldest item if there is one now, else [`GetTimeoutError::Empty`]. Python:
    /// `get_nowait`.
    ///
    /// It waits for no item, but may wait briefly for the queue's lock (see
    /// [`try_put`](Self::try_put)).
    #[doc(alias = "get_nowait")]
    pub fn try_get(&self) -> Result<T, GetTimeoutError> {
        self.get_within(Deadlines::now())
    }

    /// Takes the oldest item, waiting at most `timeout` for one ([`GetTimeoutError::Empty`];
    /// `Duration::MAX`: as long as it takes). Python: `get(timeout=...)`.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError> {
        self.get_within(Deadlines::at(deadline::after(timeout)))
    }

    /// Takes the oldest item, waiting until `deadline` for one ([`GetTimeoutError::Empty`]).
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, GetTimeoutError> {
        self.get_within(Deadlines::at(Some(deadline)))
    }

    fn put_within(&self, item: &T, deadlines: Deadlines) -> Result<(), PutTimeoutError> {
        with_buffer(|bytes| {
            let fds = transfer::encode_into(item, bytes)?;
            if fds.is_empty() && bytes.len() <= self.ring_item_max() {
                self.put_in_ring(bytes, deadlines)
            } else {
                self.put_on_side(bytes, &fds, deadlines)
            }
        })
    }

    /// Takes the put lock and waits for room for a record of `size` bytes (and, for a side item,
    /// for `side_bytes` within the budget).
    fn lock_with_room(
        &self,
        size: u64,
        side_bytes: Option<u64>,
        deadlines: Deadlines,
    ) -> Result<(QueueGuard<'_>, PutCounters), PutTimeoutError> {
        let mut guard = self
            .lock(Side::Put, deadlines.lock)
            .map_err(PutError::Os)?
            .ok_or(PutTimeoutError::Full)?;
        let queue = guard.queue();
        let max_items = queue.max_items();
        let budget = queue.side_budget();
        let ring_len = guard.ring_len();
        let has_room = |v: &View| {
            v.len() < max_items
                && ring_len - v.used() >= size
                && side_bytes.is_none_or(|bytes| {
                    v.side_items() < SIDE_ITEMS_MAX
                        && (v.side_bytes() == 0 || v.side_bytes() + bytes <= budget)
                })
        };
        let (view, room) = if guard.queue().is_closed() {
            (guard.fresh_view(), false)
        } else {
            guard
                .wait_until(Signal::NotFull, deadlines.wait, true, has_room)
                .map_err(|_| PutError::Os(not_recoverable()))?
        };
        if guard.queue().is_closed() {
            return Err(PutError::Closed.into());
        }
        if !room {
            return Err(PutTimeoutError::Full);
        }
        Ok((guard, view.put))
    }

    fn put_in_ring(&self, bytes: &[u8], deadlines: Deadlines) -> Result<(), PutTimeoutError> {
        let size = record_size(bytes.len());
        let (mut guard, puts) = self.lock_with_room(size, None, deadlines)?;
        guard.write_header(puts.tail, KIND_RING, bytes.len());
        guard.write(puts.tail + RECORD_HEADER, bytes);
        failpoint::check(Failpoint::QueueRingWritten);
        guard.commit_puts(PutCounters {
            tail: puts.tail + size,
            items: puts.items + 1,
            ..puts
        });
        failpoint::check(Failpoint::QueueCommitted);
        guard.notify(Signal::NotEmpty, false);
        Ok(())
    }

    fn put_on_side(
        &self,
        bytes: &[u8],
        fds: &[OwnedFd],
        deadlines: Deadlines,
    ) -> Result<(), PutTimeoutError> {
        // The slow part (copying a large body into its file) happens before taking the lock.
        let datagram = packet::Outgoing::new(bytes, fds, SIDE_INLINE_MAX).map_err(PutError::Os)?;
        let counted = bytes.len() as u64;
        let size = record_size(SIDE_RECORD);
        let (mut guard, puts) = self.lock_with_room(size, Some(counted), deadlines)?;
        // The tag is taken for good before the datagram exists: a datagram sent by a process that
        // dies before its record is committed keeps a tag no record will ever carry.
        let tag = puts.next_tag;
        let puts = PutCounters {
            next_tag: tag + 1,
            ..puts
        };
        guard.commit_puts(puts);
        datagram
            .send(self.put_end.as_fd(), tag, true)
            .map_err(|e| PutError::Os(io::Error::new(e.kind(), format!("side channel: {e}"))))?;
        failpoint::check(Failpoint::QueueSideSent);
        let mut record = [0u8; SIDE_RECORD];
        record[..8].copy_from_slice(&tag.to_le_bytes());
        record[8..].copy_from_slice(&counted.to_le_bytes());
        guard.write_header(puts.tail, KIND_SIDE, SIDE_RECORD);
        guard.write(puts.tail + RECORD_HEADER, &record);
        guard.commit_puts(PutCounters {
            tail: puts.tail + size,
            items: puts.items + 1,
            side_items: puts.side_items + 1,
            side_bytes: puts.side_bytes + counted,
            ..puts
        });
        guard.notify(Signal::NotEmpty, false);
        Ok(())
    }

    fn get_within(&self, deadlines: Deadlines) -> Result<T, GetTimeoutError> {
        with_buffer(|payload| {
            let decoded = match self.take(deadlines, payload)? {
                None => transfer::decode_from(payload, Vec::new()),
                Some(message) => transfer::decode(message),
            };
            Ok(decoded.map_err(GetError::Decode)?)
        })
    }

    /// Takes the oldest record out of the ring: a ring item's bytes land in `payload` (and `None`
    /// is returned), a side item's datagram is received and returned.
    fn take(
        &self,
        deadlines: Deadlines,
        payload: &mut Vec<u8>,
    ) -> Result<Option<Message>, GetTimeoutError> {
        let mut guard = self
            .lock(Side::Get, deadlines.lock)
            .map_err(GetError::Os)?
            .ok_or(GetTimeoutError::Empty)?;
        let (view, found) = guard
            .wait_until(Signal::NotEmpty, deadlines.wait, true, |v| v.len() > 0)
            .map_err(|_| GetError::Os(not_recoverable()))?;
        if !found {
            return Err(if guard.queue().is_closed() {
                GetError::Closed.into()
            } else {
                GetTimeoutError::Empty
            });
        }
        let gets = view.get;
        let (kind, len) = guard.read_header(gets.head);
        let size = record_size(len);
        if size > view.used() || !matches!(kind, KIND_RING | KIND_SIDE) {
            return Err(GetError::Os(damaged("a record's header")).into());
        }
        payload.resize(len, 0);
        guard.read(gets.head + RECORD_HEADER, payload);
        let taken = GetCounters {
            head: gets.head + size,
            items: gets.items + 1,
            ..gets
        };
        if kind == KIND_RING {
            guard.commit_gets(taken);
            guard.notify(Signal::NotFull, true);
            return Ok(None);
        }
        if len != SIDE_RECORD {
            return Err(GetError::Os(damaged("a side record")).into());
        }
        let tag = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
        let counted = u64::from_le_bytes(payload[8..].try_into().expect("8 bytes"));
        guard.commit_gets(GetCounters {
            side_items: gets.side_items + 1,
            side_bytes: gets.side_bytes + counted,
            ..taken
        });
        failpoint::check(Failpoint::QueueSideTaken);
        let datagram = self.side_datagram(tag);
        guard.notify(Signal::NotFull, true);
        drop(guard);
        // The body is read from its file after the lock is released.
        match datagram.and_then(|d| d.open(usize::MAX)) {
            Ok(packet::Recv::Message(message)) => Ok(Some(message)),
            Ok(_) => Err(GetError::Os(damaged("a side datagram")).into()),
            Err(e) => Err(GetError::Os(e).into()),
        }
    }

    /// Receives the side datagram tagged `tag`, dropping orphans (smaller tags) before it. Its
    /// putter sent it before committing its record, so it is already there.
    fn side_datagram(&self, tag: u64) -> io::Result<packet::Datagram> {
        loop {
            match packet::recv_datagram(self.get_end.as_fd(), true)? {
                packet::Incoming::Datagram(d) if d.tag < tag => continue,
                packet::Incoming::Datagram(d) if d.tag == tag => return Ok(d),
                _ => return Err(damaged("the side channel lost an item")),
            }
        }
    }
}

thread_local! {
    /// A buffer for encoding puts and receiving gets, reused so that small items cost no allocation.
    static BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Runs `f` with this thread's buffer (a fresh one if `f` is re-entered, say from a `Serialize`
/// impl that uses a queue).
fn with_buffer<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut buffer = BUFFER.take();
    let result = f(&mut buffer);
    if buffer.capacity() <= RING_ITEM_MAX * 2 {
        BUFFER.set(buffer);
    }
    result
}

fn damaged(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("queue damaged: {what}"))
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            object: self.object.clone(),
            put_end: self.put_end.clone(),
            get_end: self.get_end.clone(),
            _items: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.len())
            .field("max_items", &self.max_items())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The form a queue travels in: its segment and the two ends of its side channel.
#[derive(Serialize)]
struct WireOut<'a> {
    object: &'a Object<RawQueue, u8>,
    #[serde(serialize_with = "transfer::serialize_owned_fd")]
    put_end: &'a OwnedFd,
    #[serde(serialize_with = "transfer::serialize_owned_fd")]
    get_end: &'a OwnedFd,
}

#[derive(Deserialize)]
struct WireIn {
    object: Object<RawQueue, u8>,
    #[serde(deserialize_with = "transfer::deserialize_fd")]
    put_end: OwnedFd,
    #[serde(deserialize_with = "transfer::deserialize_fd")]
    get_end: OwnedFd,
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireOut {
            object: &self.object,
            put_end: &self.put_end,
            get_end: &self.get_end,
        }
        .serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let WireIn {
            object,
            put_end,
            get_end,
        } = WireIn::deserialize(deserializer)?;
        Ok(Queue {
            object,
            put_end: Arc::new(put_end),
            get_end: Arc::new(get_end),
            _items: PhantomData,
        })
    }
}

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
