//! What the proxies whose operations wait have in common: a connection of their own (a clone
//! opens another), timeouts in the protocol's milliseconds, and, for those with a lock (locks,
//! recursive locks, conditions), the acquire family and a guard that releases on drop.

use std::time::Duration;

use rmpv::Value;

use super::ManagerError;

/// A timeout for the protocol, in milliseconds.
pub(crate) fn timeout_ms(timeout: Duration) -> Value {
    Value::from(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
}

/// An acquire's answer: `Some(owner_died)` when taken, `None` on a timeout.
pub(crate) fn acquired(answer: Value) -> Result<Option<bool>, ManagerError> {
    match answer.as_str() {
        Some("acquired") => Ok(Some(false)),
        Some("owner_died") => Ok(Some(true)),
        Some("timeout") => Ok(None),
        _ => Err(ManagerError::Protocol(format!(
            "lock.acquire gave {answer}"
        ))),
    }
}

/// `new`, a `Clone` that opens a connection of its own, and `Debug`, for a proxy
/// `struct $proxy { handle: Handle }`.
macro_rules! waiting_proxy {
    ($proxy:ident) => {
        impl $proxy {
            pub(crate) fn new(handle: $crate::manager::handle::Handle) -> Self {
                $proxy { handle }
            }
        }

        impl Clone for $proxy {
            /// Another handle to the same object, with a connection of its own (for a lock:
            /// another owner).
            fn clone(&self) -> Self {
                $proxy::new(self.handle.reconnect_or_share())
            }
        }

        impl std::fmt::Debug for $proxy {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.handle.debug(stringify!($proxy), f)
            }
        }
    };
}

/// The acquire family of `$proxy`, whose object answers `lock.acquire` and `lock.release`, and
/// its guard `struct $guard<'a> { proxy: &'a $proxy, owner_died: bool }`: `owner_died`, and the
/// release when dropped.
macro_rules! acquire_family {
    ($proxy:ident, $guard:ident) => {
        impl $proxy {
            /// Takes the lock, waiting as long as it takes.
            pub fn acquire(&self) -> Result<$guard<'_>, ManagerError> {
                self.take(rmpv::Value::Nil)?.ok_or_else(|| {
                    ManagerError::Protocol("a lock acquired without a wait timed out".into())
                })
            }

            /// Takes the lock if it is free now (or, if it is recursive, held by this handle).
            pub fn try_acquire(&self) -> Result<Option<$guard<'_>>, ManagerError> {
                self.take(rmpv::Value::from(0))
            }

            /// Takes the lock, waiting at most `timeout`; `None` if another handle kept it.
            pub fn acquire_timeout(
                &self,
                timeout: std::time::Duration,
            ) -> Result<Option<$guard<'_>>, ManagerError> {
                self.take($crate::manager::waiting::timeout_ms(timeout))
            }

            fn take(&self, timeout: rmpv::Value) -> Result<Option<$guard<'_>>, ManagerError> {
                let answer = self.handle.call("lock.acquire", vec![timeout])?;
                Ok(
                    $crate::manager::waiting::acquired(answer)?.map(|owner_died| $guard {
                        proxy: self,
                        owner_died,
                    }),
                )
            }
        }

        impl $guard<'_> {
            /// Whether a holder's process died holding the lock before this guard took it (the
            /// data it protected may be half-updated).
            pub fn owner_died(&self) -> bool {
                self.owner_died
            }
        }

        impl Drop for $guard<'_> {
            fn drop(&mut self) {
                // If the manager is gone, so is the lock.
                let _ = self.proxy.handle.call("lock.release", Vec::new());
            }
        }
    };
}

pub(crate) use {acquire_family, waiting_proxy};
