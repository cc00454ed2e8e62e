//! The twin of `bench_pool.py`: a Pool of 2 workers; its construction, a first map over 2 items
//! (both workers up and answering), a map of an identity function over 0..10000 with the default
//! chunk size and with chunk size 1, then close and join. Once with the default (spawn) start
//! method, once with fork.

use std::time::Instant;

use multiproc::{Pool, StartMethod};

const N: u64 = 10_000;

fn noop(x: u64) -> u64 {
    x
}

fn run_one(method: StartMethod, name: &str) -> multiproc::Result<()> {
    let t0 = Instant::now();
    let pool = Pool::builder().processes(2).start_method(method).build()?;
    let ctor = t0.elapsed().as_secs_f64();
    pool.map(noop, 0..2)?;
    let ready = t0.elapsed().as_secs_f64();
    crate::result(&format!("pool2_{name}_ctor_s"), ctor, "s");
    crate::result(
        &format!("pool2_{name}_startup_to_first_result_s"),
        ready,
        "s",
    );

    let t0 = Instant::now();
    let out = pool.map(noop, 0..N)?;
    crate::result(
        &format!("pool2_{name}_map_10k_default_chunksize_s"),
        t0.elapsed().as_secs_f64(),
        "s",
    );
    assert!(out.into_iter().eq(0..N));
    drop(pool);

    // Chunk size 1 is a pool setting here (Python passes it to `map`).
    let mut pool = Pool::builder()
        .processes(2)
        .chunksize(1)
        .start_method(method)
        .build()?;
    pool.map(noop, 0..2)?;
    let t0 = Instant::now();
    pool.map(noop, 0..N)?;
    crate::result(
        &format!("pool2_{name}_map_10k_chunksize1_s"),
        t0.elapsed().as_secs_f64(),
        "s",
    );
    let t0 = Instant::now();
    pool.close();
    pool.join();
    crate::result(
        &format!("pool2_{name}_close_join_s"),
        t0.elapsed().as_secs_f64(),
        "s",
    );
    Ok(())
}

pub(crate) fn run() -> multiproc::Result<()> {
    run_one(StartMethod::Spawn, "spawn")?;
    run_one(StartMethod::Fork, "fork")
}
