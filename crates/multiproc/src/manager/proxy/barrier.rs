//! [`BarrierProxy`]: a meeting point that lives in the manager.

use std::time::{Duration, Instant};

use super::{deadline_arg, forever, from_value, proxy, waited};
use crate::deadline;
use crate::manager::ManagerError;
use crate::manager::protocol::{Kind, Op};

proxy! {
    /// A barrier that lives in a [`Manager`](crate::Manager): [`Barrier`](crate::Barrier)'s
    /// methods. A waiter that times out, or whose process dies while it waits, breaks the barrier
    /// for everyone ([`ErrorCode::BrokenBarrier`](crate::ErrorCode::BrokenBarrier)) instead of
    /// leaving them waiting for a party that will not come. Python: `manager.Barrier(parties)`.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// use multiproc::{BarrierProxy, Manager, Process};
    ///
    /// let manager = Manager::start()?;
    /// let barrier = manager.barrier(2)?;
    /// let child = Process::spawn(barrier.clone(), |b: BarrierProxy| b.wait().is_ok())?;
    /// barrier.wait()?;
    /// assert!(child.join()?);
    /// # Ok(())
    /// # }
    /// ```
    pub struct BarrierProxy = Kind::Barrier;
}

impl BarrierProxy {
    /// Waits until every party has come, as long as it takes; returns this party's arrival index
    /// (0 for the first).
    pub fn wait(&self) -> Result<usize, ManagerError> {
        forever(self.wait_until(None))
    }

    /// [`wait`](Self::wait), at most `timeout` (`Duration::MAX`: as long as it takes). A timeout
    /// breaks the barrier, as in Python: this waiter gets [`ManagerError::Timeout`], the others
    /// `BrokenBarrier`.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<usize, ManagerError> {
        self.wait_until(deadline::after(timeout))
    }

    /// [`wait`](Self::wait), until `deadline` (see [`wait_timeout`](Self::wait_timeout)). There
    /// is no `try_wait`, as on [`Barrier`](crate::Barrier): arriving cannot be undone.
    pub fn wait_deadline(&self, deadline: Instant) -> Result<usize, ManagerError> {
        self.wait_until(Some(deadline))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<usize, ManagerError> {
        let answer = self
            .handle
            .call(Op::BarrierWait, vec![deadline_arg(deadline)])?;
        from_value(waited(answer, ManagerError::Timeout)?)
    }

    /// Breaks the barrier: waiters, now and later, get `BrokenBarrier` until a
    /// [`reset`](Self::reset).
    pub fn abort(&self) -> Result<(), ManagerError> {
        self.handle.call(Op::BarrierAbort, Vec::new()).map(drop)
    }

    /// Makes the barrier whole and empty again; its current waiters get `BrokenBarrier`.
    pub fn reset(&self) -> Result<(), ManagerError> {
        self.handle.call(Op::BarrierReset, Vec::new()).map(drop)
    }

    fn state(&self) -> Result<(usize, usize, bool), ManagerError> {
        from_value(self.handle.call(Op::BarrierState, Vec::new())?)
    }

    /// How many waits it takes to pass.
    pub fn parties(&self) -> Result<usize, ManagerError> {
        Ok(self.state()?.0)
    }

    /// How many are waiting now.
    pub fn n_waiting(&self) -> Result<usize, ManagerError> {
        Ok(self.state()?.1)
    }

    /// Whether it is broken.
    #[doc(alias = "broken")]
    pub fn is_broken(&self) -> Result<bool, ManagerError> {
        Ok(self.state()?.2)
    }
}
