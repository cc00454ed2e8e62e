//! The proxies: a typed face on a [`Handle`] for each kind of object, and what they share.
//!
//! Each proxy is declared with [`proxy!`]: a struct holding its handle, the [`Proxy`] impl the
//! manager's factories create it through, `Clone` (another handle to the same object, and another
//! owner: a lock one clone takes is not the other's) and `Debug`. The waiting proxies follow their shared-memory twins' families (`acquire`,
//! `try_acquire`, `acquire_timeout`, `acquire_deadline`, ...): a deadline travels as the
//! milliseconds left ([`deadline_arg`]), and the server's `"timeout"` answer becomes the family's
//! "not ready" error ([`waited`]).

mod barrier;
mod condition;
mod dict;
mod event;
mod iter;
mod list;
mod lock;
mod namespace;
mod object;
mod queue;
mod semaphore;
mod value;
mod watch;

pub use barrier::BarrierProxy;
pub use condition::{ConditionProxy, ConditionProxyGuard};
pub use dict::DictProxy;
pub use event::EventProxy;
pub use iter::{DictIter, ListIter};
pub use list::{ArrayProxy, ListProxy};
pub use lock::{LockProxy, LockProxyGuard, RLockProxy, RLockProxyGuard};
pub use namespace::NamespaceProxy;
#[cfg(feature = "redis")]
pub(crate) use object::dispatcher;
pub use object::{Args, CallError, ObjectProxy, Reply, Shared};
pub(crate) use object::{FreeHook, Handler, MethodCall, TypeEntry, entry_for, run_handler};
pub use queue::{JoinableQueueProxy, QueueProxy};
pub use semaphore::{BoundedSemaphoreProxy, SemaphoreProxy};
pub use value::ValueProxy;
pub use watch::{DictChange, DictWatcher, ListChange, ListWatcher};

use std::time::Instant;

use rmpv::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ManagerError;
use super::handle::Handle;
use super::protocol::{self, Kind};
use crate::deadline;

/// A proxy of an object of one kind: what the manager's factories make from a handle.
pub(crate) trait Proxy: Sized {
    /// The kind of object it is a proxy of.
    const KIND: Kind;

    fn from_handle(handle: Handle) -> Self;
}

/// `value` as a protocol value.
pub(crate) fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, ManagerError> {
    protocol::value::to_value(value).map_err(ManagerError::Value)
}

/// A protocol value as a `T`.
pub(crate) fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ManagerError> {
    protocol::value::from_value(value).map_err(ManagerError::Value)
}

/// A present value comes as `[value]`, an absent one as nil.
pub(crate) fn optional<T: DeserializeOwned>(value: Value) -> Result<Option<T>, ManagerError> {
    match value {
        Value::Nil => Ok(None),
        Value::Array(mut one) if one.len() == 1 => from_value(one.remove(0)).map(Some),
        other => Err(ManagerError::Protocol(format!(
            "expected [value] or nil, got {other}"
        ))),
    }
}

/// A wait's deadline as the protocol's timeout: the milliseconds left, rounded up so that the
/// server waits at least that long; nil for none (wait as long as it takes).
pub(crate) fn deadline_arg(deadline: Option<Instant>) -> Value {
    match deadline::remaining(deadline) {
        None => Value::Nil,
        Some(left) => {
            let ms = left.as_nanos().div_ceil(1_000_000);
            Value::from(u64::try_from(ms).unwrap_or(u64::MAX))
        }
    }
}

/// A wait's answer: its value, or `not_ready` when the server says its deadline came first.
pub(crate) fn waited(answer: Value, not_ready: ManagerError) -> Result<Value, ManagerError> {
    match answer.as_str() {
        Some("timeout") => Err(not_ready),
        _ => Ok(answer),
    }
}

/// The outcome of a wait without deadline: the server cannot have said "timeout".
pub(crate) fn forever<T>(result: Result<T, ManagerError>) -> Result<T, ManagerError> {
    match result {
        Err(e) if e.is_timeout() => Err(ManagerError::Protocol(
            "a wait without deadline timed out".into(),
        )),
        other => other,
    }
}

/// Declares a proxy: `pub struct Name<T, ..> = Kind::X;` with its docs. It gets a `handle`
/// field, [`Proxy`], `Clone` ([`Handle::duplicate`]), `Debug`, and travels (serde) as its handle:
/// to another process, or stored as a value in its own manager (a reference).
macro_rules! proxy {
    ($(#[$doc:meta])* pub struct $name:ident $(<$($t:ident),*>)? = $kind:expr;) => {
        $(#[$doc])*
        pub struct $name $(<$($t),*>)? {
            handle: $crate::manager::handle::Handle,
            /// Marks the types without owning any (and keeps the proxy `Send` and `Sync`).
            _types: std::marker::PhantomData<fn($($($t,)*)?) -> ($($($t,)*)?)>,
        }

        impl $(<$($t),*>)? $crate::manager::proxy::Proxy for $name $(<$($t),*>)? {
            const KIND: $crate::manager::protocol::Kind = $kind;

            fn from_handle(handle: $crate::manager::handle::Handle) -> Self {
                $name {
                    handle,
                    _types: std::marker::PhantomData,
                }
            }
        }

        impl $(<$($t),*>)? serde::Serialize for $name $(<$($t),*>)? {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.handle.serialize(serializer)
            }
        }

        impl<'de $($(, $t)*)?> serde::Deserialize<'de> for $name $(<$($t),*>)? {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let handle = $crate::manager::handle::Handle::deserialize(deserializer)?;
                let waits = <Self as $crate::manager::proxy::Proxy>::KIND.waits();
                Ok(<Self as $crate::manager::proxy::Proxy>::from_handle(handle.waiting_if(waits)))
            }
        }

        impl $(<$($t),*>)? Clone for $name $(<$($t),*>)? {
            /// Another handle to the same object (see the table on
            /// [`Manager`](crate::Manager) for what a clone of each proxy is).
            fn clone(&self) -> Self {
                <Self as $crate::manager::proxy::Proxy>::from_handle(self.handle.duplicate())
            }
        }

        impl $(<$($t),*>)? std::fmt::Debug for $name $(<$($t),*>)? {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.handle.debug(stringify!($name), f)
            }
        }
    };
}

pub(crate) use proxy;
