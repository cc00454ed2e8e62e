//! The twin of `bench_redis.py`: the manager's dict proxy on Redis (the backend of the feature
//! `redis`) against what a Python user does with redis-py on the same server. 20k insert + get
//! pairs from this process, then from 2 client processes at once, then `update` + `get_many` of
//! 100 pairs per round trip (against 100 HSETs and 100 HGETs pipelined); a queue's put + get
//! (against RPUSH, BLMOVE into a pending list and LREM); a lock's acquire + release (against
//! redis-py's `Lock`). Runs only when
//! `MULTIPROC_REDIS_URL` says where the server is.

use std::time::Instant;

use multiproc::Manager;

use crate::manager::{N, set_get_batched, two_clients};

pub(crate) fn run() -> multiproc::Result<()> {
    let Ok(url) = std::env::var("MULTIPROC_REDIS_URL") else {
        eprintln!(
            "redis: MULTIPROC_REDIS_URL is not set (../shared/bench/with-redis sets it); skipped"
        );
        return Ok(());
    };
    // The same server as the twin's, through its Unix socket when with-redis gives one (as a
    // program on the server's machine would connect).
    let url = match std::env::var("MULTIPROC_REDIS_SOCKET") {
        Ok(socket) if std::env::var_os("MULTIPROC_REDIS_TCP").is_none() => {
            format!("redis+unix://{socket}")
        }
        _ => url,
    };
    let manager = Manager::connect_redis(&url)?;
    let d = manager.dict::<String, u64>()?;
    let key = "k".to_string();
    d.insert(&key, 0)?;
    d.get(&key)?;
    let t0 = Instant::now();
    for i in 0..N {
        d.insert(&key, i)?;
        d.get(&key)?;
    }
    crate::result(
        "redis_dict_1client_roundtrips_per_s",
        2.0 * N as f64 / t0.elapsed().as_secs_f64(),
        "roundtrips/s",
    );

    let wall = two_clients(&d, false)?;
    crate::result(
        "redis_dict_2clients_aggregate_roundtrips_per_s",
        4.0 * N as f64 / wall,
        "roundtrips/s",
    );

    let t0 = Instant::now();
    set_get_batched(&d, 9);
    crate::result(
        "redis_dict_1client_roundtrips_per_s_batched",
        2.0 * N as f64 / t0.elapsed().as_secs_f64(),
        "ops/s",
    );

    // As the twin: N / 2 put + get pairs (at least once: each get moves its item into this
    // consumer's pending list, where the next get acknowledges it).
    let queue = manager.queue::<u64>()?;
    let t0 = Instant::now();
    for i in 0..N / 2 {
        queue.put(i)?;
        queue.get()?;
    }
    crate::result(
        "redis_queue_put_get_pairs_per_s",
        (N / 2) as f64 / t0.elapsed().as_secs_f64(),
        "pairs/s",
    );

    // As the twin: N / 2 acquire + release pairs of one lock (a lease, renewed while held).
    let lock = manager.lock()?;
    let t0 = Instant::now();
    for _ in 0..N / 2 {
        drop(lock.acquire()?);
    }
    crate::result(
        "redis_lock_acquire_release_per_s",
        (N / 2) as f64 / t0.elapsed().as_secs_f64(),
        "pairs/s",
    );
    Ok(())
}
