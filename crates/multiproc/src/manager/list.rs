//! [`ListProxy`], [`ArrayProxy`] and [`ValueProxy`]: a list, a fixed-length array and a single
//! value that live in the manager.

use std::fmt;
use std::marker::PhantomData;

use rmpv::Value;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::dict::optional;
use super::{Handle, ManagerError, from_value, to_value};

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

    /// Item `index`.
    pub fn get(&self, index: usize) -> Result<T, ManagerError> {
        from_value(self.handle.call("list.get", vec![Value::from(index)])?)
    }

    /// Sets item `index`.
    pub fn set(&self, index: usize, item: &T) -> Result<(), ManagerError> {
        self.handle
            .call("list.set", vec![Value::from(index), to_value(item)?])
            .map(drop)
    }

    /// Adds `item` at the end.
    pub fn append(&self, item: &T) -> Result<(), ManagerError> {
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

/// A change to a watched list ([`ListProxy::watch`]).
#[derive(Debug, Clone, PartialEq)]
pub enum ListChange<T> {
    /// An item was added at the end (`append`, or one per item of `extend`).
    Appended(T),
    /// Another change (`set`, `insert`, `pop`, `remove`, `incr`): the operation's name.
    Changed(String),
    /// The watcher fell too far behind: changes in between were dropped.
    Missed,
}

/// The changes of a list as they happen, instead of polling it. Has a connection of its own.
pub struct ListWatcher<T> {
    handle: Handle,
    version: u64,
    pending: std::collections::VecDeque<ListChange<T>>,
}

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// Watches the list: the changes made from now on, by any process, in order.
    pub fn watch(&self) -> Result<ListWatcher<T>, ManagerError> {
        let handle = self.handle.reconnect()?;
        // Since "never": answers at once with the current version.
        let now = handle.call("watch", vec![Value::from(u64::MAX), Value::from(0)])?;
        let version = now
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_u64)
            .ok_or_else(|| ManagerError::Protocol(format!("watch gave {now}")))?;
        Ok(ListWatcher {
            handle,
            version,
            pending: std::collections::VecDeque::new(),
        })
    }
}

impl<T: DeserializeOwned> ListWatcher<T> {
    /// The next change, waiting at most `timeout`; `None` if none came.
    pub fn next_timeout(
        &mut self,
        timeout: std::time::Duration,
    ) -> Result<Option<ListChange<T>>, ManagerError> {
        if self.pending.is_empty() {
            let answer = self.handle.call(
                "watch",
                vec![
                    Value::from(self.version),
                    Value::from(timeout.as_millis() as u64),
                ],
            )?;
            self.take(answer)?;
        }
        Ok(self.pending.pop_front())
    }

    fn take(&mut self, answer: Value) -> Result<(), ManagerError> {
        let malformed = || ManagerError::Protocol("a malformed watch answer".into());
        let Value::Array(parts) = answer else {
            return Err(malformed());
        };
        let [version, Value::Array(events), missed] = parts.as_slice() else {
            return Err(malformed());
        };
        self.version = version.as_u64().ok_or_else(malformed)?;
        if missed.as_bool() == Some(true) {
            self.pending.push_back(ListChange::Missed);
        }
        for event in events {
            let Some([op, args @ ..]) = event.as_array().map(Vec::as_slice) else {
                return Err(malformed());
            };
            match (op.as_str(), args) {
                (Some("list.append"), [item]) => self
                    .pending
                    .push_back(ListChange::Appended(from_value(item.clone())?)),
                (Some("list.extend"), [Value::Array(items)]) => {
                    for item in items {
                        self.pending
                            .push_back(ListChange::Appended(from_value(item.clone())?));
                    }
                }
                (Some(op), _) => self.pending.push_back(ListChange::Changed(op.to_owned())),
                (None, _) => return Err(malformed()),
            }
        }
        Ok(())
    }
}

impl<T> fmt::Debug for ListWatcher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.debug("ListWatcher", f)
    }
}
