//! Round trips on a busy machine: the two sides on one CPU.
//!
//! When every CPU of the machine is wanted (more runnable tasks than CPUs, see
//! [`crate::spin`]), a round trip between two threads that sleep between messages is fast only
//! while both run on one CPU: the sender's wake-up of the other side is then a switch on that CPU,
//! microseconds. Split over two CPUs, each beside a busy process, every message waits for the busy
//! process's turn to end. Measured with two busy loops on this two-CPU machine, a C ping-pong over
//! a Unix socket pair: 60 000 to 90 000 round trips a second on one CPU, 6 000 split; left to the
//! scheduler, either, from run to run.
//!
//! So on a busy machine a client says which CPU it runs on ([`cpu_to_share`], in each request
//! of a manager connection on this machine), and the thread that serves it follows it there
//! ([`Follower`]): pinned to that CPU while the hints come, given its own CPUs back when they stop
//! (the machine freed up). Only our own server threads move; a client's threads stay where the
//! scheduler puts them. The two ends of a pipe, both a user's threads, say their CPU in each
//! message instead (the datagram's tag), and a wait for an answer from another CPU polls rather
//! than sleeps ([`crate::spin::Spinner::peer_ran_on`]).

use crate::sys::{self, CpuAffinity};

/// The CPU this thread runs on, when every CPU is wanted and the other side of a round trip
/// should run beside it; `None` on a machine with CPUs to spare (each side keeps its own).
pub(crate) fn cpu_to_share() -> Option<u32> {
    if crate::spin::cpus_to_spare() {
        return None;
    }
    sys::current_cpu()
}

/// A serving thread that follows its client's CPU ([`follow`](Self::follow)).
pub(crate) struct Follower {
    /// The thread's own CPUs, to give back; `None`: unknown, so never pinned.
    own: Option<CpuAffinity>,
    /// The CPU it is pinned to now.
    pinned: Option<u32>,
}

impl Follower {
    /// For the calling thread, which is not pinned yet.
    pub(crate) fn new() -> Follower {
        Follower {
            own: CpuAffinity::of_this_thread(),
            pinned: None,
        }
    }

    /// Follows a client that says it runs on `cpu` (`Some`) or says nothing (`None`: the machine
    /// has CPUs to spare, or the client is elsewhere). A CPU this thread may not use is ignored.
    pub(crate) fn follow(&mut self, cpu: Option<u32>) {
        if cpu == self.pinned {
            return;
        }
        let Some(own) = &self.own else { return };
        match cpu {
            Some(cpu) if own.pin_to(cpu) => self.pinned = Some(cpu),
            _ => {
                if self.pinned.take().is_some() {
                    own.restore();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPUs the calling thread may run on.
    fn allowed() -> Vec<usize> {
        let set = rustix::thread::sched_getaffinity(None).unwrap();
        (0..rustix::thread::CpuSet::MAX_CPU)
            .filter(|&cpu| set.is_set(cpu))
            .collect()
    }

    #[test]
    fn a_follower_pins_its_thread_to_the_cpu_it_is_told_and_gives_its_cpus_back() {
        // On a thread of its own: the harness's keeps its CPUs whatever happens here.
        std::thread::spawn(|| {
            let own = allowed();
            let mut follower = Follower::new();
            for &cpu in [own[0], own[own.len() - 1]].iter() {
                follower.follow(Some(cpu as u32));
                assert_eq!(allowed(), [cpu], "pinned to the client's CPU");
                assert_eq!(sys::current_cpu(), Some(cpu as u32), "and moved there");
            }
            follower.follow(Some(u32::MAX));
            assert_eq!(allowed(), own, "a CPU it may not use: its own again");
            follower.follow(Some(own[0] as u32));
            follower.follow(None);
            assert_eq!(allowed(), own, "no hint: its own CPUs again");
        })
        .join()
        .unwrap();
    }
}
