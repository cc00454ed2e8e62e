//! The objects whose operations wait: locks, recursive locks, semaphores, conditions, events,
//! barriers and queues. A wait releases the table ([`Server::wait_for`]), and gives up when its
//! caller's connection hangs up: a dead waiter takes no lock, no permit and no item.
//!
//! Locks (and a condition's lock) belong to the owner that took them ([`Owner`]: a proxy handle of
//! a client): when the client ends (its last connection does) or the owner does (`owner.end`),
//! they are released with `owner_died` set, and the next taker is told. Semaphore permits belong to nobody,
//! as in Python (one process may acquire and another release, to signal), so a process that dies
//! holding one does not give it back; use a lock for exclusion that survives a death.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use rmpv::Value;

use super::super::ErrorCode;
use super::super::protocol::Op;
use super::super::protocol::wire::WireError;
use super::data::{arg, bad, not_exposed};
use super::table::{Object, Table, unknown};
use super::{Caller, Server, Waited};

/// Who holds a lock: an owner among a client's (each proxy handle is one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) client: u64,
    pub(crate) handle: u64,
}

/// A lock's state. `depth` counts a recursive lock's acquisitions by its owner; `fence` every
/// acquisition so far (a fencing token: it only grows).
#[derive(Default)]
pub(crate) struct Lock {
    owner: Option<Owner>,
    depth: u32,
    owner_died: bool,
    fence: u64,
}

/// A counting semaphore; a bounded one refuses to go above its bound.
pub(crate) struct Semaphore {
    value: u64,
    bound: Option<u64>,
}

impl Semaphore {
    pub(crate) fn new(value: u64, bounded: bool) -> Semaphore {
        Semaphore {
            value,
            bound: bounded.then_some(value),
        }
    }

    pub(crate) fn is_bounded(&self) -> bool {
        self.bound.is_some()
    }
}

/// A condition: a recursive lock, and the waiters in the order they came, each a ticket.
#[derive(Default)]
pub(crate) struct Condition {
    lock: Lock,
    next_ticket: u64,
    waiting: VecDeque<u64>,
    notified: HashSet<u64>,
}

/// A barrier. Each round is a generation; a round that ended by `reset` is remembered, so that its
/// waiters learn that it broke.
pub(crate) struct Barrier {
    parties: u64,
    count: u64,
    generation: u64,
    broken: bool,
    reset: BTreeSet<u64>,
}

impl Barrier {
    pub(crate) fn new(parties: u64) -> Barrier {
        Barrier {
            parties,
            count: 0,
            generation: 0,
            broken: false,
            reset: BTreeSet::new(),
        }
    }
}

/// Reset rounds remembered, at most.
const RESETS_KEPT: usize = 1024;

/// A queue; every item put counts as unfinished until a `task_done` (Python's manager queue is a
/// `queue.Queue`, joinable). The items each client took and did not declare done are counted per
/// client: when it ends, they are lost, no longer unfinished, and the next `join` to end reports
/// them.
pub(crate) struct Queue {
    items: VecDeque<Value>,
    /// `None`: no limit.
    max_items: Option<usize>,
    unfinished: u64,
    /// Items taken and not declared done, by client.
    held: HashMap<u64, u64>,
    /// Items lost with clients that ended holding them, and of those, how many a `join`
    /// reported.
    lost: u64,
    reported: u64,
    closed: bool,
}

impl Queue {
    pub(crate) fn new(max_items: Option<usize>) -> Queue {
        Queue {
            items: VecDeque::new(),
            max_items,
            unfinished: 0,
            held: HashMap::new(),
            lost: 0,
            reported: 0,
            closed: false,
        }
    }

    /// The items waiting, oldest first.
    pub(crate) fn items(&self) -> impl Iterator<Item = &Value> {
        self.items.iter()
    }

    /// `client` declared an item done: one of its own, else one of another holder (any client
    /// may call `task_done`).
    fn declare_done(&mut self, client: u64) {
        self.unfinished -= 1;
        let holder = match self.held.get(&client) {
            Some(_) => Some(client),
            None => self.held.keys().next().copied(),
        };
        if let Some(holder) = holder
            && let Some(n) = self.held.get_mut(&holder)
        {
            *n -= 1;
            if *n == 0 {
                self.held.remove(&holder);
            }
        }
    }

    /// `client` ended: what it held is lost. Whether it held anything.
    fn holder_gone(&mut self, client: u64) -> bool {
        let Some(held) = self.held.remove(&client) else {
            return false;
        };
        let lost = held.min(self.unfinished);
        self.unfinished -= lost;
        self.lost += lost;
        true
    }

    fn has_room(&self) -> bool {
        self.max_items.is_none_or(|max| self.items.len() < max)
    }
}

fn closed() -> WireError {
    WireError::new(ErrorCode::Closed, "the queue is closed")
}

/// Argument `index` as a deadline: milliseconds from now, or nil for none.
pub(crate) fn deadline_arg(args: &[Value], index: usize) -> Result<Option<Instant>, WireError> {
    match args.get(index) {
        None | Some(Value::Nil) => Ok(None),
        Some(ms) => {
            let ms = ms
                .as_u64()
                .ok_or_else(|| bad("a timeout is in milliseconds"))?;
            // A timeout too far to represent is no timeout.
            Ok(Instant::now().checked_add(Duration::from_millis(ms)))
        }
    }
}

fn wrong_kind(object: u64, what: &str) -> WireError {
    WireError::new(
        ErrorCode::NotExposed,
        format!("object {object} is not {what}"),
    )
}

/// The lock of `object` (a lock, a recursive lock, or a condition's), and whether it is
/// recursive.
fn lock_in(table: &mut Table, object: u64) -> Result<(&mut Lock, bool), WireError> {
    match table.get_mut(object)? {
        Object::Lock(lock) => Ok((lock, false)),
        Object::RLock(lock) => Ok((lock, true)),
        Object::Condition(condition) => Ok((&mut condition.lock, true)),
        _ => Err(wrong_kind(object, "a lock")),
    }
}

/// Takes `lock` for `me` if it can: `"acquired"`, or `"owner_died"` when the previous holder's
/// connection ended holding it.
fn try_take(lock: &mut Lock, me: Owner, recursive: bool) -> Result<Option<Value>, WireError> {
    if lock.owner == Some(me) {
        if !recursive {
            return Err(WireError::new(
                ErrorCode::WouldDeadlock,
                "this handle already holds the lock",
            ));
        }
        lock.depth += 1;
        return Ok(Some(Value::from("acquired")));
    }
    if lock.owner.is_some() {
        return Ok(None);
    }
    lock.owner = Some(me);
    lock.depth = 1;
    lock.fence += 1;
    let died = std::mem::take(&mut lock.owner_died);
    Ok(Some(Value::from(if died {
        "owner_died"
    } else {
        "acquired"
    })))
}

fn not_owner() -> WireError {
    WireError::new(ErrorCode::NotOwner, "the lock is not held by this handle")
}

/// Releases one acquisition of `lock` by `me`; true when it is free now.
fn release(lock: &mut Lock, me: Owner) -> Result<bool, WireError> {
    if lock.owner != Some(me) {
        return Err(not_owner());
    }
    lock.depth -= 1;
    if lock.depth == 0 {
        lock.owner = None;
    }
    Ok(lock.owner.is_none())
}

/// `fn $name(table, object) -> &mut $type`: object `object` as the kind `$variant`.
macro_rules! object_in {
    ($name:ident, $variant:ident, $type:ty, $what:literal) => {
        fn $name(table: &mut Table, object: u64) -> Result<&mut $type, WireError> {
            match table.get_mut(object)? {
                Object::$variant(inner) => Ok(inner),
                _ => Err(wrong_kind(object, $what)),
            }
        }
    };
}

object_in!(semaphore_in, Semaphore, Semaphore, "a semaphore");
object_in!(condition_in, Condition, Condition, "a condition");
object_in!(event_in, Event, bool, "an event");
object_in!(barrier_in, Barrier, Barrier, "a barrier");
object_in!(queue_in, Queue, Queue, "a queue");

fn broken_barrier() -> WireError {
    WireError::new(ErrorCode::BrokenBarrier, "the barrier is broken")
}

/// The reply of a wait that ran out of time.
fn timeout() -> Value {
    Value::from("timeout")
}

impl Server {
    /// Releases the locks `client` held, marking their holder dead, counts lost the queue items
    /// it held, and wakes the waiters: the client ended (its last connection did).
    /// Then gives up every hold it had: what only it held is freed.
    pub(crate) fn release_client(&self, client: u64) {
        self.release_where(|owner| owner.client == client, Some(client));
        if self.lock_table().client_gone(client) {
            self.changed.notify_all();
        }
    }

    /// Releases the locks `owner` held, marking their holder dead, and wakes the waiters: the
    /// handle that took them was dropped without releasing them (`owner.end`).
    pub(crate) fn release_owner(&self, owner: Owner) {
        self.release_where(|held| held == owner, None);
    }

    fn release_where(&self, releases: impl Fn(Owner) -> bool, client: Option<u64>) {
        let mut table = self.lock_table();
        let mut released = false;
        for object in table.objects.values_mut() {
            let lock = match object {
                Object::Lock(lock) | Object::RLock(lock) => lock,
                Object::Condition(condition) => &mut condition.lock,
                Object::Queue(queue) => {
                    if let Some(client) = client {
                        released |= queue.holder_gone(client);
                    }
                    continue;
                }
                _ => continue,
            };
            if lock.owner.is_some_and(&releases) {
                lock.owner = None;
                lock.depth = 0;
                lock.owner_died = true;
                released = true;
            }
        }
        if released {
            self.changed.notify_all();
        }
    }

    /// Runs a waiting object's operation `op` on `object`.
    pub(crate) fn run_wait(
        &self,
        table: std::sync::MutexGuard<'_, Table>,
        caller: &Caller<'_>,
        object: u64,
        op: Op,
        args: &[Value],
        references: bool,
    ) -> Result<Value, WireError> {
        let me = caller.owner();
        match op {
            Op::LockAcquire => {
                let deadline = deadline_arg(args, 0)?;
                let with_fence = args.get(1).and_then(Value::as_bool) == Some(true);
                let waited = self.wait(table, caller, deadline, |table| {
                    let (lock, recursive) = lock_in(table, object)?;
                    let taken = try_take(lock, me, recursive)?;
                    Ok(match (taken, with_fence) {
                        (Some(status), true) => {
                            Some(Value::Array(vec![status, Value::from(lock.fence)]))
                        }
                        (taken, _) => taken,
                    })
                });
                finish(waited?)
            }
            Op::LockRelease => {
                let mut table = table;
                if release(lock_in(&mut table, object)?.0, me)? {
                    self.changed.notify_all();
                }
                Ok(Value::Nil)
            }
            Op::LockState => {
                let mut table = table;
                let (lock, _) = lock_in(&mut table, object)?;
                let mine = if lock.owner == Some(me) {
                    lock.depth
                } else {
                    0
                };
                Ok(Value::Array(vec![
                    Value::from(lock.owner.is_some()),
                    Value::from(mine),
                ]))
            }
            Op::SemaphoreAcquire => {
                let deadline = deadline_arg(args, 0)?;
                let waited = self.wait(table, caller, deadline, |table| {
                    let semaphore = semaphore_in(table, object)?;
                    Ok((semaphore.value > 0).then(|| {
                        semaphore.value -= 1;
                        Value::from("acquired")
                    }))
                });
                finish(waited?)
            }
            Op::SemaphoreRelease => {
                let mut table = table;
                let semaphore = semaphore_in(&mut table, object)?;
                if semaphore
                    .bound
                    .is_some_and(|bound| semaphore.value >= bound)
                {
                    return Err(WireError::new(
                        ErrorCode::TooManyReleases,
                        "the bounded semaphore is released more times than acquired",
                    ));
                }
                semaphore.value += 1;
                self.changed.notify_all();
                Ok(Value::Nil)
            }
            Op::SemaphoreValue => {
                let mut table = table;
                Ok(Value::from(semaphore_in(&mut table, object)?.value))
            }
            Op::ConditionWait => self.condition_wait(table, caller, object, args),
            Op::ConditionNotify => {
                let mut table = table;
                let condition = condition_in(&mut table, object)?;
                let n = match args.first() {
                    None | Some(Value::Nil) => condition.waiting.len(),
                    Some(n) => n
                        .as_u64()
                        .ok_or_else(|| bad("notify takes a count or nil"))?
                        .try_into()
                        .unwrap_or(usize::MAX),
                };
                let woken: Vec<u64> = (0..n)
                    .map_while(|_| condition.waiting.pop_front())
                    .collect();
                let count = woken.len();
                condition.notified.extend(woken);
                if count > 0 {
                    self.changed.notify_all();
                }
                Ok(Value::from(count))
            }
            Op::EventSet | Op::EventClear => {
                let mut table = table;
                *event_in(&mut table, object)? = op == Op::EventSet;
                self.changed.notify_all();
                Ok(Value::Nil)
            }
            Op::EventIsSet => {
                let mut table = table;
                Ok(Value::from(*event_in(&mut table, object)?))
            }
            Op::EventWait => {
                let deadline = deadline_arg(args, 0)?;
                let waited = self.wait(table, caller, deadline, |table| {
                    Ok(event_in(table, object)?.then_some(Value::Nil))
                });
                finish(waited?)
            }
            Op::BarrierWait => self.barrier_wait(table, caller, object, args),
            Op::BarrierAbort => {
                let mut table = table;
                barrier_in(&mut table, object)?.broken = true;
                self.changed.notify_all();
                Ok(Value::Nil)
            }
            Op::BarrierReset => {
                let mut table = table;
                let barrier = barrier_in(&mut table, object)?;
                if barrier.count > 0 {
                    barrier.reset.insert(barrier.generation);
                    if barrier.reset.len() > RESETS_KEPT {
                        barrier.reset.pop_first();
                    }
                }
                barrier.generation += 1;
                barrier.count = 0;
                barrier.broken = false;
                self.changed.notify_all();
                Ok(Value::Nil)
            }
            Op::BarrierState => {
                let mut table = table;
                let barrier = barrier_in(&mut table, object)?;
                Ok(Value::Array(vec![
                    Value::from(barrier.parties),
                    Value::from(if barrier.broken { 0 } else { barrier.count }),
                    Value::from(barrier.broken),
                ]))
            }
            Op::QueuePut => {
                let item = arg(args, 0)?.clone();
                let deadline = deadline_arg(args, 1)?;
                if references {
                    table.check_references(args)?;
                }
                let waited = self.wait(table, caller, deadline, |table| {
                    let queue = queue_in(table, object)?;
                    if queue.closed {
                        return Err(closed());
                    }
                    if !queue.has_room() {
                        return Ok(None);
                    }
                    queue.items.push_back(item.clone());
                    queue.unfinished += 1;
                    if references {
                        table.contain(object, &[&item]);
                    }
                    Ok(Some(Value::Nil))
                })?;
                self.notify_if_done(&waited);
                finish(waited)
            }
            Op::QueueGet => {
                let deadline = deadline_arg(args, 0)?;
                let waited = self.wait(table, caller, deadline, |table| {
                    let queue = queue_in(table, object)?;
                    match queue.items.pop_front() {
                        Some(item) => {
                            *queue.held.entry(caller.client).or_default() += 1;
                            // The item's references become the getter's, then leave the queue.
                            let reply = Value::Array(vec![item]);
                            table.hand_over(caller.client, &reply);
                            table.uncontain(object, std::slice::from_ref(&reply));
                            Ok(Some(reply))
                        }
                        None if queue.closed => Err(closed()),
                        None => Ok(None),
                    }
                })?;
                self.notify_if_done(&waited);
                finish(waited)
            }
            Op::QueueState => {
                let mut table = table;
                let queue = queue_in(&mut table, object)?;
                Ok(Value::Array(vec![
                    Value::from(queue.items.len()),
                    queue.max_items.map_or(Value::Nil, Value::from),
                    Value::from(queue.closed),
                    Value::from(queue.unfinished),
                ]))
            }
            Op::QueueClose => {
                let mut table = table;
                queue_in(&mut table, object)?.closed = true;
                self.changed.notify_all();
                Ok(Value::Nil)
            }
            Op::QueueTaskDone => {
                let mut table = table;
                let queue = queue_in(&mut table, object)?;
                if queue.unfinished == 0 {
                    return Err(WireError::new(
                        ErrorCode::TooManyTaskDone,
                        "task_done called more times than items were put",
                    ));
                }
                queue.declare_done(caller.client);
                if queue.unfinished == 0 {
                    self.changed.notify_all();
                }
                Ok(Value::Nil)
            }
            Op::QueueJoin => {
                let deadline = deadline_arg(args, 0)?;
                let waited = self.wait(table, caller, deadline, |table| {
                    let queue = queue_in(table, object)?;
                    if queue.unfinished > 0 {
                        return Ok(None);
                    }
                    let unreported = queue.lost - queue.reported;
                    queue.reported = queue.lost;
                    Ok(Some(match unreported {
                        0 => Value::Nil,
                        n => Value::from(n),
                    }))
                });
                finish(waited?)
            }
            _ => match table.objects.get(&object) {
                Some(_) => Err(not_exposed(op.name(), "this object")),
                None => Err(unknown(object)),
            },
        }
    }

    /// Wakes the waiters if the wait changed something (an item put or taken).
    fn notify_if_done<T>(&self, waited: &Waited<T>) {
        if matches!(waited, Waited::Done(_)) {
            self.changed.notify_all();
        }
    }

    /// `condition.wait [timeout_ms or nil]`: releases the condition's lock (all of this owner's
    /// acquisitions), waits to be notified or the timeout, then takes the lock back as it was.
    /// Gives `[notified, owner_died]`.
    fn condition_wait(
        &self,
        mut table: std::sync::MutexGuard<'_, Table>,
        caller: &Caller<'_>,
        object: u64,
        args: &[Value],
    ) -> Result<Value, WireError> {
        let me = caller.owner();
        let deadline = deadline_arg(args, 0)?;
        let condition = condition_in(&mut table, object)?;
        if condition.lock.owner != Some(me) {
            return Err(WireError::new(
                ErrorCode::NotOwner,
                "cannot wait on a condition whose lock this handle does not hold",
            ));
        }
        let depth = condition.lock.depth;
        condition.lock.owner = None;
        condition.lock.depth = 0;
        let ticket = condition.next_ticket;
        condition.next_ticket += 1;
        condition.waiting.push_back(ticket);
        self.changed.notify_all();
        let (mut table, waited) = self.wait_for(table, caller, deadline, |table| {
            Ok(condition_in(table, object)?
                .notified
                .remove(&ticket)
                .then_some(()))
        });
        let notified = match waited? {
            Waited::Done(()) => true,
            Waited::TimedOut | Waited::CallerGone => {
                let condition = condition_in(&mut table, object)?;
                condition.waiting.retain(|&t| t != ticket);
                // Notified between the last look and now: it counts.
                condition.notified.remove(&ticket)
            }
        };
        // Take the lock back, waiting as long as it takes (as Python does); a caller that hung
        // up gets it no more than anything else (the wait looks before its first attempt).
        let waited = self.wait(table, caller, None, |table| {
            let condition = condition_in(table, object)?;
            if condition.lock.owner.is_some() {
                return Ok(None);
            }
            condition.lock.owner = Some(me);
            condition.lock.depth = depth;
            condition.lock.fence += 1;
            Ok(Some(std::mem::take(&mut condition.lock.owner_died)))
        });
        match waited? {
            Waited::Done(owner_died) => Ok(Value::Array(vec![
                Value::from(notified),
                Value::from(owner_died),
            ])),
            Waited::TimedOut | Waited::CallerGone => Err(caller_gone()),
        }
    }

    /// `barrier.wait [timeout_ms or nil]`: the arrival index (0 for the first), once every party
    /// came. A timeout breaks the barrier for everyone, as does a waiter that hangs up.
    fn barrier_wait(
        &self,
        mut table: std::sync::MutexGuard<'_, Table>,
        caller: &Caller<'_>,
        object: u64,
        args: &[Value],
    ) -> Result<Value, WireError> {
        let deadline = deadline_arg(args, 0)?;
        let barrier = barrier_in(&mut table, object)?;
        if barrier.broken {
            return Err(broken_barrier());
        }
        let index = barrier.count;
        let generation = barrier.generation;
        barrier.count += 1;
        if barrier.count == barrier.parties {
            barrier.count = 0;
            barrier.generation += 1;
            self.changed.notify_all();
            return Ok(Value::from(index));
        }
        let (mut table, waited) = self.wait_for(table, caller, deadline, |table| {
            let barrier = barrier_in(table, object)?;
            if barrier.generation != generation {
                return Ok(Some(!barrier.reset.contains(&generation)));
            }
            Ok(barrier.broken.then_some(false))
        });
        match waited? {
            Waited::Done(true) => Ok(Value::from(index)),
            outcome => {
                let barrier = barrier_in(&mut table, object)?;
                if barrier.generation == generation {
                    // Still this round: it breaks (if it had not), and this waiter leaves it.
                    barrier.broken = true;
                    barrier.count = barrier.count.saturating_sub(1);
                    self.changed.notify_all();
                }
                match outcome {
                    Waited::CallerGone => Err(caller_gone()),
                    // This waiter's deadline broke the barrier: it is told so (the others are
                    // told `BrokenBarrier`).
                    Waited::TimedOut => Ok(timeout()),
                    _ => Err(broken_barrier()),
                }
            }
        }
    }
}

/// A wait's reply: its value, or `"timeout"`.
fn finish(waited: Waited<Value>) -> Result<Value, WireError> {
    match waited {
        Waited::Done(value) => Ok(value),
        Waited::TimedOut => Ok(timeout()),
        Waited::CallerGone => Err(caller_gone()),
    }
}

const CALLER_GONE: &str = "CallerGone";

/// The error of a wait whose caller hung up; nobody reads it.
pub(crate) fn caller_gone() -> WireError {
    WireError::new(ErrorCode::Other(CALLER_GONE.into()), "the caller hung up")
}

pub(crate) fn is_caller_gone(error: &WireError) -> bool {
    error.code == CALLER_GONE
}
