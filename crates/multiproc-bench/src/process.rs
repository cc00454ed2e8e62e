//! The twin of `bench_process.py`: mean time of a sequential start + join of a process that does
//! nothing, after one warm-up (which starts the fork server); 100 rounds for fork and forkserver,
//! 20 for spawn (the default start method).

use std::time::Instant;

use multiproc::{Process, StartMethod};

const N_FORK: u32 = 100;
const N_SPAWN: u32 = 20;

fn noop(_: ()) {}

fn start_join_mean_ms(method: StartMethod, n: u32) -> multiproc::Result<f64> {
    let start_join = || -> multiproc::Result<()> {
        Process::builder()
            .start_method(method)
            .spawn((), noop)?
            .join()?;
        Ok(())
    };
    start_join()?; // warm-up, as the Python side does
    let t0 = Instant::now();
    for _ in 0..n {
        start_join()?;
    }
    Ok(t0.elapsed().as_secs_f64() * 1e3 / f64::from(n))
}

pub(crate) fn run() -> multiproc::Result<()> {
    crate::result(
        "process_start_join_fork_ms",
        start_join_mean_ms(StartMethod::Fork, N_FORK)?,
        "ms",
    );
    crate::result(
        "process_start_join_forkserver_ms",
        start_join_mean_ms(StartMethod::ForkServer, N_FORK)?,
        "ms",
    );
    crate::result(
        "process_start_join_spawn_ms",
        start_join_mean_ms(StartMethod::Spawn, N_SPAWN)?,
        "ms",
    );
    Ok(())
}
