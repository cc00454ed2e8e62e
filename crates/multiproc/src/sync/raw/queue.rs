//! [`RawQueue`]: a queue's state in shared memory. A [`RawMutex`], three condition variables, and
//! the counters of a ring of records that follows the state in the same segment.
//!
//! # Consistency across a holder's death
//!
//! The counters ([`Snapshot`]) exist twice. A holder changes them by writing the spare copy, then
//! flipping `commit`: one store publishes the whole change, and a process killed at any point
//! leaves either the old counters or the new ones, never a mix. A record is written into free
//! space before the commit that makes it visible, and copied out before the commit that frees it;
//! so after a holder's death the next one finds a consistent queue and only has to wake everybody
//! (the dead one may have committed without notifying).
//!
//! # Records
//!
//! Each record is an 8-byte header (payload length in the low half, kind in the high half) and the
//! payload, padded to 8 bytes. Positions (`head`, `tail`) count bytes since creation and are taken
//! modulo the ring's length, which is a multiple of 8, so a header never wraps (a payload may).

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use super::condvar::RawCondvar;
use super::{Acquired, RawMutex, Refused, remaining};
use crate::shm::{Kind, Object, SharedState};

/// The counters of a queue, as one consistent copy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// Position of the oldest record.
    pub(crate) head: u64,
    /// Position after the newest record.
    pub(crate) tail: u64,
    /// Records in the ring.
    pub(crate) items: u64,
    /// Records whose item travels on the side channel.
    pub(crate) side_items: u64,
    /// Bytes of side-channel items in flight (counted against the spill budget).
    pub(crate) side_bytes: u64,
    /// Items put and not yet marked done (`JoinableQueue`).
    pub(crate) unfinished: u64,
    /// The tag of the next side-channel item.
    pub(crate) next_token: u64,
}

#[repr(C)]
struct RawSnapshot {
    head: AtomicU64,
    tail: AtomicU64,
    items: AtomicU64,
    side_items: AtomicU64,
    side_bytes: AtomicU64,
    unfinished: AtomicU64,
    next_token: AtomicU64,
}

impl RawSnapshot {
    const fn zero() -> RawSnapshot {
        RawSnapshot {
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            items: AtomicU64::new(0),
            side_items: AtomicU64::new(0),
            side_bytes: AtomicU64::new(0),
            unfinished: AtomicU64::new(0),
            next_token: AtomicU64::new(0),
        }
    }

    fn load(&self) -> Snapshot {
        Snapshot {
            head: self.head.load(SeqCst),
            tail: self.tail.load(SeqCst),
            items: self.items.load(SeqCst),
            side_items: self.side_items.load(SeqCst),
            side_bytes: self.side_bytes.load(SeqCst),
            unfinished: self.unfinished.load(SeqCst),
            next_token: self.next_token.load(SeqCst),
        }
    }

    fn store(&self, s: &Snapshot) {
        self.head.store(s.head, SeqCst);
        self.tail.store(s.tail, SeqCst);
        self.items.store(s.items, SeqCst);
        self.side_items.store(s.side_items, SeqCst);
        self.side_bytes.store(s.side_bytes, SeqCst);
        self.unfinished.store(s.unfinished, SeqCst);
        self.next_token.store(s.next_token, SeqCst);
    }
}

/// Which condition a waiter waits for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Signal {
    /// An item was put (or the queue closed).
    NotEmpty,
    /// Room was made (or the queue closed).
    NotFull,
    /// The unfinished count reached zero.
    AllDone,
}

/// The shared state of a queue. Fixed at creation: `max_items`, `side_budget`.
#[repr(C)]
pub(crate) struct RawQueue {
    mutex: RawMutex,
    not_empty: RawCondvar,
    not_full: RawCondvar,
    all_done: RawCondvar,
    closed: AtomicU32,
    /// Bumped by every commit; `commit & 1` selects the current snapshot.
    commit: AtomicU32,
    max_items: AtomicU64,
    side_budget: AtomicU64,
    snapshots: [RawSnapshot; 2],
}

// SAFETY: repr(C), atomics only; all-zero is an empty, open queue (with a zero limits, which
// `create` never writes); alignment 8.
unsafe impl SharedState for RawQueue {
    const KIND: Kind = Kind::Queue;
}

/// The length of a record's header.
pub(crate) const RECORD_HEADER: u64 = 8;

/// Bytes a record with a payload of `len` bytes takes in the ring.
pub(crate) fn record_size(len: usize) -> u64 {
    RECORD_HEADER + (len as u64).next_multiple_of(8)
}

/// How long a waiter sleeps before looking again by itself: the bound on the delay a process
/// killed between a commit and its notification can cause.
const NAP: Duration = Duration::from_millis(50);

/// How long a waiter polls before it sleeps: an item or some room usually comes within
/// microseconds, and a sleep and wake-up costs tens of them.
const SPIN: Duration = Duration::from_micros(50);

impl RawQueue {
    pub(crate) const fn new(max_items: u64, side_budget: u64) -> RawQueue {
        RawQueue {
            mutex: RawMutex::new(),
            not_empty: RawCondvar::new(),
            not_full: RawCondvar::new(),
            all_done: RawCondvar::new(),
            closed: AtomicU32::new(0),
            commit: AtomicU32::new(0),
            max_items: AtomicU64::new(max_items),
            side_budget: AtomicU64::new(side_budget),
            snapshots: [RawSnapshot::zero(), RawSnapshot::zero()],
        }
    }

    pub(crate) fn max_items(&self) -> u64 {
        self.max_items.load(SeqCst)
    }

    pub(crate) fn side_budget(&self) -> u64 {
        self.side_budget.load(SeqCst)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(SeqCst) != 0
    }

    /// The counters, read without the lock (a seqlock read of the current copy).
    pub(crate) fn peek(&self) -> Snapshot {
        loop {
            let before = self.commit.load(SeqCst);
            let snapshot = self.snapshots[(before & 1) as usize].load();
            if self.commit.load(SeqCst) == before {
                return snapshot;
            }
        }
    }

    fn condvar(&self, signal: Signal) -> &RawCondvar {
        match signal {
            Signal::NotEmpty => &self.not_empty,
            Signal::NotFull => &self.not_full,
            Signal::AllDone => &self.all_done,
        }
    }
}

/// The queue's lock, held, with access to its ring. Not `Send`: released by the thread that took it.
pub(crate) struct QueueGuard<'a> {
    queue: &'a RawQueue,
    ring: *mut u8,
    ring_len: u64,
    /// False once a relock failed: nothing to release then.
    held: bool,
    _not_send: PhantomData<*const ()>,
}

/// Why the lock was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockFailed {
    /// Still held at the deadline.
    Timeout,
    /// The lock is unusable (cannot happen: every taker marks it consistent at once).
    NotRecoverable,
}

/// Takes the lock of the queue in `object`, waiting until `deadline`.
pub(crate) fn lock_queue(
    object: &Object<RawQueue, u8>,
    deadline: Option<Instant>,
) -> Result<QueueGuard<'_>, LockFailed> {
    let queue = object.state();
    relock(queue, deadline)?;
    let (ring, ring_len) = object.values();
    Ok(QueueGuard {
        queue,
        ring,
        ring_len: ring_len as u64,
        held: true,
        _not_send: PhantomData,
    })
}

fn relock(queue: &RawQueue, deadline: Option<Instant>) -> Result<(), LockFailed> {
    match queue.mutex.lock(deadline) {
        Ok(Acquired::Clean) => Ok(()),
        Ok(Acquired::OwnerDied) => {
            // Nothing to repair (see the module's notes), but the dead holder may have committed
            // without notifying: wake everyone to look again.
            queue.mutex.mark_consistent();
            queue.not_empty.notify(true);
            queue.not_full.notify(true);
            queue.all_done.notify(true);
            Ok(())
        }
        Err(Refused::Busy) => Err(LockFailed::Timeout),
        Err(Refused::NotRecoverable) => Err(LockFailed::NotRecoverable),
    }
}

impl QueueGuard<'_> {
    pub(crate) fn queue(&self) -> &RawQueue {
        self.queue
    }

    /// The ring's length in bytes.
    pub(crate) fn ring_len(&self) -> u64 {
        self.ring_len
    }

    /// The current counters.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let current = self.queue.commit.load(SeqCst);
        self.queue.snapshots[(current & 1) as usize].load()
    }

    /// Publishes `next` as the counters, in one store.
    pub(crate) fn commit(&mut self, next: &Snapshot) {
        let current = self.queue.commit.load(SeqCst);
        self.queue.snapshots[((current + 1) & 1) as usize].store(next);
        self.queue.commit.store(current.wrapping_add(1), SeqCst);
    }

    pub(crate) fn notify(&self, signal: Signal, all: bool) {
        self.queue.condvar(signal).notify(all);
    }

    /// Marks the queue closed and wakes every waiter.
    pub(crate) fn close(&mut self) {
        self.queue.closed.store(1, SeqCst);
        self.queue.not_empty.notify(true);
        self.queue.not_full.notify(true);
        self.queue.all_done.notify(true);
    }

    /// Waits, the lock released meanwhile, until `ready` holds for the counters, the queue is
    /// closed (if `stop_when_closed`), or `deadline` passes. Returns the counters and whether
    /// `ready` holds.
    pub(crate) fn wait_until(
        &mut self,
        signal: Signal,
        deadline: Option<Instant>,
        stop_when_closed: bool,
        ready: impl Fn(&Snapshot) -> bool,
    ) -> Result<(Snapshot, bool), LockFailed> {
        let mut spun = false;
        loop {
            let snapshot = self.snapshot();
            if ready(&snapshot) {
                return Ok((snapshot, true));
            }
            let closed = stop_when_closed && self.queue.is_closed();
            if closed || remaining(deadline) == Some(Duration::ZERO) {
                return Ok((snapshot, false));
            }
            let condvar = self.queue.condvar(signal);
            if !spun {
                // Poll without the lock and without registering, so that nobody pays a wake-up.
                spun = true;
                self.queue.mutex.unlock();
                let until = Instant::now() + SPIN;
                let until = deadline.map_or(until, |d| d.min(until));
                let done =
                    || ready(&self.queue.peek()) || (stop_when_closed && self.queue.is_closed());
                while !done() && Instant::now() < until {
                    std::hint::spin_loop();
                }
            } else {
                let seen = condvar.prepare_wait();
                self.queue.mutex.unlock();
                let nap = Instant::now() + NAP;
                condvar.wait(seen, Some(deadline.map_or(nap, |d| d.min(nap))));
            }
            if let Err(failed) = relock(self.queue, None) {
                self.held = false;
                return Err(failed);
            }
        }
    }

    /// Writes `bytes` at ring position `position` (wrapping at the end).
    pub(crate) fn write(&mut self, position: u64, bytes: &[u8]) {
        let len = bytes.len() as u64;
        assert!(len <= self.ring_len, "a write larger than the ring");
        let start = position % self.ring_len;
        let first = len.min(self.ring_len - start) as usize;
        // SAFETY: `start + first <= ring_len` and `bytes.len() - first <= start`: both copies stay
        // inside the ring, which lives in the mapped segment as long as the guard borrows it. The
        // lock is held; the bytes written are free space that no process reads until a commit
        // publishes them.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ring.add(start as usize), first);
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr().add(first),
                self.ring,
                bytes.len() - first,
            );
        }
    }

    /// Reads `out.len()` bytes from ring position `position` (wrapping at the end).
    pub(crate) fn read(&self, position: u64, out: &mut [u8]) {
        let len = out.len() as u64;
        assert!(len <= self.ring_len, "a read larger than the ring");
        let start = position % self.ring_len;
        let first = len.min(self.ring_len - start) as usize;
        // SAFETY: in bounds as in `write`; the lock is held, and the bytes are a committed record,
        // which no process changes until a commit frees them.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ring.add(start as usize), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(
                self.ring,
                out.as_mut_ptr().add(first),
                out.len() - first,
            );
        }
    }

    /// Writes a record's header at `position`.
    pub(crate) fn write_header(&mut self, position: u64, kind: u32, len: usize) {
        let header = (u64::from(kind) << 32) | len as u64;
        self.write(position, &header.to_le_bytes());
    }

    /// Reads the header at `position`: the record's kind and payload length.
    pub(crate) fn read_header(&self, position: u64) -> (u32, usize) {
        let mut header = [0u8; 8];
        self.read(position, &mut header);
        let header = u64::from_le_bytes(header);
        ((header >> 32) as u32, (header & 0xffff_ffff) as usize)
    }
}

impl Drop for QueueGuard<'_> {
    fn drop(&mut self) {
        if self.held {
            self.queue.mutex.unlock();
        }
    }
}
