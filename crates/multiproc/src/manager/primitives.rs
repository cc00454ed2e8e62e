//! Semaphores, conditions, events and barriers that live in the manager. Their operations wait,
//! so each handle has a connection of its own (a clone opens another); a waiting call holds up
//! nothing else, and a waiter whose process dies is dropped by the server.

use std::time::Duration;

use rmpv::Value;
use serde::{Deserialize, Serialize};

use super::waiting::{acquire_family, acquired, timeout_ms, waiting_proxy};
use super::{Handle, ManagerError, from_value};

fn unexpected(op: &str, answer: &Value) -> ManagerError {
    ManagerError::Protocol(format!("{op} gave {answer}"))
}

/// A semaphore that lives in a [`Manager`](super::Manager). Permits belong to nobody, as in
/// Python: one process may acquire and another release (to signal), so a process that dies
/// holding a permit does not give it back. For exclusion that survives a death, use a
/// [`LockProxy`](super::LockProxy). Python: `manager.Semaphore(n)`, `manager.BoundedSemaphore(n)`.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// let manager = multiproc::Manager::start()?;
/// let slots = manager.bounded_semaphore(2)?;
/// slots.acquire()?;
/// assert!(slots.try_acquire()?);
/// assert!(!slots.try_acquire()?); // both taken
/// slots.release()?;
/// slots.release()?;
/// assert!(slots.release().is_err()); // TooManyReleases: above its bound
/// # Ok(())
/// # }
/// ```
#[derive(Serialize, Deserialize)]
pub struct SemaphoreProxy {
    handle: Handle,
}

waiting_proxy!(SemaphoreProxy);

impl SemaphoreProxy {
    /// Takes a permit, waiting as long as it takes.
    pub fn acquire(&self) -> Result<(), ManagerError> {
        if self.take(Value::Nil)? {
            Ok(())
        } else {
            Err(ManagerError::Protocol(
                "an acquire without a wait timed out".into(),
            ))
        }
    }

    /// Takes a permit if one is free now.
    pub fn try_acquire(&self) -> Result<bool, ManagerError> {
        self.take(Value::from(0))
    }

    /// Takes a permit, waiting at most `timeout`; false if none came free.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        self.take(timeout_ms(timeout))
    }

    fn take(&self, timeout: Value) -> Result<bool, ManagerError> {
        Ok(acquired(self.handle.call("semaphore.acquire", vec![timeout])?)?.is_some())
    }

    /// Gives a permit back. A bounded semaphore refuses to go above its initial value
    /// ([`ErrorCode::TooManyReleases`](super::ErrorCode::TooManyReleases)).
    pub fn release(&self) -> Result<(), ManagerError> {
        self.handle.call("semaphore.release", Vec::new()).map(drop)
    }

    /// The permits free now.
    pub fn value(&self) -> Result<u32, ManagerError> {
        from_value(self.handle.call("semaphore.value", Vec::new())?)
    }
}

/// A condition variable that lives in a [`Manager`](super::Manager), with a recursive lock of its
/// own (owned by this handle). Python: `manager.Condition()`.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{ConditionProxy, Manager, Process, ValueProxy};
///
/// let manager = Manager::start()?;
/// let (ready, flag) = (manager.condition()?, manager.value(&false)?);
/// let child = Process::spawn((ready.clone(), flag.clone()), |(ready, flag): (ConditionProxy, ValueProxy<bool>)| {
///     let _held = ready.acquire().unwrap();
///     flag.set(&true).unwrap();
///     ready.notify_all().unwrap();
/// })?;
/// let mut held = ready.acquire()?;
/// held.wait_while(|| !flag.get().unwrap())?;
/// drop(held);
/// child.join()?;
/// # Ok(())
/// # }
/// ```
#[derive(Serialize, Deserialize)]
pub struct ConditionProxy {
    handle: Handle,
}

waiting_proxy!(ConditionProxy);

/// A [`ConditionProxy`]'s lock, held; dropping it releases one acquisition.
#[must_use = "the lock is released when the guard is dropped"]
pub struct ConditionProxyGuard<'a> {
    proxy: &'a ConditionProxy,
    owner_died: bool,
}

acquire_family!(ConditionProxy, ConditionProxyGuard);

impl ConditionProxy {
    /// Wakes the longest waiting waiter, if any; returns how many it woke.
    pub fn notify_one(&self) -> Result<usize, ManagerError> {
        self.notify(Value::from(1))
    }

    /// Wakes every waiter; returns how many.
    pub fn notify_all(&self) -> Result<usize, ManagerError> {
        self.notify(Value::Nil)
    }

    fn notify(&self, count: Value) -> Result<usize, ManagerError> {
        from_value(self.handle.call("condition.notify", vec![count])?)
    }
}

impl ConditionProxyGuard<'_> {
    /// Releases the lock, waits to be notified, then takes the lock back.
    pub fn wait(&mut self) -> Result<(), ManagerError> {
        self.wait_within(Value::Nil).map(drop)
    }

    /// [`wait`](Self::wait), at most `timeout`; false if no notification came (the lock is
    /// taken back either way).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<bool, ManagerError> {
        self.wait_within(timeout_ms(timeout))
    }

    /// Waits while `condition` holds, checking it again after each notification. Python:
    /// `wait_for(lambda: not condition())`.
    pub fn wait_while(&mut self, mut condition: impl FnMut() -> bool) -> Result<(), ManagerError> {
        while condition() {
            self.wait()?;
        }
        Ok(())
    }

    fn wait_within(&mut self, timeout: Value) -> Result<bool, ManagerError> {
        let answer = self.proxy.handle.call("condition.wait", vec![timeout])?;
        match answer.as_array().map(Vec::as_slice) {
            Some([Value::Boolean(notified), Value::Boolean(owner_died)]) => {
                self.owner_died |= *owner_died;
                Ok(*notified)
            }
            _ => Err(unexpected("condition.wait", &answer)),
        }
    }
}

/// An event that lives in a [`Manager`](super::Manager): a flag that processes wait for. Python:
/// `manager.Event()`.
#[derive(Serialize, Deserialize)]
pub struct EventProxy {
    handle: Handle,
}

waiting_proxy!(EventProxy);

impl EventProxy {
    /// Sets the flag, waking every waiter.
    pub fn set(&self) -> Result<(), ManagerError> {
        self.handle.call("event.set", Vec::new()).map(drop)
    }

    /// Clears the flag.
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.handle.call("event.clear", Vec::new()).map(drop)
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> Result<bool, ManagerError> {
        from_value(self.handle.call("event.is_set", Vec::new())?)
    }

    /// Waits until the flag is set, as long as it takes.
    pub fn wait(&self) -> Result<(), ManagerError> {
        self.handle.call("event.wait", vec![Value::Nil]).map(drop)
    }

    /// Waits at most `timeout` for the flag; whether it is set.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, ManagerError> {
        from_value(self.handle.call("event.wait", vec![timeout_ms(timeout)])?)
    }
}

/// A barrier that lives in a [`Manager`](super::Manager). A waiter that times out, or whose process
/// dies while it waits, breaks the barrier for everyone
/// ([`ErrorCode::BrokenBarrier`](super::ErrorCode::BrokenBarrier)) instead of leaving them
/// waiting for a party that will not come. Python: `manager.Barrier(parties)`.
#[derive(Serialize, Deserialize)]
pub struct BarrierProxy {
    handle: Handle,
}

waiting_proxy!(BarrierProxy);

impl BarrierProxy {
    /// Waits until every party has come; returns this party's arrival index (0 for the first).
    pub fn wait(&self) -> Result<usize, ManagerError> {
        from_value(self.handle.call("barrier.wait", vec![Value::Nil])?)
    }

    /// [`wait`](Self::wait), at most `timeout`; a timeout breaks the barrier.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, ManagerError> {
        from_value(
            self.handle
                .call("barrier.wait", vec![timeout_ms(timeout)])?,
        )
    }

    /// Breaks the barrier: waiters, now and later, get `BrokenBarrier` until a
    /// [`reset`](Self::reset).
    pub fn abort(&self) -> Result<(), ManagerError> {
        self.handle.call("barrier.abort", Vec::new()).map(drop)
    }

    /// Makes the barrier whole and empty again; its current waiters get `BrokenBarrier`.
    pub fn reset(&self) -> Result<(), ManagerError> {
        self.handle.call("barrier.reset", Vec::new()).map(drop)
    }

    fn state(&self) -> Result<(usize, usize, bool), ManagerError> {
        from_value(self.handle.call("barrier.state", Vec::new())?)
    }

    /// The number of parties.
    pub fn parties(&self) -> Result<usize, ManagerError> {
        Ok(self.state()?.0)
    }

    /// The parties waiting now.
    pub fn n_waiting(&self) -> Result<usize, ManagerError> {
        Ok(self.state()?.1)
    }

    /// Whether the barrier is broken.
    pub fn is_broken(&self) -> Result<bool, ManagerError> {
        Ok(self.state()?.2)
    }
}
