//! CPUs: which one a thread runs on now, and pinning a thread to one and back.

use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

/// The CPU the calling thread runs on now (it may move at any time after).
pub(crate) fn current_cpu() -> Option<u32> {
    // SAFETY: sched_getcpu takes no argument and has no precondition; glibc answers from the
    // thread's rseq area where the kernel keeps it, without a system call.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).ok()
}

/// The CPUs a thread may run on, as it was given them: kept to give them back after it followed
/// another thread onto one ([`pin_to`](Self::pin_to)).
#[derive(Clone, Copy)]
pub(crate) struct CpuAffinity {
    allowed: CpuSet,
}

impl CpuAffinity {
    /// The calling thread's.
    pub(crate) fn of_this_thread() -> Option<CpuAffinity> {
        sched_getaffinity(None)
            .ok()
            .map(|allowed| CpuAffinity { allowed })
    }

    /// Pins the calling thread to `cpu`, if this affinity allows it; says whether it did.
    pub(crate) fn pin_to(&self, cpu: u32) -> bool {
        let cpu = cpu as usize;
        if cpu >= CpuSet::MAX_CPU || !self.allowed.is_set(cpu) {
            return false;
        }
        let mut only = CpuSet::new();
        only.set(cpu);
        sched_setaffinity(None, &only).is_ok()
    }

    /// Gives the calling thread this affinity again.
    pub(crate) fn restore(&self) {
        let _ = sched_setaffinity(None, &self.allowed);
    }
}
