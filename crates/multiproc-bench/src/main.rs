//! multiproc's side of the side-by-side benchmark against CPython's multiprocessing.
//!
//! Each workload mirrors a script of `../shared/bench/python/` (same counts, same timed region) and
//! prints `RESULT <metric> <value> <unit>` lines with the same metric names. Run it through
//! `../shared/bench/compare --rounds 3 -- target/release/multiproc-bench`.
//!
//! `multiproc-bench [FILTER]` runs only the workloads whose name contains FILTER. The `redis`
//! workload runs against the server at `MULTIPROC_REDIS_URL` (`../shared/bench/with-redis` starts
//! one), and only when that is set.

mod extras;
mod manager;
mod pipe;
mod pool;
mod process;
mod queue;
mod redis;
mod value;

/// Prints one result line in the format `compare` reads.
pub(crate) fn result(metric: &str, value: f64, unit: &str) {
    println!("RESULT {metric} {value:.6} {unit}");
}

type Workload = (&'static str, fn() -> multiproc::Result<()>);

const WORKLOADS: &[Workload] = &[
    ("process", process::run),
    ("value", value::run),
    ("extras", extras::run),
    ("pipe", pipe::run),
    ("queue", queue::run),
    ("pool", pool::run),
    ("manager", manager::run),
    ("redis", redis::run),
];

fn main() -> multiproc::Result<()> {
    multiproc::init();
    let filter = std::env::args().nth(1).unwrap_or_default();
    for (name, run) in WORKLOADS {
        if name.contains(&filter) {
            run()?;
        }
    }
    Ok(())
}
