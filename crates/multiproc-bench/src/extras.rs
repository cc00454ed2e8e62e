//! The twins of the `bench_extras.py` workloads that exist so far: an uncontended cross-process
//! Lock (200k acquire + release), a named 1 MiB shared memory segment created, attached, closed
//! and unlinked (200 times), and a JoinableQueue's put, get, task_done in one process (2000
//! cycles, then join).

use std::time::Instant;

use multiproc::{JoinableQueue, Lock, SharedMemory};

const LOCK_PAIRS: u32 = 10_000 * 20;
const SHM_ROUNDS: u32 = 200;
const JOINABLE_CYCLES: u32 = 2000;

pub(crate) fn run() -> multiproc::Result<()> {
    let lock = Lock::new()?;
    let t0 = Instant::now();
    for _ in 0..LOCK_PAIRS {
        drop(lock.acquire()?);
    }
    let per_s = f64::from(LOCK_PAIRS) / t0.elapsed().as_secs_f64();
    crate::result(
        "mp_lock_uncontended_acquire_release_per_s",
        per_s,
        "pairs/s",
    );

    // Python reserves nothing at creation: the twin of its workload is the lazy segment; ours by
    // default reserves the pages (WORKLOADS.md), reported beside it.
    type Create = fn(&str, usize) -> Result<SharedMemory, multiproc::ShmError>;
    let ways: [(&str, Create); 2] = [
        ("", SharedMemory::create_named_lazy),
        ("_reserved", SharedMemory::create_named),
    ];
    for (suffix, create) in ways {
        let t0 = Instant::now();
        for i in 0..SHM_ROUNDS {
            let name = format!("bench-{}-{i}", std::process::id());
            let created = create(&name, 1 << 20)?;
            let attached = SharedMemory::open(&name)?;
            drop(attached);
            created.unlink()?;
            drop(created);
        }
        let us = t0.elapsed().as_secs_f64() * 1e6 / f64::from(SHM_ROUNDS);
        crate::result(
            &format!("shm_1MiB_create_attach_close_unlink_us{suffix}"),
            us,
            "us",
        );
    }

    let queue = JoinableQueue::<u32>::new()?;
    let t0 = Instant::now();
    for i in 0..JOINABLE_CYCLES {
        queue.put(i)?;
        queue.get()?;
        queue.task_done()?;
    }
    queue.join()?;
    let per_s = f64::from(JOINABLE_CYCLES) / t0.elapsed().as_secs_f64();
    crate::result(
        "joinablequeue_put_get_taskdone_same_proc_per_s",
        per_s,
        "cycles/s",
    );
    Ok(())
}
