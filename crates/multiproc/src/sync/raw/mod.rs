//! The raw states of the synchronization primitives: `#[repr(C)]` structs of atomics that live in
//! shared memory and are used through `&self` from every process that maps them, waiting on shared
//! futexes. Each documents its state machine next to its fields.

mod barrier;
mod condvar;
mod data;
mod event;
mod holders;
mod mutex;
mod queue;
mod semaphore;

pub(crate) use barrier::{BarrierWait, MAX_PARTIES, Parties, RawBarrier};
pub(crate) use condvar::RawCondition;
pub(crate) use data::{DataGuard, DataLock, atomic_at, lock_data, read_unlocked, write_unlocked};
pub(crate) use event::RawEvent;
pub(crate) use mutex::{Acquired, RawMutex, RawRLock, Refused};
pub(crate) use queue::{
    GetCounters, LockFailed, PutCounters, QueueGuard, RawQueue, Side, Signal, View, lock_queue,
};
pub(crate) use semaphore::RawSemaphore;
