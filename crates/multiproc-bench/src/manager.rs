//! The twins of `bench_manager_dict.py` and of the manager part of `bench_extras.py`: a
//! manager-hosted dict, 20k set + get pairs from this process, then from 2 client processes at
//! once (aggregate, timed from their release to the last one's end); the time to start a
//! manager until it answers; 10k put + get on a manager queue and 10k acquire + release of a
//! manager lock; and the `_batched` variants, where one `update` and one
//! `get_many` carry 100 pairs each.

use std::time::Instant;

use multiproc::{Barrier, DictProxy, Manager, Process, Queue};

const N: u64 = 20_000;
const BATCH: u64 = 100;
const LOCK_PAIRS: u32 = 10_000;

fn client((d, id, barrier, out): (DictProxy<String, u64>, u64, Barrier, Queue<f64>)) {
    let key = format!("k{id}");
    d.insert(&key, &0).expect("manager up");
    d.get(&key).expect("manager up"); // warm
    barrier.wait().expect("barrier intact");
    let t0 = Instant::now();
    for i in 0..N {
        d.insert(&key, &i).expect("manager up");
        d.get(&key).expect("manager up");
    }
    out.put(&t0.elapsed().as_secs_f64()).expect("queue open");
}

pub(crate) fn run() -> multiproc::Result<()> {
    let t0 = Instant::now();
    let manager = Manager::start()?;
    manager.dict::<String, u64>()?; // answers: it is up
    crate::result("manager_start_s", t0.elapsed().as_secs_f64(), "s");

    let d = manager.dict::<String, u64>()?;
    let key = "k".to_string();
    d.insert(&key, &0)?;
    d.get(&key)?;
    let t0 = Instant::now();
    for i in 0..N {
        d.insert(&key, &i)?;
        d.get(&key)?;
    }
    let dt = t0.elapsed().as_secs_f64();
    crate::result(
        "manager_dict_1client_roundtrips_per_s",
        2.0 * N as f64 / dt,
        "roundtrips/s",
    );
    crate::result(
        "manager_dict_1client_setget_pairs_per_s",
        N as f64 / dt,
        "pairs/s",
    );

    let barrier = Barrier::new(3)?;
    let out = Queue::<f64>::new()?;
    let clients = (0..2)
        .map(|id| Process::spawn((d.clone(), id, barrier.clone(), out.clone()), client))
        .collect::<Result<Vec<_>, _>>()?;
    barrier.wait()?;
    let t0 = Instant::now();
    for _ in 0..2 {
        out.get()?;
    }
    let wall = t0.elapsed().as_secs_f64();
    for c in clients {
        c.join()?;
    }
    crate::result(
        "manager_dict_2clients_aggregate_roundtrips_per_s",
        4.0 * N as f64 / wall,
        "roundtrips/s",
    );
    crate::result(
        "manager_dict_2clients_aggregate_setget_pairs_per_s",
        2.0 * N as f64 / wall,
        "pairs/s",
    );

    let queue = manager.queue::<u64>()?;
    let t0 = Instant::now();
    for i in 0..u64::from(LOCK_PAIRS) {
        queue.put(&i)?;
        queue.get()?;
    }
    crate::result(
        "manager_queue_put_get_pairs_per_s",
        f64::from(LOCK_PAIRS) / t0.elapsed().as_secs_f64(),
        "pairs/s",
    );

    let lock = manager.lock()?;
    let t0 = Instant::now();
    for _ in 0..LOCK_PAIRS {
        drop(lock.acquire()?);
    }
    crate::result(
        "manager_lock_acquire_release_per_s",
        f64::from(LOCK_PAIRS) / t0.elapsed().as_secs_f64(),
        "pairs/s",
    );

    // Batched: the same number of pairs, 100 per round trip.
    let keys: Vec<String> = (0..BATCH).map(|i| format!("b{i}")).collect();
    let t0 = Instant::now();
    for round in 0..N / BATCH {
        let values: Vec<u64> = (0..BATCH).map(|i| round * BATCH + i).collect();
        d.update(keys.iter().zip(values.iter()))?;
        d.get_many(keys.iter())?;
    }
    let dt = t0.elapsed().as_secs_f64();
    crate::result(
        "manager_dict_1client_roundtrips_per_s_batched",
        2.0 * N as f64 / dt,
        "pairs/s",
    );
    Ok(())
}
