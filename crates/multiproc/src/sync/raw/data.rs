//! Values in shared memory behind a [`RawMutex`]: the guard that hands them out, and atomic access
//! to integers without the lock.

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::Instant;

use super::{Acquired, RawMutex, Refused};
use crate::shm::{AtomicInteger, Kind, Object, SharedState, ShmSafe};

/// The lock in front of the values: a [`RawMutex`] under its own kind, so that a lock's
/// descriptor is never opened as values.
#[repr(transparent)]
pub(crate) struct DataLock(RawMutex);

// SAFETY: a RawMutex, which is SharedState.
unsafe impl SharedState for DataLock {
    const KIND: Kind = Kind::LockedData;
}

impl DataLock {
    pub(crate) const fn new() -> DataLock {
        DataLock(RawMutex::new())
    }
}

/// The values of a [`Value`](crate::Value) or [`Array`](crate::Array), held under their lock.
/// Not `Send`: it is released by the thread that took it.
pub(crate) struct DataGuard<'a, T> {
    mutex: &'a RawMutex,
    first: *mut T,
    len: usize,
    _not_send: PhantomData<*const ()>,
}

/// Takes the lock of `object` (without waiting if `try_only`) and hands out its values.
pub(crate) fn lock_data<T: ShmSafe>(
    object: &Object<DataLock, T>,
    try_only: bool,
    deadline: Option<Instant>,
) -> Result<(DataGuard<'_, T>, Acquired), Refused> {
    let mutex = &object.state().0;
    let acquired = if try_only {
        mutex.try_lock()?
    } else {
        mutex.lock(deadline)?
    };
    let (first, len) = object.values();
    Ok((
        DataGuard {
            mutex,
            first,
            len,
            _not_send: PhantomData,
        },
        acquired,
    ))
}

impl<T> DataGuard<'_, T> {
    /// Declares the values repaired after the previous holder died with the lock.
    pub(crate) fn mark_consistent(&self) {
        self.mutex.mark_consistent();
    }
}

impl<T> Deref for DataGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `first` points to `len` initialized values of T inside the mapped object, which
        // outlives the guard; the lock is held, and every process writes them only under it
        // (the atomic integer operations excepted, documented on `Value::fetch_add`).
        unsafe { std::slice::from_raw_parts(self.first, self.len) }
    }
}

impl<T> DerefMut for DataGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as for `deref`; the lock makes this the only access, and `&mut self` the only
        // reference handed out by this guard.
        unsafe { std::slice::from_raw_parts_mut(self.first, self.len) }
    }
}

impl<T> Drop for DataGuard<'_, T> {
    /// Releases the lock; dropped while its thread panics, abandons it: the next taker is told
    /// the values may be half-updated.
    fn drop(&mut self) {
        self.mutex.release();
    }
}

/// The value at `index`, seen as its atomic type, for lock-free operations.
#[inline]
pub(crate) fn atomic_at<T: AtomicInteger>(
    object: &Object<DataLock, T>,
    index: usize,
) -> &T::Atomic {
    let (first, len) = object.values();
    assert!(index < len, "index {index} out of bounds for {len} values");
    // SAFETY: in bounds; T and T::Atomic have the same size and alignment (checked where
    // AtomicInteger is implemented); the object outlives the returned reference; all processes
    // change the value only atomically or under the lock.
    unsafe { &*first.add(index).cast::<T::Atomic>() }
}

/// Reads value `index` without the lock: for a lock that is not recoverable, which nobody can hold.
pub(crate) fn read_unlocked<T: ShmSafe>(object: &Object<DataLock, T>, index: usize) -> T {
    let (first, len) = object.values();
    assert!(index < len, "index {index} out of bounds for {len} values");
    // SAFETY: in bounds, aligned, initialized, inside the mapped object; a volatile read because
    // another process may write the same bytes (the result is then some value a writer stored or a
    // mix of bytes, which ShmSafe types accept).
    unsafe { first.add(index).read_volatile() }
}

/// Writes value `index` without the lock (see [`read_unlocked`]).
pub(crate) fn write_unlocked<T: ShmSafe>(object: &Object<DataLock, T>, index: usize, value: T) {
    let (first, len) = object.values();
    assert!(index < len, "index {index} out of bounds for {len} values");
    // SAFETY: as in `read_unlocked`.
    unsafe { first.add(index).write_volatile(value) }
}
