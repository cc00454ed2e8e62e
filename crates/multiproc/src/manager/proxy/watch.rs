//! Watching a dict or a list: the changes any process makes, in order, as they happen, instead of
//! polling. A watcher asks the server for the changes after the last one it saw, waiting on a
//! connection taken for the call (`watch` in the protocol); the server keeps the last few thousand changes of
//! each watched object.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use rmpv::Value;
use serde::de::DeserializeOwned;

use super::{deadline_arg, from_value};
use crate::deadline;
use crate::manager::ManagerError;
use crate::manager::handle::Handle;
use crate::manager::protocol::Op;

/// A change to a watched dict ([`DictProxy::watch`](super::DictProxy::watch)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DictChange<K, V> {
    /// The key now holds the value: by `insert`, `update` (one per pair), `setdefault` (when it
    /// set), `incr` (the sum) or `compare_and_swap` (when it swapped).
    Set(K, V),
    /// The key was removed: by `remove`, `pop` or `pop_last`.
    Removed(K),
    /// Every entry was removed.
    Cleared,
    /// A nested dict or list was created at the key ([`dict_in`](super::DictProxy::dict_in),
    /// [`list_in`](super::DictProxy::list_in)).
    Nested(K),
    /// The watcher fell too far behind: changes in between were dropped.
    Missed,
}

/// A change to a watched list ([`ListProxy::watch`](super::ListProxy::watch)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ListChange<T> {
    /// An item was added at the end (`push`, or one per item of `extend`).
    Appended(T),
    /// The item at the index was replaced (`set`, `incr`).
    Set(usize, T),
    /// An item was inserted at the index.
    Inserted(usize, T),
    /// The item at the index was removed (`remove`, `pop`).
    Removed(usize),
    /// Every item was removed.
    Cleared,
    /// The watcher fell too far behind: changes in between were dropped.
    Missed,
}

/// The raw changes of a watched object.
struct Feed {
    handle: Handle,
    version: u64,
}

fn malformed() -> ManagerError {
    ManagerError::Protocol("a malformed watch answer".into())
}

impl Feed {
    /// Starts watching: the changes from now on.
    fn start(handle: &Handle) -> Result<Feed, ManagerError> {
        // Its calls wait: on connections of the session's pool.
        let handle = handle.waiting();
        // Since "never", without waiting: answers with the current version.
        let now = handle.call(Op::Watch, vec![Value::from(u64::MAX), Value::from(0)])?;
        let version = now
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_u64)
            .ok_or_else(malformed)?;
        Ok(Feed { handle, version })
    }

    /// The next changes, waiting until `deadline` (`None`: as long as it takes) for some.
    /// Returns whether some were missed, and the changes (none at the deadline).
    fn next(&mut self, deadline: Option<Instant>) -> Result<(bool, Vec<Value>), ManagerError> {
        let answer = self.handle.call(
            Op::Watch,
            vec![Value::from(self.version), deadline_arg(deadline)],
        )?;
        let Value::Array(parts) = answer else {
            return Err(malformed());
        };
        let [version, Value::Array(events), missed] =
            <[Value; 3]>::try_from(parts).map_err(|_| malformed())?
        else {
            return Err(malformed());
        };
        self.version = version.as_u64().ok_or_else(malformed)?;
        Ok((missed.as_bool() == Some(true), events))
    }
}

/// Splits an event `[kind, args...]`.
fn parts(event: Value) -> Result<(String, Vec<Value>), ManagerError> {
    let Value::Array(mut parts) = event else {
        return Err(malformed());
    };
    if parts.is_empty() {
        return Err(malformed());
    }
    let kind = parts.remove(0);
    let kind = kind.as_str().ok_or_else(malformed)?.to_owned();
    Ok((kind, parts))
}

fn index(value: &Value) -> Result<usize, ManagerError> {
    value
        .as_u64()
        .and_then(|i| usize::try_from(i).ok())
        .ok_or_else(malformed)
}

/// A change as a watcher decodes it from the server's event `[kind, args...]`.
trait Change: Sized {
    /// The change that says some were dropped.
    const MISSED: Self;

    fn decode(kind: &str, args: Vec<Value>) -> Result<Self, ManagerError>;
}

impl<K: DeserializeOwned, V: DeserializeOwned> Change for DictChange<K, V> {
    const MISSED: Self = DictChange::Missed;

    fn decode(kind: &str, args: Vec<Value>) -> Result<Self, ManagerError> {
        let mut args = args.into_iter();
        let mut arg = || args.next().ok_or_else(malformed);
        Ok(match kind {
            "set" => DictChange::Set(from_value(arg()?)?, from_value(arg()?)?),
            "del" => DictChange::Removed(from_value(arg()?)?),
            "clear" => DictChange::Cleared,
            "nested" => DictChange::Nested(from_value(arg()?)?),
            _ => return Err(malformed()),
        })
    }
}

impl<T: DeserializeOwned> Change for ListChange<T> {
    const MISSED: Self = ListChange::Missed;

    fn decode(kind: &str, args: Vec<Value>) -> Result<Self, ManagerError> {
        let mut args = args.into_iter();
        let mut arg = || args.next().ok_or_else(malformed);
        Ok(match kind {
            "append" => ListChange::Appended(from_value(arg()?)?),
            "set" => ListChange::Set(index(&arg()?)?, from_value(arg()?)?),
            "insert" => ListChange::Inserted(index(&arg()?)?, from_value(arg()?)?),
            "remove" => ListChange::Removed(index(&arg()?)?),
            "clear" => ListChange::Cleared,
            _ => return Err(malformed()),
        })
    }
}

/// What both watchers are: the feed, and the changes decoded but not yet taken.
struct Watcher<C> {
    feed: Feed,
    pending: VecDeque<C>,
    /// The manager is gone: the iterator ends.
    ended: bool,
}

impl<C: Change> Watcher<C> {
    fn start(handle: &Handle) -> Result<Self, ManagerError> {
        Ok(Watcher {
            feed: Feed::start(handle)?,
            pending: VecDeque::new(),
            ended: false,
        })
    }

    /// The next change, waiting until `deadline` (`None`: as long as it takes), else
    /// [`ManagerError::Timeout`].
    fn next_within(&mut self, deadline: Option<Instant>) -> Result<C, ManagerError> {
        // An answer that came just before the deadline may hold no change: look again until one
        // is there or the deadline has passed.
        loop {
            if let Some(change) = self.fetch(deadline)? {
                return Ok(change);
            }
            if deadline::passed(deadline) {
                return Err(ManagerError::Timeout);
            }
        }
    }

    /// The iterator's step: waits as long as it takes; after the manager is gone, or the object
    /// (a nested container removed with its key), reported once, ends.
    fn iterate(&mut self) -> Option<Result<C, ManagerError>> {
        if self.ended {
            return None;
        }
        let next = self.next_within(None);
        self.ended = next.as_ref().is_err_and(|e| {
            e.is_gone() || e.code() == Some(&crate::manager::ErrorCode::UnknownObject)
        });
        Some(next)
    }

    /// The next change, waiting until `deadline` for one; `None` at the deadline.
    fn fetch(&mut self, deadline: Option<Instant>) -> Result<Option<C>, ManagerError> {
        if self.pending.is_empty() {
            let (was_missed, events) = self.feed.next(deadline)?;
            if was_missed {
                self.pending.push_back(C::MISSED);
            }
            for event in events {
                let (kind, args) = parts(event)?;
                self.pending.push_back(C::decode(&kind, args)?);
            }
        }
        Ok(self.pending.pop_front())
    }
}

/// The waiting family of a watcher: `try_next`, `next_timeout`, `next_deadline`, and the
/// iterator that waits as long as it takes.
macro_rules! next_family {
    ($watcher:ident $(<$($t:ident),*>)?, $change:ty) => {
        impl$(<$($t: DeserializeOwned),*>)? $watcher$(<$($t),*>)? {
            pub(crate) fn start(handle: &Handle) -> Result<Self, ManagerError> {
                Watcher::start(handle).map($watcher)
            }

            /// The next change if one is there now, else [`ManagerError::Timeout`].
            pub fn try_next(&mut self) -> Result<$change, ManagerError> {
                self.0.next_within(Some(Instant::now()))
            }

            /// The next change, waiting at most `timeout` (`Duration::MAX`: as long as it takes),
            /// else [`ManagerError::Timeout`].
            pub fn next_timeout(&mut self, timeout: Duration) -> Result<$change, ManagerError> {
                self.0.next_within(deadline::after(timeout))
            }

            /// The next change, waiting until `deadline`, else [`ManagerError::Timeout`].
            pub fn next_deadline(&mut self, deadline: Instant) -> Result<$change, ManagerError> {
                self.0.next_within(Some(deadline))
            }
        }

        impl$(<$($t: DeserializeOwned),*>)? Iterator for $watcher$(<$($t),*>)? {
            type Item = Result<$change, ManagerError>;

            fn next(&mut self) -> Option<Self::Item> {
                self.0.iterate()
            }
        }

        impl$(<$($t),*>)? fmt::Debug for $watcher$(<$($t),*>)? {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.feed.handle.debug(stringify!($watcher), f)
            }
        }
    };
}

/// The changes of a dict as they happen ([`DictProxy::watch`](super::DictProxy::watch)). As an
/// iterator, it waits for each change as long as it takes, and ends after reporting that the
/// manager is gone, or that the object is (`UnknownObject`: a nested container removed with its
/// key).
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{DictChange, DictProxy, Manager, Process};
///
/// let manager = Manager::start()?;
/// let config = manager.dict::<String, u32>()?;
/// let mut changes = config.watch()?;
/// Process::spawn(config.clone(), |c: DictProxy<String, u32>| {
///     c.insert("workers", 8).unwrap();
///     c.remove("workers").unwrap();
/// })?
/// .join()?;
/// assert_eq!(changes.next().unwrap()?, DictChange::Set("workers".into(), 8));
/// assert_eq!(changes.next().unwrap()?, DictChange::Removed("workers".into()));
/// # Ok(())
/// # }
/// ```
pub struct DictWatcher<K, V>(Watcher<DictChange<K, V>>);

next_family!(DictWatcher<K, V>, DictChange<K, V>);

/// The changes of a list as they happen ([`ListProxy::watch`](super::ListProxy::watch)). As an
/// iterator, it waits for each change as long as it takes, and ends after reporting that the
/// manager is gone, or that the object is (`UnknownObject`: a nested container removed with its
/// key).
pub struct ListWatcher<T>(Watcher<ListChange<T>>);

next_family!(ListWatcher<T>, ListChange<T>);
