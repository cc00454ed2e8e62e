//! [`ListProxy`] and [`ArrayProxy`]: a list and a fixed-length array that live in the manager.

use std::ops::{Bound, RangeBounds};

use rmpv::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ListWatcher, Proxy, from_value, optional, proxy, to_value};
use crate::EncodesAs;
use crate::manager::handle::Handle;
use crate::manager::protocol::{Kind, Op};
use crate::manager::{ErrorCode, ManagerError};

proxy! {
    /// A list that lives in a [`Manager`](crate::Manager); every method is one round trip and
    /// runs atomically on the server. Indices are checked as `Vec`'s are: [`get`](Self::get) past
    /// the end is `None`, [`set`](Self::set) and [`remove`](Self::remove) are
    /// [`ManagerError::Remote`] with code [`IndexOutOfRange`](crate::ErrorCode::IndexOutOfRange)
    /// (Python: `IndexError`).
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// let manager = multiproc::Manager::start()?;
    /// let list = manager.list_from(&[1, 2])?;
    /// list.push(3)?;
    /// assert_eq!(list.to_vec()?, [1, 2, 3]);
    /// assert_eq!(list.get(5)?, None);
    /// assert_eq!(list.pop()?, Some(3));
    /// # Ok(())
    /// # }
    /// ```
    pub struct ListProxy<T> = Kind::List;
}

/// A bound of a range as the protocol's index (clamped to the length by the server).
fn bounds(range: impl RangeBounds<usize>) -> (Value, Value) {
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
    (Value::from(start), Value::from(end))
}

/// An item that may be past the end: `IndexOutOfRange` is `None`.
fn item_at<T: DeserializeOwned>(
    answer: Result<Value, ManagerError>,
) -> Result<Option<T>, ManagerError> {
    match answer {
        Ok(item) => from_value(item).map(Some),
        Err(e) if e.code() == Some(&ErrorCode::IndexOutOfRange) => Ok(None),
        Err(e) => Err(e),
    }
}

impl<T> ListProxy<T> {
    /// A view of the list whose calls carry the fencing token `token`: as
    /// [`DictProxy::fenced`](crate::DictProxy::fenced).
    pub fn fenced(&self, token: u64) -> ListProxy<T> {
        ListProxy::from_handle(self.handle.fenced(token))
    }

    /// The number of items.
    pub fn len(&self) -> Result<usize, ManagerError> {
        from_value(self.handle.call(Op::ListLen, Vec::new())?)
    }

    /// Whether it has no item.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// Removes every item.
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.handle.call(Op::ListClear, Vec::new()).map(drop)
    }
}

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// Every item, in order. Python: `list(l)`, `l[:]`.
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        from_value(self.handle.call(Op::ListAll, Vec::new())?)
    }

    /// Item `index`, or `None` past the end. Python: `l[index]`.
    pub fn get(&self, index: usize) -> Result<Option<T>, ManagerError> {
        item_at(self.handle.call(Op::ListGet, vec![Value::from(index)]))
    }

    /// Sets item `index` (`IndexOutOfRange` past the end). Python: `l[index] = item`.
    pub fn set(&self, index: usize, item: impl EncodesAs<T>) -> Result<(), ManagerError> {
        self.handle
            .call(
                Op::ListSet,
                vec![Value::from(index), to_value(item.encoded())?],
            )
            .map(drop)
    }

    /// The items in `range`: `range(1..3)`, `range(2..)`. Bounds past the end are clamped, as
    /// Python's slices are (`l[1:3]`).
    #[doc(alias = "slice")]
    pub fn range(&self, range: impl RangeBounds<usize>) -> Result<Vec<T>, ManagerError> {
        let (start, end) = bounds(range);
        from_value(self.handle.call(Op::ListRange, vec![start, end])?)
    }

    /// Adds `item` at the end. Python: `l.append(item)`.
    #[doc(alias = "append")]
    pub fn push(&self, item: impl EncodesAs<T>) -> Result<(), ManagerError> {
        self.handle
            .call(Op::ListAppend, vec![to_value(item.encoded())?])
            .map(drop)
    }

    /// Adds `items` at the end, in one round trip, atomically.
    pub fn extend(
        &self,
        items: impl IntoIterator<Item = impl EncodesAs<T>>,
    ) -> Result<(), ManagerError> {
        let items = items
            .into_iter()
            .map(|item| to_value(item.encoded()))
            .collect::<Result<Vec<_>, _>>()?;
        self.handle
            .call(Op::ListExtend, vec![Value::Array(items)])
            .map(drop)
    }

    /// Inserts `item` before `index` (at the end if `index` is past it).
    pub fn insert(&self, index: usize, item: impl EncodesAs<T>) -> Result<(), ManagerError> {
        self.handle
            .call(
                Op::ListInsert,
                vec![Value::from(index), to_value(item.encoded())?],
            )
            .map(drop)
    }

    /// Watches the list: the changes made from now on, by any process, in order.
    pub fn watch(&self) -> Result<ListWatcher<T>, ManagerError> {
        ListWatcher::start(&self.handle)
    }

    /// Whether an item is `item` (the same value: the rule of dict keys, its MessagePack
    /// encoding). Python: `item in l`.
    ///
    /// ```
    /// # fn main() -> Result<(), multiproc::ManagerError> {
    /// # multiproc::init();
    /// let manager = multiproc::Manager::start()?;
    /// let l = manager.list_from(&[3, 1, 3])?;
    /// assert!(l.contains(1)?);
    /// assert_eq!(l.count(3)?, 2);
    /// assert_eq!(l.position(3)?, Some(0));
    /// assert_eq!(l.position(7)?, None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn contains(&self, item: impl EncodesAs<T>) -> Result<bool, ManagerError> {
        from_value(
            self.handle
                .call(Op::ListContains, vec![to_value(item.encoded())?])?,
        )
    }

    /// How many items are `item`. Python: `l.count(item)`.
    pub fn count(&self, item: impl EncodesAs<T>) -> Result<usize, ManagerError> {
        from_value(
            self.handle
                .call(Op::ListCount, vec![to_value(item.encoded())?])?,
        )
    }

    /// The index of the first item that is `item`, if any. Python: `l.index(item)`, which raises
    /// `ValueError` where this gives `None`.
    #[doc(alias = "index")]
    pub fn position(&self, item: impl EncodesAs<T>) -> Result<Option<usize>, ManagerError> {
        optional(
            self.handle
                .call(Op::ListIndex, vec![to_value(item.encoded())?])?,
        )
    }

    /// Removes and returns the last item, if any.
    pub fn pop(&self) -> Result<Option<T>, ManagerError> {
        optional(self.handle.call(Op::ListPop, Vec::new())?)
    }

    /// Removes and returns item `index` (`IndexOutOfRange` past the end).
    pub fn remove(&self, index: usize) -> Result<T, ManagerError> {
        from_value(self.handle.call(Op::ListRemove, vec![Value::from(index)])?)
    }

    /// Adds `delta` to the number at `index`, atomically; returns the sum.
    pub fn incr<D: Serialize + DeserializeOwned>(
        &self,
        index: usize,
        delta: D,
    ) -> Result<D, ManagerError> {
        from_value(
            self.handle
                .call(Op::ListIncr, vec![Value::from(index), to_value(&delta)?])?,
        )
    }

    /// Removes the first item equal to `item` (the same MessagePack encoding);
    /// [`ErrorCode::ItemMissing`] if there is none. Python: `l.remove(item)` (`ValueError`).
    #[doc(alias = "remove")]
    pub fn remove_item(&self, item: impl EncodesAs<T>) -> Result<(), ManagerError> {
        self.handle
            .call(Op::ListRemoveItem, vec![to_value(item.encoded())?])
            .map(drop)
    }

    /// Replaces the items in `range` by `items`, in one step: the list grows or shrinks to fit,
    /// as `Vec::splice` (bounds past the end are clamped). Python: `l[1:3] = items`.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// let manager = multiproc::Manager::start()?;
    /// let l = manager.list_from(&[0, 1, 2, 3])?;
    /// l.replace_range(1..3, &[7, 7, 7])?;
    /// assert_eq!(l.to_vec()?, [0, 7, 7, 7, 3]);
    /// l.remove_range(..2)?;
    /// assert_eq!(l.to_vec()?, [7, 7, 3]);
    /// l.repeat(2)?; // l *= 2
    /// l.sort()?;
    /// assert_eq!(l.to_vec()?, [3, 3, 7, 7, 7, 7]);
    /// # Ok(())
    /// # }
    /// ```
    #[doc(alias = "splice")]
    pub fn replace_range(
        &self,
        range: impl RangeBounds<usize>,
        items: impl IntoIterator<Item = impl EncodesAs<T>>,
    ) -> Result<(), ManagerError> {
        let (start, end) = bounds(range);
        let items = items
            .into_iter()
            .map(|item| to_value(item.encoded()))
            .collect::<Result<Vec<_>, _>>()?;
        let args = vec![start, end, Value::Nil, Value::Array(items)];
        self.handle.call(Op::ListSetSlice, args).map(drop)
    }

    /// Removes the items in `range`, in one step (bounds past the end are clamped). Python:
    /// `del l[1:3]`.
    #[doc(alias = "drain")]
    pub fn remove_range(&self, range: impl RangeBounds<usize>) -> Result<(), ManagerError> {
        let (start, end) = bounds(range);
        let args = vec![start, end, Value::Nil];
        self.handle.call(Op::ListDelSlice, args).map(drop)
    }

    /// Repeats the items `times` times, in place (0 empties the list). Python: `l *= times`.
    /// A list of more than 16 777 216 items is refused
    /// ([`ErrorCode::BadArguments`](crate::ErrorCode::BadArguments)).
    #[doc(alias = "__imul__")]
    pub fn repeat(&self, times: usize) -> Result<(), ManagerError> {
        self.handle
            .call(Op::ListRepeat, vec![Value::from(times)])
            .map(drop)
    }

    /// Reverses the items in place. Python: `l.reverse()`.
    pub fn reverse(&self) -> Result<(), ManagerError> {
        self.handle.call(Op::ListReverse, Vec::new()).map(drop)
    }

    /// Sorts the items in place, in their natural order, stably: numbers (integers, floats and
    /// booleans, as Python compares them), strings by code point, bytes, or arrays of these
    /// item by item. Other items, or a mix Python cannot order (a string and a number), are
    /// [`ErrorCode::TypeError`](crate::ErrorCode::TypeError) and leave the list as it was. No
    /// comparison of your own runs on the server (Python's `key=` has no equivalent). Python:
    /// `l.sort()`.
    pub fn sort(&self) -> Result<(), ManagerError> {
        self.handle.call(Op::ListSort, Vec::new()).map(drop)
    }

    /// [`sort`](Self::sort), greatest first (equal items keep their order). Python:
    /// `l.sort(reverse=True)`.
    pub fn sort_descending(&self) -> Result<(), ManagerError> {
        self.handle
            .call(Op::ListSort, vec![Value::from(true)])
            .map(drop)
    }
}

/// A fixed-length array that lives in a [`Manager`](crate::Manager): [`Array`](crate::Array)'s
/// reading and writing (`len`, `get`, `set`, `to_vec`), with a [`ListProxy`]'s `range` and
/// `incr`, without the operations that change the length. Python: `manager.Array`.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// let manager = multiproc::Manager::start()?;
/// let numbers = manager.array(&[1, 2, 3])?;
/// numbers.set(2, 9)?;
/// assert_eq!(numbers.to_vec()?, [1, 2, 9]);
/// assert_eq!(numbers.get(3)?, None); // past the end
/// # Ok(())
/// # }
/// ```
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(bound = "", transparent)]
pub struct ArrayProxy<T>(pub(super) ListProxy<T>);

impl<T> Proxy for ArrayProxy<T> {
    const KIND: Kind = Kind::Array;

    fn from_handle(handle: Handle) -> Self {
        ArrayProxy(ListProxy::from_handle(handle))
    }
}

impl<T> ArrayProxy<T> {
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

    /// Item `index`, or `None` past the end.
    pub fn get(&self, index: usize) -> Result<Option<T>, ManagerError> {
        self.0.get(index)
    }

    /// Sets item `index` (`IndexOutOfRange` past the end).
    pub fn set(&self, index: usize, item: impl EncodesAs<T>) -> Result<(), ManagerError> {
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

    /// Whether an item is `item`, as [`ListProxy::contains`]. Python: `item in a`.
    pub fn contains(&self, item: impl EncodesAs<T>) -> Result<bool, ManagerError> {
        self.0.contains(item)
    }

    /// How many items are `item`, as [`ListProxy::count`].
    pub fn count(&self, item: impl EncodesAs<T>) -> Result<usize, ManagerError> {
        self.0.count(item)
    }

    /// The index of the first item that is `item`, as [`ListProxy::position`].
    #[doc(alias = "index")]
    pub fn position(&self, item: impl EncodesAs<T>) -> Result<Option<usize>, ManagerError> {
        self.0.position(item)
    }
}

impl<T: Serialize + DeserializeOwned> ArrayProxy<T> {
    /// Replaces the items in `range` by as many `items` (the length is fixed: another number is
    /// [`ErrorCode::BadArguments`](crate::ErrorCode::BadArguments)). Python: `a[1:3] = items`.
    pub fn replace_range(
        &self,
        range: impl RangeBounds<usize>,
        items: impl IntoIterator<Item = impl EncodesAs<T>>,
    ) -> Result<(), ManagerError> {
        self.0.replace_range(range, items)
    }

    /// Reverses the items in place.
    pub fn reverse(&self) -> Result<(), ManagerError> {
        self.0.reverse()
    }

    /// Sorts the items in place, as [`ListProxy::sort`].
    pub fn sort(&self) -> Result<(), ManagerError> {
        self.0.sort()
    }

    /// Sorts the items in place, greatest first, as [`ListProxy::sort_descending`].
    pub fn sort_descending(&self) -> Result<(), ManagerError> {
        self.0.sort_descending()
    }
}

impl<T> Clone for ArrayProxy<T> {
    fn clone(&self) -> Self {
        ArrayProxy(self.0.clone())
    }
}

impl<T> std::fmt::Debug for ArrayProxy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.handle.debug("ArrayProxy", f)
    }
}
