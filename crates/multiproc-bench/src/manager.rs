//! The twins of `bench_manager_dict.py` and of the manager part of `bench_extras.py`: a
//! manager-hosted dict, 20k set + get pairs from this process, then from 2 client processes at
//! once (aggregate, timed from their release to the last one's end); the time to start a
//! manager until it answers; 10k put + get on a manager queue and 10k acquire + release of a
//! manager lock; and the `_batched` variants, where one `update` and one `get_many` carry 100
//! pairs each (reported as operations per second).

use std::time::Instant;

use multiproc::{Barrier, DictProxy, Manager, Process, Queue};

pub(crate) const N: u64 = 20_000;
const BATCH: u64 = 100;
const LOCK_PAIRS: u32 = 10_000;

/// A client process: `N` inserts and `N` gets on keys of its own, one round trip each, or
/// `BATCH` per round trip.
fn client(
    (d, id, batched, barrier, out): (DictProxy<String, u64>, u64, bool, Barrier, Queue<f64>),
) {
    let key = format!("k{id}");
    d.insert(&key, 0).expect("manager up");
    d.get(&key).expect("manager up"); // warm
    barrier.wait().expect("barrier intact");
    let t0 = Instant::now();
    if batched {
        set_get_batched(&d, id);
    } else {
        for i in 0..N {
            d.insert(&key, i).expect("manager up");
            d.get(&key).expect("manager up");
        }
    }
    out.put(t0.elapsed().as_secs_f64()).expect("queue open");
}

/// `N` inserts and `N` gets, `BATCH` per round trip (`update`, `get_many`).
pub(crate) fn set_get_batched(d: &DictProxy<String, u64>, id: u64) {
    let keys: Vec<String> = (0..BATCH).map(|i| format!("b{id}-{i}")).collect();
    for round in 0..N / BATCH {
        let values: Vec<u64> = (0..BATCH).map(|i| round * BATCH + i).collect();
        d.update(keys.iter().zip(values.iter()))
            .expect("manager up");
        d.get_many(keys.iter()).expect("manager up");
    }
}

/// Two client processes at once, released together; the time until the last one ends.
pub(crate) fn two_clients(d: &DictProxy<String, u64>, batched: bool) -> multiproc::Result<f64> {
    let barrier = Barrier::new(3)?;
    let out = Queue::<f64>::new()?;
    let clients = (0..2)
        .map(|id| {
            let args = (d.clone(), id, batched, barrier.clone(), out.clone());
            Process::spawn(args, client)
        })
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
    Ok(wall)
}

pub(crate) fn run() -> multiproc::Result<()> {
    let t0 = Instant::now();
    let manager = Manager::start()?;
    manager.dict::<String, u64>()?; // answers: it is up
    crate::result("manager_start_s", t0.elapsed().as_secs_f64(), "s");

    let d = manager.dict::<String, u64>()?;
    let key = "k".to_string();
    d.insert(&key, 0)?;
    d.get(&key)?;
    let t0 = Instant::now();
    for i in 0..N {
        d.insert(&key, i)?;
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

    let wall = two_clients(&d, false)?;
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
        queue.put(i)?;
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

    // Batched: the same operations, 100 per round trip; reported as operations per second, to
    // compare with the round trips per second above.
    let t0 = Instant::now();
    set_get_batched(&d, 9);
    crate::result(
        "manager_dict_1client_roundtrips_per_s_batched",
        2.0 * N as f64 / t0.elapsed().as_secs_f64(),
        "ops/s",
    );
    let wall = two_clients(&d, true)?;
    crate::result(
        "manager_dict_2clients_aggregate_roundtrips_per_s_batched",
        4.0 * N as f64 / wall,
        "ops/s",
    );
    Ok(())
}
