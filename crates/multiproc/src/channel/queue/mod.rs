//! [`Queue`] and [`JoinableQueue`]: many producer and consumer processes, items of any size.
//!
//! # Implementation notes
//!
//! A queue is a shared-memory segment (a [`RawQueue`]: robust locks for putters and for getters,
//! condition variables and counters, then the ring) and a side channel held by every handle. Each
//! concern has its module:
//! - the ring's memory, its locks and counters, consistent across a holder's death:
//!   `sync::raw::queue`;
//! - what a record in the ring is, and its layout: `record`;
//! - the side channel, for items that do not go in the ring: `side`;
//! - the items unfinished and `join`: `joinable`;
//! - here, the queue itself: which way an item goes, and the put and get families.
//!
//! An item of at most [`RING_ITEM_MAX`] bytes that carries no handle is copied into the ring: one
//! lock, one copy in, one copy out, no system call unless someone sleeps. Any other item (a large
//! one, or one carrying descriptors) travels on the side channel, and the ring gets a side
//! record. A SIGKILL anywhere in a put or a get leaves whole items or nothing, and the queue
//! working.
//!
//! No feeder thread: `put` returns once the item is in the queue, so an item put just before its
//! process exits is never lost, and there is nothing to flush or join.

mod joinable;
mod record;
mod side;

pub use joinable::JoinableQueue;
pub use side::SIDE_BYTES_MAX;

use std::fmt;
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{GetError, GetTimeoutError, PutError, PutTimeoutError};
use crate::EncodesAs;
use crate::deadline;
use crate::failpoint::{self, Failpoint};
use crate::shm::Object;
use crate::sync::raw::{
    GetCounters, LockFailed, PutCounters, QueueGuard, RawQueue, Side, Signal, View, lock_queue,
};
use crate::transfer::{self, Message};
use record::Record;
use side::{Received, SIDE_ITEMS_MAX, SideChannel};

/// The ring's size in bytes: the most memory a queue holds in items up to [`RING_ITEM_MAX`].
/// Reserved when the queue is created (so a queue never fails for memory later).
pub const RING_BYTES: usize = 4 << 20;

/// The largest encoded item kept in the ring (1 MiB of data and its envelope); larger ones go
/// through a memory file on the side channel. Ring items cost two copies and no system call;
/// side items a memory file each, which is about five times slower per byte.
pub const RING_ITEM_MAX: usize = (1 << 20) + 4096;

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
    side: SideChannel,
    _items: PhantomData<fn(T) -> T>,
}

impl<T> Queue<T> {
    /// An empty queue with no limit on its number of items.
    pub fn new() -> crate::Result<Queue<T>> {
        Queue::create(None, Kind::Plain)
    }

    /// An empty queue holding at most `max_items` items: `put` waits while it is full,
    /// `try_put`/`put_timeout` give [`PutTimeoutError::Full`]. Python: `Queue(maxsize)`.
    ///
    /// `max_items` 0 is refused with [`ShmError::InvalidArgument`](crate::ShmError) (Python
    /// would make it unbounded: use [`Queue::new`]).
    #[doc(alias = "maxsize")]
    pub fn bounded(max_items: usize) -> crate::Result<Queue<T>> {
        Queue::create(Some(max_items), Kind::Plain)
    }

    /// An unbounded queue with a ring of `ring_bytes` (a multiple of 8, at least 4096): for
    /// internal queues that carry small items and should be quick to create.
    pub(crate) fn with_ring(ring_bytes: usize) -> crate::Result<Queue<T>> {
        Queue::create_with(u64::MAX, ring_bytes, Kind::Plain)
    }

    /// A queue of at most `max_items` (`None`: no limit; 0 is refused).
    fn create(max_items: Option<usize>, kind: Kind) -> crate::Result<Queue<T>> {
        match max_items {
            None => Queue::create_with(u64::MAX, RING_BYTES, kind),
            Some(0) => Err(crate::ShmError::InvalidArgument {
                reason: "a bounded queue holds one item at least",
            }
            .into()),
            Some(n) => Queue::create_with(n as u64, RING_BYTES, kind),
        }
    }

    fn create_with(max_items: u64, ring_bytes: usize, kind: Kind) -> crate::Result<Queue<T>> {
        debug_assert!(ring_bytes % 8 == 0 && ring_bytes >= 4096);
        let state = RawQueue::new(max_items, SIDE_BYTES_MAX, kind == Kind::Joinable);
        let object = Object::create_zeroed(state, ring_bytes)?;
        Ok(Queue {
            object,
            side: SideChannel::new()?,
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
    #[doc(alias = "full")]
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

    /// Takes `side`'s lock until `deadline`: `None` at the deadline, `Err` with what is damaged if
    /// the lock is not recoverable (no holder leaves it so: each marks it consistent at once).
    fn lock(
        &self,
        side: Side,
        deadline: Option<Instant>,
    ) -> Result<Option<QueueGuard<'_>>, &'static str> {
        match lock_queue(&self.object, side, deadline) {
            Ok(guard) => Ok(Some(guard)),
            Err(LockFailed::Timeout) => Ok(None),
            Err(LockFailed::NotRecoverable) => Err(NOT_RECOVERABLE),
        }
    }
}

const NOT_RECOVERABLE: &str = "its lock is not recoverable";

/// Whether a queue counts its unfinished items' holders ([`JoinableQueue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Joinable,
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
    pub fn put(&self, item: impl EncodesAs<T>) -> Result<(), PutError> {
        self.put_within(item.encoded(), Deadlines::FOREVER)
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
    pub fn try_put(&self, item: impl EncodesAs<T>) -> Result<(), PutTimeoutError> {
        self.put_within(item.encoded(), Deadlines::now())
    }

    /// Puts `item`, waiting at most `timeout` for room ([`PutTimeoutError::Full`];
    /// `Duration::MAX`: as long as it takes). Python: `put(item, timeout=...)`.
    pub fn put_timeout(
        &self,
        item: impl EncodesAs<T>,
        timeout: Duration,
    ) -> Result<(), PutTimeoutError> {
        self.put_within(item.encoded(), Deadlines::at(deadline::after(timeout)))
    }

    /// Puts `item`, waiting until `deadline` for room ([`PutTimeoutError::Full`]).
    pub fn put_deadline(
        &self,
        item: impl EncodesAs<T>,
        deadline: Instant,
    ) -> Result<(), PutTimeoutError> {
        self.put_within(item.encoded(), Deadlines::at(Some(deadline)))
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

    fn put_within<I: Serialize + ?Sized>(
        &self,
        item: &I,
        deadlines: Deadlines,
    ) -> Result<(), PutTimeoutError> {
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
            .map_err(PutError::damaged)?
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
                .map_err(|_| PutError::damaged(NOT_RECOVERABLE))?
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
        let size = record::size(bytes.len());
        let (mut guard, puts) = self.lock_with_room(size, None, deadlines)?;
        record::write_ring(&mut guard, puts.tail, bytes);
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
        let datagram = SideChannel::prepare(bytes, fds).map_err(PutError::Os)?;
        let counted = bytes.len() as u64;
        let size = record::side_size();
        let (mut guard, puts) = self.lock_with_room(size, Some(counted), deadlines)?;
        // The tag is taken for good before the datagram exists: a datagram sent by a process that
        // dies before its record is committed keeps a tag no record will ever carry.
        let tag = puts.next_tag;
        let puts = PutCounters {
            next_tag: tag + 1,
            ..puts
        };
        guard.commit_puts(puts);
        self.side.send(&datagram, tag).map_err(PutError::Os)?;
        failpoint::check(Failpoint::QueueSideSent);
        record::write_side(&mut guard, puts.tail, tag, counted);
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
            .map_err(GetError::damaged)?
            .ok_or(GetTimeoutError::Empty)?;
        let (view, found) = guard
            .wait_until(Signal::NotEmpty, deadlines.wait, true, |v| v.len() > 0)
            .map_err(|_| GetError::damaged(NOT_RECOVERABLE))?;
        if !found {
            return Err(if guard.queue().is_closed() {
                GetError::Closed.into()
            } else {
                GetTimeoutError::Empty
            });
        }
        let gets = view.get;
        let (record, size) =
            record::read(&guard, gets.head, view.used(), payload).map_err(GetError::damaged)?;
        let taken = GetCounters {
            head: gets.head + size,
            items: gets.items + 1,
            ..gets
        };
        let Record::Side { tag, counted } = record else {
            guard.commit_gets(taken);
            guard.notify(Signal::NotFull, true);
            return Ok(None);
        };
        guard.commit_gets(GetCounters {
            side_items: gets.side_items + 1,
            side_bytes: gets.side_bytes + counted,
            ..taken
        });
        failpoint::check(Failpoint::QueueSideTaken);
        let received = self.side.receive(tag);
        guard.notify(Signal::NotFull, true);
        drop(guard);
        match received {
            Ok(message) => Ok(Some(message)),
            Err(Received::Os(e)) => Err(GetError::Os(e).into()),
            Err(Received::Damaged(what)) => Err(GetError::damaged(what).into()),
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

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            object: self.object.clone(),
            side: self.side.clone(),
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

/// The form a queue travels in: its segment and its side channel.
#[derive(Serialize)]
struct WireOut<'a> {
    object: &'a Object<RawQueue, u8>,
    side: side::WireOut<'a>,
}

#[derive(Deserialize)]
struct WireIn {
    object: Object<RawQueue, u8>,
    side: side::WireIn,
}

impl<T> Serialize for Queue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireOut {
            object: &self.object,
            side: self.side.wire(),
        }
        .serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Queue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let WireIn { object, side } = WireIn::deserialize(deserializer)?;
        Ok(Queue {
            object,
            side: SideChannel::from_wire(side),
            _items: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    //! A queue whose memory holds what its code never writes: typed damage, never a crash.

    use super::*;

    fn put_lock(queue: &Queue<Vec<u8>>) -> QueueGuard<'_> {
        lock_queue(&queue.object, Side::Put, None).unwrap_or_else(|_| panic!("recoverable"))
    }

    #[test]
    fn a_record_of_no_known_kind_is_damage() {
        let queue = Queue::<Vec<u8>>::with_ring(4096).unwrap();
        queue.put(vec![1; 15]).unwrap();
        // The first record's header, at position 0: a kind no code writes.
        put_lock(&queue).write(0, &((7u64 << 32) | 16).to_le_bytes());
        assert!(matches!(
            queue.get(),
            Err(GetError::Damaged { what }) if what.contains("kind")
        ));
    }

    #[test]
    fn a_header_longer_than_the_ring_holds_is_damage() {
        let queue = Queue::<Vec<u8>>::with_ring(4096).unwrap();
        queue.put(vec![1; 15]).unwrap();
        put_lock(&queue).write(0, &((1u64 << 32) | 4000).to_le_bytes());
        assert!(matches!(
            queue.try_get(),
            Err(GetTimeoutError::Get(GetError::Damaged { .. }))
        ));
    }

    #[test]
    fn a_side_record_whose_datagram_never_came_is_damage() {
        let queue = Queue::<Vec<u8>>::with_ring(4096).unwrap();
        // 16 encoded bytes: a record of a side record's size, rewritten as one.
        queue.put(vec![1; 15]).unwrap();
        record::write_side(&mut put_lock(&queue), 0, 99, 16);
        assert!(matches!(
            queue.get(),
            Err(GetError::Damaged { what }) if what.contains("side channel")
        ));
    }
}
