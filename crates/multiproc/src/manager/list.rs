//! [`ListProxy`], [`ArrayProxy`] and [`ValueProxy`]: a list, a fixed-length array and a single
//! value that live in the manager.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use rmpv::Value;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::dict::optional;
use super::{Handle, ListWatcher, ManagerError, from_value, to_value};

/// A list that lives in a [`Manager`](super::Manager); every method is one round trip and runs
/// atomically on the server. An index past the end is [`ManagerError::Remote`] with code
/// `IndexOutOfRange` (Python: `IndexError`).
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ListProxy<T> {
    handle: Handle,
    #[serde(skip)]
    _items: PhantomData<fn(T) -> T>,
}

impl<T> ListProxy<T> {
    pub(crate) fn new(handle: Handle) -> Self {
        ListProxy {
            handle,
            _items: PhantomData,
        }
    }

    /// The number of items.
    pub fn len(&self) -> Result<usize, ManagerError> {
        from_value(self.handle.call("list.len", Vec::new())?)
    }

    /// Whether it has no item.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }
}

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// Every item, in order. Python: `list(l)`, `l[:]`.
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        from_value(self.handle.call("list.all", Vec::new())?)
    }

    /// Item `index` (`IndexOutOfRange` past the end). Python: `l[index]`.
    pub fn get(&self, index: usize) -> Result<T, ManagerError> {
        from_value(self.handle.call("list.get", vec![Value::from(index)])?)
    }

    /// Sets item `index`.
    pub fn set(&self, index: usize, item: &T) -> Result<(), ManagerError> {
        self.handle
            .call("list.set", vec![Value::from(index), to_value(item)?])
            .map(drop)
    }

    /// The items in `range`: `range(1..3)`, `range(2..)`. Bounds past the end are clamped, as
    /// Python's slices are (`l[1:3]`).
    #[doc(alias = "slice")]
    pub fn range(&self, range: impl RangeBounds<usize>) -> Result<Vec<T>, ManagerError> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i as u64,
            Bound::Excluded(&i) => i as u64 + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => i as u64 + 1,
            Bound::Excluded(&i) => i as u64,
            Bound::Unbounded => u64::MAX,
        };
        from_value(
            self.handle
                .call("list.range", vec![Value::from(start), Value::from(end)])?,
        )
    }

    /// Adds `item` at the end. Python: `l.append(item)`.
    #[doc(alias = "append")]
    pub fn push(&self, item: &T) -> Result<(), ManagerError> {
        self.handle
            .call("list.append", vec![to_value(item)?])
            .map(drop)
    }

    /// Adds `items` at the end, in one round trip, atomically.
    pub fn extend<'a>(&self, items: impl IntoIterator<Item = &'a T>) -> Result<(), ManagerError>
    where
        T: 'a,
    {
        let items = items
            .into_iter()
            .map(to_value)
            .collect::<Result<Vec<_>, _>>()?;
        self.handle
            .call("list.extend", vec![Value::Array(items)])
            .map(drop)
    }

    /// Inserts `item` before `index` (at the end if `index` is past it).
    pub fn insert(&self, index: usize, item: &T) -> Result<(), ManagerError> {
        self.handle
            .call("list.insert", vec![Value::from(index), to_value(item)?])
            .map(drop)
    }

    /// Removes every item.
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.handle.call("list.clear", Vec::new()).map(drop)
    }

    /// Watches the list: the changes made from now on, by any process, in order.
    pub fn watch(&self) -> Result<ListWatcher<T>, ManagerError> {
        ListWatcher::start(&self.handle)
    }

    /// Removes and returns the last item, if any.
    pub fn pop(&self) -> Result<Option<T>, ManagerError> {
        optional(self.handle.call("list.pop", Vec::new())?)
    }

    /// Removes and returns item `index`.
    pub fn remove(&self, index: usize) -> Result<T, ManagerError> {
        from_value(self.handle.call("list.remove", vec![Value::from(index)])?)
    }

    /// Adds `delta` to the number at `index`, atomically; returns the sum.
    pub fn incr<D: Serialize + DeserializeOwned>(
        &self,
        index: usize,
        delta: D,
    ) -> Result<D, ManagerError> {
        from_value(
            self.handle
                .call("list.incr", vec![Value::from(index), to_value(&delta)?])?,
        )
    }
}

impl<T> Clone for ListProxy<T> {
    fn clone(&self) -> Self {
        ListProxy::new(self.handle.share())
    }
}

impl<T> fmt::Debug for ListProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.debug("ListProxy", f)
    }
}

/// A fixed-length array that lives in a [`Manager`](super::Manager): a [`ListProxy`]'s reading,
/// `set` and `incr`, without the operations that change the length. Python: `manager.Array`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ArrayProxy<T>(ListProxy<T>);

impl<T> ArrayProxy<T> {
    pub(crate) fn new(handle: Handle) -> Self {
        ArrayProxy(ListProxy::new(handle))
    }

    /// The number of items (fixed).
    pub fn len(&self) -> Result<usize, ManagerError> {
        self.0.len()
    }

    /// Whether it has no item.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        self.0.is_empty()
    }
}

impl<T: Serialize + DeserializeOwned> ArrayProxy<T> {
    /// Every item, in order.
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        self.0.to_vec()
    }

    /// The items in `range` (clamped to the length, as Python's slices are).
    pub fn range(&self, range: impl RangeBounds<usize>) -> Result<Vec<T>, ManagerError> {
        self.0.range(range)
    }

    /// Item `index` (`IndexOutOfRange` past the end).
    pub fn get(&self, index: usize) -> Result<T, ManagerError> {
        self.0.get(index)
    }

    /// Sets item `index`.
    pub fn set(&self, index: usize, item: &T) -> Result<(), ManagerError> {
        self.0.set(index, item)
    }

    /// Adds `delta` to the number at `index`, atomically; returns the sum.
    pub fn incr<D: Serialize + DeserializeOwned>(
        &self,
        index: usize,
        delta: D,
    ) -> Result<D, ManagerError> {
        self.0.incr(index, delta)
    }
}

impl<T> Clone for ArrayProxy<T> {
    fn clone(&self) -> Self {
        ArrayProxy(self.0.clone())
    }
}

impl<T> fmt::Debug for ArrayProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.handle.debug("ArrayProxy", f)
    }
}

/// A single value that lives in a [`Manager`](super::Manager). Python: `manager.Value`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ValueProxy<T> {
    handle: Handle,
    #[serde(skip)]
    _value: PhantomData<fn(T) -> T>,
}

impl<T> ValueProxy<T> {
    pub(crate) fn new(handle: Handle) -> Self {
        ValueProxy {
            handle,
            _value: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    /// The value.
    pub fn get(&self) -> Result<T, ManagerError> {
        from_value(self.handle.call("value.get", Vec::new())?)
    }

    /// Sets the value.
    pub fn set(&self, value: &T) -> Result<(), ManagerError> {
        self.handle
            .call("value.set", vec![to_value(value)?])
            .map(drop)
    }

    /// Adds `delta` to the number, atomically; returns the sum.
    pub fn incr(&self, delta: T) -> Result<T, ManagerError> {
        from_value(self.handle.call("value.incr", vec![to_value(&delta)?])?)
    }

    /// Sets the value to `new` if it is `expected`, atomically; returns whether it did.
    pub fn compare_and_swap(&self, expected: &T, new: &T) -> Result<bool, ManagerError> {
        from_value(self.handle.call(
            "value.compare_and_swap",
            vec![to_value(expected)?, to_value(new)?],
        )?)
    }
}

impl<T> Clone for ValueProxy<T> {
    fn clone(&self) -> Self {
        ValueProxy::new(self.handle.share())
    }
}

impl<T> fmt::Debug for ValueProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.debug("ValueProxy", f)
    }
}
