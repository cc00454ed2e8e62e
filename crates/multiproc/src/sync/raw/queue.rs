//! [`RawQueue`]: a queue's state in shared memory, in front of a ring of records that follows it
//! in the same segment. Two robust locks, one for putters and one for getters, so that a producer
//! and a consumer do not take turns on one lock; three condition variables; and each side's
//! counters, which only that side changes and the other side reads without its lock.
//!
//! # Consistency across a holder's death
//!
//! Each side's counters ([`PutCounters`], [`GetCounters`]) exist twice. A holder changes them by
//! writing the spare copy, then bumping that side's `commit`: one store publishes the whole
//! change, and a process killed at any point leaves either the old counters or the new ones,
//! never a mix. A record is written into free space before the commit that makes it visible, and
//! copied out before the commit that frees it; so after a holder's death the next one finds a
//! consistent queue and only has to wake everybody (the dead one may have committed without
//! notifying). Readers of the other side's counters use the seqlock protocol on `commit`.
//!
//! All counters only grow, so a stale view of the other side is a cautious one: fewer items than
//! there are, less room than there is.
//!
//! # The ring
//!
//! The ring holds records (laid out by `channel::queue::record`); this module moves bytes in and
//! out of it. Positions (`head`, `tail`) count bytes since creation and are taken modulo the
//! ring's length.
//!
//! # Holders
//!
//! A joinable queue also knows which processes hold the items they took ([`Holders`]), updated
//! with every commit of the getters' counters, so that the items of a consumer that died before
//! declaring them done can be counted lost ([`QueueGuard::resolve_dead_holder`]).

use std::marker::PhantomData;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicU32, AtomicU64, fence};
use std::time::{Duration, Instant};

use super::condvar::RawCondvar;
use super::holders::Holders;
use super::{Acquired, RawMutex, Refused};
use crate::deadline::remaining;
use crate::shm::{Kind, Object, SharedState};
use crate::spin::Spinner;

/// What the putters have done, in total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PutCounters {
    /// Position after the newest record.
    pub(crate) tail: u64,
    /// Items put.
    pub(crate) items: u64,
    /// Of which on the side channel.
    pub(crate) side_items: u64,
    /// Bytes of side-channel items put (counted against the budget while in flight).
    pub(crate) side_bytes: u64,
    /// The tag of the next side-channel item.
    pub(crate) next_tag: u64,
}

/// What the getters have done, in total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GetCounters {
    /// Position of the oldest record.
    pub(crate) head: u64,
    /// Items taken.
    pub(crate) items: u64,
    /// Of which from the side channel.
    pub(crate) side_items: u64,
    /// Bytes of side-channel items taken.
    pub(crate) side_bytes: u64,
    /// Items declared done (`JoinableQueue::task_done`).
    pub(crate) done: u64,
}

/// Both sides' counters: exact for the side whose lock is held, a recent view of the other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct View {
    pub(crate) put: PutCounters,
    pub(crate) get: GetCounters,
}

impl View {
    /// Items in the queue.
    pub(crate) fn len(&self) -> u64 {
        self.put.items.saturating_sub(self.get.items)
    }

    /// Ring bytes in use.
    pub(crate) fn used(&self) -> u64 {
        self.put.tail.saturating_sub(self.get.head)
    }

    /// Side-channel items in flight.
    pub(crate) fn side_items(&self) -> u64 {
        self.put.side_items.saturating_sub(self.get.side_items)
    }

    /// Side-channel bytes in flight.
    pub(crate) fn side_bytes(&self) -> u64 {
        self.put.side_bytes.saturating_sub(self.get.side_bytes)
    }

    /// Items put and not yet declared done.
    pub(crate) fn unfinished(&self) -> u64 {
        self.put.items.saturating_sub(self.get.done)
    }
}

/// Five counters, twice, and the commit word that says which copy is current.
#[repr(C)]
struct Committed {
    /// Bumped by every commit; `commit & 1` selects the current copy.
    commit: AtomicU32,
    copies: [[AtomicU64; 5]; 2],
}

impl Committed {
    const fn new() -> Committed {
        Committed {
            commit: AtomicU32::new(0),
            copies: [const { [const { AtomicU64::new(0) }; 5] }; 2],
        }
    }

    /// The current copy, read by the side's lock holder.
    fn load_held(&self) -> [u64; 5] {
        let current = self.commit.load(Relaxed);
        self.copies[(current & 1) as usize]
            .each_ref()
            .map(|c| c.load(Relaxed))
    }

    /// The current copy, read without the side's lock (the seqlock reader).
    fn peek(&self) -> [u64; 5] {
        loop {
            let before = self.commit.load(SeqCst);
            let values = self.copies[(before & 1) as usize]
                .each_ref()
                .map(|c| c.load(Relaxed));
            // If a load above saw a later writer's store, the load below sees that writer's
            // commit (or a later one), and the copy is discarded.
            fence(Acquire);
            if self.commit.load(Relaxed) == before {
                return values;
            }
        }
    }

    /// Publishes `values` in one store (the seqlock writer; the side's lock is held). The release
    /// fence keeps the spare copy's stores after the commit that retired it, so a reader of that
    /// copy sees the commit move on; the store is SeqCst so that a waiter that registered before
    /// reading it is seen by the notification that follows.
    fn commit(&self, values: [u64; 5]) {
        let current = self.commit.load(Relaxed);
        let next = current.wrapping_add(1);
        fence(Release);
        for (slot, value) in self.copies[(next & 1) as usize].iter().zip(values) {
            slot.store(value, Relaxed);
        }
        self.commit.store(next, SeqCst);
    }
}

impl PutCounters {
    fn from_array([tail, items, side_items, side_bytes, next_tag]: [u64; 5]) -> Self {
        PutCounters {
            tail,
            items,
            side_items,
            side_bytes,
            next_tag,
        }
    }

    fn to_array(self) -> [u64; 5] {
        [
            self.tail,
            self.items,
            self.side_items,
            self.side_bytes,
            self.next_tag,
        ]
    }
}

impl GetCounters {
    fn from_array([head, items, side_items, side_bytes, done]: [u64; 5]) -> Self {
        GetCounters {
            head,
            items,
            side_items,
            side_bytes,
            done,
        }
    }

    fn to_array(self) -> [u64; 5] {
        [
            self.head,
            self.items,
            self.side_items,
            self.side_bytes,
            self.done,
        ]
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

/// Which lock a guard holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Putters: the tail, and what was put.
    Put,
    /// Getters: the head, and what was taken or done.
    Get,
}

/// Keeps each side's hot words on cache lines of their own.
#[repr(C, align(64))]
struct Line<T>(T);

/// One side's lock, and its last view of the other side's counters: a cache, used under the lock,
/// so that a putter reads the getters' line only when the ring looks full, and a getter the
/// putters' only when it looks empty. A stale view is a cautious one (see the module's notes).
#[repr(C)]
struct SideLock {
    mutex: RawMutex,
    other: [AtomicU64; 5],
}

impl SideLock {
    const fn new() -> SideLock {
        SideLock {
            mutex: RawMutex::new(),
            other: [const { AtomicU64::new(0) }; 5],
        }
    }

    fn cached(&self) -> [u64; 5] {
        self.other.each_ref().map(|c| c.load(Relaxed))
    }

    fn cache(&self, values: [u64; 5]) {
        for (slot, value) in self.other.iter().zip(values) {
            slot.store(value, Relaxed);
        }
    }
}

/// The shared state of a queue. Fixed at creation: `max_items`, `side_budget`.
#[repr(C)]
pub(crate) struct RawQueue {
    put_lock: Line<SideLock>,
    puts: Line<Committed>,
    get_lock: Line<SideLock>,
    gets: Line<Committed>,
    not_empty: Line<RawCondvar>,
    not_full: Line<RawCondvar>,
    all_done: RawCondvar,
    closed: AtomicU32,
    /// 1 for a joinable queue: its getters keep `holders`.
    joinable: AtomicU32,
    max_items: AtomicU64,
    side_budget: AtomicU64,
    holders: Line<Holders>,
}

// SAFETY: repr(C), atomics only (Line is a transparent-layout wrapper); all-zero is an empty, open,
// plain queue (with zero limits, which `new` never writes) with free holder slots; alignment 64.
unsafe impl SharedState for RawQueue {
    const KIND: Kind = Kind::Queue;
}

/// How long a waiter sleeps before looking again by itself: the bound on the delay a process
/// killed between a commit and its notification can cause.
const NAP: Duration = Duration::from_millis(50);

/// Whether polling pays, for the waiters of each [`Signal`] in this process (see `crate::spin`).
static SPINNERS: [Spinner; 3] = [Spinner::new(), Spinner::new(), Spinner::new()];

impl RawQueue {
    pub(crate) const fn new(max_items: u64, side_budget: u64, joinable: bool) -> RawQueue {
        RawQueue {
            put_lock: Line(SideLock::new()),
            puts: Line(Committed::new()),
            get_lock: Line(SideLock::new()),
            gets: Line(Committed::new()),
            not_empty: Line(RawCondvar::new()),
            not_full: Line(RawCondvar::new()),
            all_done: RawCondvar::new(),
            closed: AtomicU32::new(0),
            joinable: AtomicU32::new(joinable as u32),
            max_items: AtomicU64::new(max_items),
            side_budget: AtomicU64::new(side_budget),
            holders: Line(Holders::new()),
        }
    }

    fn is_joinable(&self) -> bool {
        self.joinable.load(Relaxed) != 0
    }

    /// The items lost with dead consumers and not yet reported, now marked reported.
    pub(crate) fn report_lost(&self) -> u64 {
        self.holders.0.report_lost()
    }

    pub(crate) fn max_items(&self) -> u64 {
        self.max_items.load(Relaxed)
    }

    pub(crate) fn side_budget(&self) -> u64 {
        self.side_budget.load(Relaxed)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(SeqCst) != 0
    }

    /// Both sides' counters, read without a lock.
    pub(crate) fn peek(&self) -> View {
        // Getters' first: a view never shows more taken than put.
        let get = GetCounters::from_array(self.gets.0.peek());
        View {
            put: PutCounters::from_array(self.puts.0.peek()),
            get,
        }
    }

    /// Marks the queue closed and wakes every waiter.
    pub(crate) fn close(&self) {
        self.closed.store(1, SeqCst);
        self.wake_all();
    }

    fn wake_all(&self) {
        self.not_empty.0.notify(true);
        self.not_full.0.notify(true);
        self.all_done.notify(true);
    }

    fn condvar(&self, signal: Signal) -> &RawCondvar {
        match signal {
            Signal::NotEmpty => &self.not_empty.0,
            Signal::NotFull => &self.not_full.0,
            Signal::AllDone => &self.all_done,
        }
    }

    fn side_lock(&self, side: Side) -> &SideLock {
        match side {
            Side::Put => &self.put_lock.0,
            Side::Get => &self.get_lock.0,
        }
    }

    fn mutex(&self, side: Side) -> &RawMutex {
        &self.side_lock(side).mutex
    }

    /// The view as the holder of `side`'s lock sees it: its own side exact, the other as last
    /// read (`fresh`: read now, and remembered).
    fn view(&self, side: Side, fresh: bool) -> View {
        let lock = self.side_lock(side);
        let (own, other) = match side {
            Side::Put => (&self.puts.0, &self.gets.0),
            Side::Get => (&self.gets.0, &self.puts.0),
        };
        let other = if fresh {
            let values = other.peek();
            lock.cache(values);
            values
        } else {
            lock.cached()
        };
        let own = own.load_held();
        match side {
            Side::Put => View {
                put: PutCounters::from_array(own),
                get: GetCounters::from_array(other),
            },
            Side::Get => View {
                get: GetCounters::from_array(own),
                put: PutCounters::from_array(other),
            },
        }
    }
}

/// One side's lock of a queue, held, with access to its ring. Not `Send`: released by the thread
/// that took it.
pub(crate) struct QueueGuard<'a> {
    queue: &'a RawQueue,
    side: Side,
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

/// Takes `side`'s lock of the queue in `object`, waiting until `deadline`.
pub(crate) fn lock_queue(
    object: &Object<RawQueue, u8>,
    side: Side,
    deadline: Option<Instant>,
) -> Result<QueueGuard<'_>, LockFailed> {
    let queue = object.state();
    relock(queue, side, deadline)?;
    let (ring, ring_len) = object.values();
    Ok(QueueGuard {
        queue,
        side,
        ring,
        ring_len: ring_len as u64,
        held: true,
        _not_send: PhantomData,
    })
}

fn relock(queue: &RawQueue, side: Side, deadline: Option<Instant>) -> Result<(), LockFailed> {
    let mutex = queue.mutex(side);
    match mutex.lock(deadline) {
        Ok(Acquired::Clean) => Ok(()),
        Ok(Acquired::OwnerDied) => {
            // Nothing to repair (see the module's notes) but the remembered view, which the dead
            // holder may have left half-written, and the holders' slots, which it may have left
            // behind its commit; and it may have committed without notifying: wake everyone to
            // look again.
            queue.view(side, true);
            if side == Side::Get && queue.is_joinable() {
                let gets = GetCounters::from_array(queue.gets.0.load_held());
                queue.holders.0.repair(gets.items, gets.done);
            }
            mutex.mark_consistent();
            queue.wake_all();
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

    /// Both sides' counters: this side's exact, the other's as last read (cautious).
    pub(crate) fn view(&self) -> View {
        self.queue.view(self.side, false)
    }

    /// Both sides' counters: this side's exact, the other's read now.
    pub(crate) fn fresh_view(&self) -> View {
        self.queue.view(self.side, true)
    }

    /// Publishes the putters' counters (the put lock is held).
    pub(crate) fn commit_puts(&mut self, next: PutCounters) {
        assert_eq!(self.side, Side::Put, "putters' counters need the put lock");
        self.queue.puts.0.commit(next.to_array());
    }

    /// Publishes the getters' counters (the get lock is held), and for a joinable queue what this
    /// process now holds.
    pub(crate) fn commit_gets(&mut self, next: GetCounters) {
        assert_eq!(self.side, Side::Get, "getters' counters need the get lock");
        if !self.queue.is_joinable() {
            self.queue.gets.0.commit(next.to_array());
            return;
        }
        let holders = &self.queue.holders.0;
        let slot = holders.enter();
        let before = GetCounters::from_array(self.queue.gets.0.load_held());
        self.queue.gets.0.commit(next.to_array());
        crate::failpoint::check(crate::failpoint::Failpoint::QueueHoldersBehind);
        holders.record(
            slot,
            next.items.saturating_sub(before.items),
            next.done.saturating_sub(before.done),
        );
    }

    /// Counts lost the items of one consumer that died holding them (a joinable queue, the get
    /// lock held): they are done for `join`, and reported by it. Whether there was one.
    pub(crate) fn resolve_dead_holder(&mut self) -> bool {
        assert_eq!(self.side, Side::Get, "holders change under the get lock");
        let holders = &self.queue.holders.0;
        let Some((slot, holds)) = holders.dead_holder() else {
            return false;
        };
        let view = self.fresh_view();
        let lost = holds.min(view.unfinished());
        let gets = GetCounters {
            done: view.get.done + lost,
            ..view.get
        };
        holders.resolve(slot, lost, || self.queue.gets.0.commit(gets.to_array()));
        if view.unfinished() == lost {
            self.notify(Signal::AllDone, true);
        }
        true
    }

    pub(crate) fn notify(&self, signal: Signal, all: bool) {
        self.queue.condvar(signal).notify(all);
    }

    /// Waits, the lock released meanwhile, until `ready` holds for the counters, the queue is
    /// closed (if `stop_when_closed`), or `deadline` passes. Returns the counters and whether
    /// `ready` holds.
    ///
    /// The other side notifies after committing, so a waiter registers, then looks again, then
    /// sleeps: a commit it did not see finds it registered.
    pub(crate) fn wait_until(
        &mut self,
        signal: Signal,
        deadline: Option<Instant>,
        stop_when_closed: bool,
        ready: impl Fn(&View) -> bool,
    ) -> Result<(View, bool), LockFailed> {
        // The remembered view first: when it will do, the other side's line is not touched.
        let view = self.view();
        if ready(&view) {
            return Ok((view, true));
        }
        let spinner = &SPINNERS[signal as usize];
        let mut spun = false;
        let closed = || stop_when_closed && self.queue.is_closed();
        loop {
            let view = self.fresh_view();
            if ready(&view) {
                return Ok((view, true));
            }
            if closed() || remaining(deadline) == Some(Duration::ZERO) {
                return Ok((view, false));
            }
            let mutex = self.queue.mutex(self.side);
            let condvar = self.queue.condvar(signal);
            if !spun {
                // Poll without registering, so that nobody pays for a wake-up; but only while
                // polling pays (see `crate::spin`).
                spun = true;
                spinner.spin(deadline, || ready(&self.fresh_view()) || closed());
                continue;
            }
            let seen = condvar.prepare_wait();
            let view = self.fresh_view();
            if ready(&view) || closed() {
                condvar.cancel_wait();
                continue;
            }
            mutex.unlock();
            let nap = Instant::now() + NAP;
            condvar.wait(seen, Some(deadline.map_or(nap, |d| d.min(nap))));
            if let Err(failed) = relock(self.queue, self.side, None) {
                self.held = false;
                return Err(failed);
            }
        }
    }

    /// Writes `bytes` at ring position `position` (wrapping at the end).
    pub(crate) fn write(&mut self, position: u64, bytes: &[u8]) {
        assert_eq!(self.side, Side::Put, "only putters write the ring");
        let len = bytes.len() as u64;
        assert!(len <= self.ring_len, "a write larger than the ring");
        let start = position % self.ring_len;
        let first = len.min(self.ring_len - start) as usize;
        // SAFETY: `start + first <= ring_len` and `bytes.len() - first <= start`: both copies stay
        // inside the ring, which lives in the mapped segment as long as the guard borrows it. The
        // put lock is held, and the bytes are free space: the getters committed their removal
        // (the view read it with acquire ordering) and read them no more, and no getter reads
        // them again until a commit of ours publishes them.
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
        assert_eq!(self.side, Side::Get, "only getters read the ring");
        let len = out.len() as u64;
        assert!(len <= self.ring_len, "a read larger than the ring");
        let start = position % self.ring_len;
        let first = len.min(self.ring_len - start) as usize;
        // SAFETY: in bounds as in `write`; the get lock is held, and the bytes are a committed
        // record (the view read the putters' commit with acquire ordering), which no putter
        // changes until a commit of ours frees it.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ring.add(start as usize), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(
                self.ring,
                out.as_mut_ptr().add(first),
                out.len() - first,
            );
        }
    }
}

impl Drop for QueueGuard<'_> {
    /// Releases the lock; dropped while its thread panics, abandons it, and the next holder
    /// repairs as after a death.
    fn drop(&mut self) {
        if self.held {
            self.queue.mutex(self.side).release();
        }
    }
}
