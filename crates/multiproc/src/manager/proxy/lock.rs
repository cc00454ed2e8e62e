//! [`LockProxy`] and [`RLockProxy`]: locks that live in the manager, owned by the handle that took
//! them; and the acquire family they share with [`ConditionProxy`](super::ConditionProxy).

use super::proxy;
use crate::manager::ManagerError;
use crate::manager::protocol::{Kind, Op};

/// The acquire family of `$proxy`, whose object answers `lock.acquire` and `lock.release`, and
/// its guard `struct $guard<'a> { proxy: &'a $proxy, owner_died: bool }`: `owner_died`, and the
/// release when dropped.
macro_rules! acquire_family {
    ($proxy:ident, $guard:ident) => {
        impl $proxy {
            /// Takes the lock, waiting as long as it takes.
            pub fn acquire(&self) -> Result<$guard<'_>, $crate::manager::ManagerError> {
                $crate::manager::proxy::forever(self.acquire_until(None))
            }

            /// Takes the lock if it is free now (or, if it is recursive, held by this handle);
            /// [`ManagerError::Timeout`](crate::ManagerError::Timeout) if another holds it.
            pub fn try_acquire(&self) -> Result<$guard<'_>, $crate::manager::ManagerError> {
                self.acquire_until(Some(std::time::Instant::now()))
            }

            /// Takes the lock, waiting at most `timeout` (`Duration::MAX`: as long as it takes);
            /// [`ManagerError::Timeout`](crate::ManagerError::Timeout) if another kept it.
            pub fn acquire_timeout(
                &self,
                timeout: std::time::Duration,
            ) -> Result<$guard<'_>, $crate::manager::ManagerError> {
                self.acquire_until($crate::deadline::after(timeout))
            }

            /// Takes the lock, waiting until `deadline`.
            pub fn acquire_deadline(
                &self,
                deadline: std::time::Instant,
            ) -> Result<$guard<'_>, $crate::manager::ManagerError> {
                self.acquire_until(Some(deadline))
            }

            fn acquire_until(
                &self,
                deadline: Option<std::time::Instant>,
            ) -> Result<$guard<'_>, $crate::manager::ManagerError> {
                use $crate::manager::proxy::{deadline_arg, waited};
                // `true`: the answer says the acquisition's fencing token too.
                let answer = self.handle.call(
                    $crate::manager::protocol::Op::LockAcquire,
                    vec![deadline_arg(deadline), rmpv::Value::from(true)],
                )?;
                let answer = waited(answer, $crate::manager::ManagerError::Timeout)?;
                let (status, fence) = match answer.as_array().map(Vec::as_slice) {
                    Some([status, fence]) => (status.as_str(), fence.as_u64()),
                    _ => (None, None),
                };
                let owner_died = match (status, fence) {
                    (Some("acquired"), Some(_)) => false,
                    (Some("owner_died"), Some(_)) => true,
                    _ => {
                        return Err($crate::manager::ManagerError::Protocol(format!(
                            "lock.acquire gave {answer}"
                        )));
                    }
                };
                self.handle.count_held(true);
                Ok($guard {
                    proxy: self,
                    owner_died,
                    fence: fence.unwrap_or(0),
                })
            }

            /// Whether some handle holds it (a snapshot).
            pub fn is_locked(&self) -> Result<bool, $crate::manager::ManagerError> {
                Ok(self.state()?.0)
            }

            /// Whether the lock is held, and how many times this handle holds it.
            fn state(&self) -> Result<(bool, u32), $crate::manager::ManagerError> {
                $crate::manager::proxy::from_value(
                    self.handle
                        .call($crate::manager::protocol::Op::LockState, Vec::new())?,
                )
            }
        }

        impl $guard<'_> {
            /// Whether a holder's process died holding the lock before this guard took it (the
            /// data it protected may be half-updated). The manager released the lock and tells
            /// the next taker once; no repair step is asked for (see the table on
            /// [`Manager`](crate::Manager)).
            pub fn owner_died(&self) -> bool {
                self.owner_died
            }

            /// Whether this guard's handle still holds the lock: one round trip. Always so on a
            /// manager process while the guard lives; on Redis, false once the lease lapsed (the
            /// process stopped or lost Redis for longer than a lease), when another may hold it.
            pub fn is_still_held(&self) -> Result<bool, $crate::manager::ManagerError> {
                Ok(self.proxy.state()?.1 > 0)
            }
        }

        impl Drop for $guard<'_> {
            fn drop(&mut self) {
                // If the manager is gone, so is the lock.
                let handle = &self.proxy.handle;
                let _ = handle.call($crate::manager::protocol::Op::LockRelease, Vec::new());
                handle.count_held(false);
            }
        }

        impl std::fmt::Debug for $guard<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($guard))
                    .field("owner_died", &self.owner_died)
                    .finish_non_exhaustive()
            }
        }
    };
}

pub(crate) use acquire_family;

proxy! {
    /// A lock that lives in a [`Manager`](crate::Manager): [`Lock`](crate::Lock)'s methods, each a
    /// round trip, reaching processes on other machines too. A taken lock belongs to the handle
    /// that took it (each handle, and each clone, is an owner of its own; the handles of a process
    /// share its connections): if its process dies, or the handle is dropped still holding it (a
    /// guard forgotten), the manager releases the lock and tells the next taker
    /// ([`LockProxyGuard::owner_died`]). Python's manager lock stays taken forever.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// let manager = multiproc::Manager::start()?;
    /// let lock = manager.lock()?;
    /// let held = lock.acquire()?;
    /// assert!(lock.is_locked()?);
    /// assert!(lock.clone().try_acquire().unwrap_err().is_timeout()); // a clone: another owner
    /// drop(held);
    /// assert!(!lock.is_locked()?);
    /// # Ok(())
    /// # }
    /// ```
    pub struct LockProxy = Kind::Lock;
}

/// A taken [`LockProxy`]; dropping it releases the lock.
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockProxyGuard<'a> {
    proxy: &'a LockProxy,
    owner_died: bool,
    fence: u64,
}

acquire_family!(LockProxy, LockProxyGuard);

impl LockProxyGuard<'_> {
    /// The acquisition's fencing token: every acquisition of the lock gets a larger one than all
    /// before it. A resource that remembers the largest token it saw and refuses writes carrying
    /// a smaller one is safe from a holder that lost the lock without knowing (on Redis, a lease
    /// that lapsed while its process was stopped). Kleppmann's fencing token.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// let manager = multiproc::Manager::start()?;
    /// let lock = manager.lock()?;
    /// let first = lock.acquire()?.fencing_token();
    /// let second = lock.acquire()?.fencing_token();
    /// assert!(second > first);
    /// # Ok(())
    /// # }
    /// ```
    pub fn fencing_token(&self) -> u64 {
        self.fence
    }
}

proxy! {
    /// A recursive lock that lives in a [`Manager`](crate::Manager): [`RLock`](crate::RLock)'s
    /// methods. The handle that holds it may take it again, and it is free once every acquisition
    /// is released. Ownership is by handle (each clone is another owner), and a holder's death
    /// releases it as for [`LockProxy`]. Python: `manager.RLock()`.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// let manager = multiproc::Manager::start()?;
    /// let lock = manager.rlock()?;
    /// let outer = lock.acquire()?;
    /// let inner = lock.acquire()?; // the same handle: no deadlock
    /// assert_eq!(lock.depth()?, 2);
    /// drop(inner);
    /// assert!(lock.clone().try_acquire().is_err()); // still held by `outer`
    /// drop(outer);
    /// assert!(lock.clone().try_acquire().is_ok());
    /// # Ok(())
    /// # }
    /// ```
    pub struct RLockProxy = Kind::RLock;
}

/// One acquisition of an [`RLockProxy`]; dropping it releases that acquisition.
#[must_use = "the acquisition is released when the guard is dropped"]
pub struct RLockProxyGuard<'a> {
    proxy: &'a RLockProxy,
    owner_died: bool,
    fence: u64,
}

acquire_family!(RLockProxy, RLockProxyGuard);

impl RLockProxyGuard<'_> {
    /// The fencing token of the acquisition that took the lock (an acquisition by the handle
    /// that holds it already keeps it): see [`LockProxyGuard::fencing_token`].
    pub fn fencing_token(&self) -> u64 {
        self.fence
    }
}

impl RLockProxy {
    /// Releases one acquisition held by this handle, Python style: for one whose guard was given
    /// up with `std::mem::forget`. [`ErrorCode::NotOwner`](crate::ErrorCode::NotOwner) if this
    /// handle does not hold it.
    pub fn release(&self) -> Result<(), ManagerError> {
        self.handle.call(Op::LockRelease, Vec::new())?;
        self.handle.count_held(false);
        Ok(())
    }

    /// How many times this handle holds it (0: not at all).
    pub fn depth(&self) -> Result<u32, ManagerError> {
        Ok(self.state()?.1)
    }
}
