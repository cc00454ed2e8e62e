//! [`LockProxy`] and [`RLockProxy`]: locks that live in the manager, owned by the connection that
//! took them.

use serde::{Deserialize, Serialize};

use super::waiting::{acquire_family, waiting_proxy};
use super::{Handle, ManagerError};

/// A lock that lives in a [`Manager`](super::Manager). Each handle has a connection of its own
/// (so a holder's release never waits behind another thread's acquire), and a taken lock
/// belongs to that connection: if its process dies, the manager releases the lock and tells the
/// next taker ([`LockProxyGuard::owner_died`]). Python's manager lock stays taken forever.
#[derive(Serialize, Deserialize)]
pub struct LockProxy {
    handle: Handle,
}

/// A taken [`LockProxy`]; dropping it releases the lock.
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockProxyGuard<'a> {
    proxy: &'a LockProxy,
    owner_died: bool,
}

waiting_proxy!(LockProxy);
acquire_family!(LockProxy, LockProxyGuard);

/// A recursive lock that lives in a [`Manager`](super::Manager): the handle that holds it may
/// take it again, and it is free once every acquisition is released. Ownership is by handle (each
/// has a connection of its own), and a holder's death releases it as for [`LockProxy`]. Python:
/// `manager.RLock()`.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// let manager = multiproc::Manager::start()?;
/// let lock = manager.rlock()?;
/// let outer = lock.acquire()?;
/// let inner = lock.acquire()?; // the same handle: no deadlock
/// drop(inner);
/// assert!(lock.clone().try_acquire()?.is_none()); // still held by `outer`
/// drop(outer);
/// assert!(lock.clone().try_acquire()?.is_some());
/// # Ok(())
/// # }
/// ```
#[derive(Serialize, Deserialize)]
pub struct RLockProxy {
    handle: Handle,
}

/// One acquisition of an [`RLockProxy`]; dropping it releases that acquisition.
#[must_use = "the acquisition is released when the guard is dropped"]
pub struct RLockProxyGuard<'a> {
    proxy: &'a RLockProxy,
    owner_died: bool,
}

waiting_proxy!(RLockProxy);
acquire_family!(RLockProxy, RLockProxyGuard);
