//! [`Value`] and [`Array`]: plain data in shared memory, with a lock.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::deadline;
use crate::shm::{AtomicInteger, Object, ShmError, ShmSafe};
use crate::sync::raw::{
    Acquired, DataGuard, DataLock, Refused, atomic_at, lock_data, read_unlocked, write_unlocked,
};
use crate::sync::{AcquireError, AcquireTimeoutError, acquired, timed};

/// Values behind their lock: what `Value` and `Array` share.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent, bound = "")]
struct Locked<T: ShmSafe> {
    object: Object<DataLock, T>,
}

impl<T: ShmSafe> Locked<T> {
    /// A zero-sized type has no bytes to share, and an array of them no length that could
    /// travel: `Value<()>` and `Array<()>` are refused when the program is built.
    const NOT_ZERO_SIZED: () = assert!(
        size_of::<T>() > 0,
        "Value and Array hold types of one byte or more"
    );

    fn new(values: &[T]) -> Result<Self, ShmError> {
        let () = Self::NOT_ZERO_SIZED;
        Ok(Locked {
            object: Object::create(DataLock::new(), values)?,
        })
    }

    fn zeroed(len: usize) -> Result<Self, ShmError> {
        let () = Self::NOT_ZERO_SIZED;
        Ok(Locked {
            object: Object::create_zeroed(DataLock::new(), len)?,
        })
    }

    fn len(&self) -> usize {
        let () = Self::NOT_ZERO_SIZED;
        self.object.values().1
    }

    fn lock(
        &self,
        try_only: bool,
        deadline: Option<Instant>,
    ) -> Result<(DataGuard<'_, T>, Acquired), Refused> {
        let () = Self::NOT_ZERO_SIZED;
        lock_data(&self.object, try_only, deadline)
    }

    /// The values under the lock, for an operation that touches nothing but their bytes: a holder
    /// that died is taken over (it could only have left bytes half-written, which this operation
    /// overwrites or reports as they are). Only `None` if the lock is not recoverable.
    fn lock_for_copy(&self) -> Option<DataGuard<'_, T>> {
        match self.lock(false, None) {
            Ok((guard, Acquired::Clean)) => Some(guard),
            Ok((guard, Acquired::OwnerDied)) => {
                guard.mark_consistent();
                Some(guard)
            }
            Err(_) => None,
        }
    }
}

/// One value of plain data in shared memory, with its own lock. Clones, and copies passed to other
/// processes, are the same value. Python's `multiprocessing.Value`.
///
/// `T` has one byte or more: a zero-sized type is refused when the program is built.
///
/// ```compile_fail
/// let nothing = multiproc::Value::new(()); // zero-sized: refused
/// ```
///
/// [`get`](Self::get) and [`set`](Self::set) each take the lock; a read-modify-write needs it held
/// across, with [`update`](Self::update) or [`lock`](Self::lock) (Python's `v.value += 1` is *not*
/// atomic). Integers also have [`fetch_add`](Self::fetch_add) and
/// [`compare_exchange`](Self::compare_exchange), atomic without the lock.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{Process, Value};
///
/// let counter = Value::new(0i64)?;
/// let child = Process::spawn((counter.clone(), 5), |(c, n): (Value<i64>, i64)| {
///     c.fetch_add(n);
///     n * 2
/// })?;
/// assert_eq!(child.join()?, 10);
/// assert_eq!(counter.get(), 5);
/// counter.update(|v| *v *= 3).expect("nobody died");
/// assert_eq!(counter.get(), 15);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent, bound = "")]
pub struct Value<T: ShmSafe> {
    locked: Locked<T>,
}

/// Holds a [`Value`]'s lock; derefs to the value.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ValueGuard<'a, T> {
    guard: DataGuard<'a, T>,
}

impl<T: ShmSafe> Value<T> {
    /// A new shared value.
    pub fn new(value: T) -> Result<Value<T>, ShmError> {
        Ok(Value {
            locked: Locked::new(&[value])?,
        })
    }

    /// The value, read under the lock.
    ///
    /// A holder that died is taken over (see [`Value::lock`] to be told); if the lock is not
    /// recoverable, the value is read without it.
    pub fn get(&self) -> T {
        match self.locked.lock_for_copy() {
            Some(guard) => guard[0],
            None => self.read_unlocked(),
        }
    }

    /// Sets the value under the lock (taking over a dead holder's lock, as [`get`](Self::get)).
    pub fn set(&self, value: T) {
        match self.locked.lock_for_copy() {
            Some(mut guard) => guard[0] = value,
            None => self.write_unlocked(value),
        }
    }

    fn read_unlocked(&self) -> T {
        read_unlocked(&self.locked.object, 0)
    }

    fn write_unlocked(&self, value: T) {
        write_unlocked(&self.locked.object, 0, value)
    }

    /// Runs `f` on the value with the lock held, and returns what it returns.
    pub fn update<R>(
        &self,
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<R, AcquireError<ValueGuard<'_, T>>> {
        let mut guard = self.lock()?;
        Ok(f(&mut guard))
    }

    /// Takes the lock; the guard derefs to the value. A holder that died, or whose thread
    /// panicked holding the guard, is told to the next taker as [`AcquireError::OwnerDied`].
    #[doc(alias = "get_lock")]
    pub fn lock(&self) -> Result<ValueGuard<'_, T>, AcquireError<ValueGuard<'_, T>>> {
        acquired(
            self.locked
                .lock(false, None)
                .map(|(guard, how)| (ValueGuard { guard }, how)),
        )
    }

    /// Takes the lock if it is free now; [`AcquireTimeoutError::Timeout`] if another holds it.
    pub fn try_lock(&self) -> Result<ValueGuard<'_, T>, AcquireTimeoutError<ValueGuard<'_, T>>> {
        timed(
            self.locked
                .lock(true, None)
                .map(|(guard, how)| (ValueGuard { guard }, how)),
        )
    }

    /// Waits at most `timeout` for the lock (`Duration::MAX`: as long as it takes).
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ValueGuard<'_, T>, AcquireTimeoutError<ValueGuard<'_, T>>> {
        self.lock_until(deadline::after(timeout))
    }

    /// Waits until `deadline` for the lock.
    pub fn lock_deadline(
        &self,
        deadline: Instant,
    ) -> Result<ValueGuard<'_, T>, AcquireTimeoutError<ValueGuard<'_, T>>> {
        self.lock_until(Some(deadline))
    }

    fn lock_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<ValueGuard<'_, T>, AcquireTimeoutError<ValueGuard<'_, T>>> {
        timed(
            self.locked
                .lock(false, deadline)
                .map(|(guard, how)| (ValueGuard { guard }, how)),
        )
    }
}

impl<T: AtomicInteger> Value<T> {
    /// Adds `delta` atomically, without the lock (wrapping on overflow, as Python's ctypes do);
    /// returns the previous value.
    ///
    /// Atomic against other `fetch_add`s and `compare_exchange`s, and against `get`/`set`; but it
    /// does not wait for the lock, so do not mix it with changes made under [`lock`](Self::lock).
    #[inline]
    pub fn fetch_add(&self, delta: T) -> T {
        T::fetch_add(atomic_at(&self.locked.object, 0), delta)
    }

    /// Stores `new` if the value is `current`, atomically, without the lock. `Ok(previous)` if it
    /// was stored, `Err(actual)` if not.
    #[inline]
    pub fn compare_exchange(&self, current: T, new: T) -> Result<T, T> {
        T::compare_exchange(atomic_at(&self.locked.object, 0), current, new)
    }
}

impl<T> ValueGuard<'_, T> {
    /// See [`LockGuard::mark_consistent`](crate::LockGuard::mark_consistent).
    pub fn mark_consistent(&self) {
        self.guard.mark_consistent();
    }
}

impl<T> Deref for ValueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard[0]
    }
}

impl<T> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard[0]
    }
}

/// An array of plain data in shared memory, of fixed length, with its own lock. Python's
/// `multiprocessing.Array`. As for [`Value`], a zero-sized element type is refused when the
/// program is built.
///
/// ```compile_fail
/// let nothings = multiproc::Array::<()>::new(3); // zero-sized: refused
/// ```
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{Array, Process};
///
/// let numbers = Array::from_slice(&[1, 2, 3, 4, 5])?;
/// Process::spawn(numbers.clone(), |a: Array<i32>| a.set(2, 9999).unwrap())?.join()?;
/// assert_eq!(numbers.to_vec(), [1, 2, 9999, 4, 5]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent, bound = "")]
pub struct Array<T: ShmSafe> {
    locked: Locked<T>,
}

/// Holds an [`Array`]'s lock; derefs to the elements.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ArrayGuard<'a, T> {
    guard: DataGuard<'a, T>,
}

/// An index past the end of an [`Array`]. Python: `IndexError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("index {index} is out of range for an array of {len}")]
pub struct IndexOutOfRange {
    /// The index asked for.
    pub index: usize,
    /// The array's length.
    pub len: usize,
}

impl<T: ShmSafe> Array<T> {
    /// `len` elements, all bytes zero (0, 0.0, false).
    pub fn new(len: usize) -> Result<Array<T>, ShmError> {
        Ok(Array {
            locked: Locked::zeroed(len)?,
        })
    }

    /// A copy of `values`.
    pub fn from_slice(values: &[T]) -> Result<Array<T>, ShmError> {
        Ok(Array {
            locked: Locked::new(values)?,
        })
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.locked.len()
    }

    /// Whether it has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `index` (under the lock), or `None` past the end.
    pub fn get(&self, index: usize) -> Option<T> {
        if index >= self.len() {
            return None;
        }
        Some(match self.locked.lock_for_copy() {
            Some(guard) => guard[index],
            None => read_unlocked(&self.locked.object, index),
        })
    }

    /// Sets element `index` (under the lock).
    pub fn set(&self, index: usize, value: T) -> Result<(), IndexOutOfRange> {
        let len = self.len();
        if index >= len {
            return Err(IndexOutOfRange { index, len });
        }
        match self.locked.lock_for_copy() {
            Some(mut guard) => guard[index] = value,
            None => write_unlocked(&self.locked.object, index, value),
        }
        Ok(())
    }

    /// A copy of every element (under the lock).
    pub fn to_vec(&self) -> Vec<T> {
        match self.locked.lock_for_copy() {
            Some(guard) => guard.to_vec(),
            None => (0..self.len())
                .map(|i| read_unlocked(&self.locked.object, i))
                .collect(),
        }
    }

    /// Takes the lock; the guard derefs to the elements.
    #[doc(alias = "get_lock")]
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>, AcquireError<ArrayGuard<'_, T>>> {
        acquired(
            self.locked
                .lock(false, None)
                .map(|(guard, how)| (ArrayGuard { guard }, how)),
        )
    }

    /// Takes the lock if it is free now; [`AcquireTimeoutError::Timeout`] if another holds it.
    pub fn try_lock(&self) -> Result<ArrayGuard<'_, T>, AcquireTimeoutError<ArrayGuard<'_, T>>> {
        timed(
            self.locked
                .lock(true, None)
                .map(|(guard, how)| (ArrayGuard { guard }, how)),
        )
    }

    /// Waits at most `timeout` for the lock (`Duration::MAX`: as long as it takes).
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<ArrayGuard<'_, T>, AcquireTimeoutError<ArrayGuard<'_, T>>> {
        self.lock_until(deadline::after(timeout))
    }

    /// Waits until `deadline` for the lock.
    pub fn lock_deadline(
        &self,
        deadline: Instant,
    ) -> Result<ArrayGuard<'_, T>, AcquireTimeoutError<ArrayGuard<'_, T>>> {
        self.lock_until(Some(deadline))
    }

    fn lock_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<ArrayGuard<'_, T>, AcquireTimeoutError<ArrayGuard<'_, T>>> {
        timed(
            self.locked
                .lock(false, deadline)
                .map(|(guard, how)| (ArrayGuard { guard }, how)),
        )
    }
}

impl<T> ArrayGuard<'_, T> {
    /// See [`LockGuard::mark_consistent`](crate::LockGuard::mark_consistent).
    pub fn mark_consistent(&self) {
        self.guard.mark_consistent();
    }
}

impl<T> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.guard
    }
}

impl<T> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.guard
    }
}

impl<T: ShmSafe + fmt::Debug> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Value").field(&self.get()).finish()
    }
}

impl<T: ShmSafe + fmt::Debug> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Array").field(&self.to_vec()).finish()
    }
}

impl<T: fmt::Debug> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ValueGuard").field(&**self).finish()
    }
}

impl<T: fmt::Debug> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ArrayGuard").field(&&**self).finish()
    }
}
