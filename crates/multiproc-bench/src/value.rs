//! The twin of `bench_value_lock.py`: a shared integer incremented under its lock by 2 processes
//! x 100k after a barrier (timed from the barrier until both are joined; the total is checked), then
//! by 1 process alone. `_atomic` variants do the same with `fetch_add`, without the lock.

use std::time::Instant;

use multiproc::{Barrier, Process, Value};

const N: u32 = 100_000;

fn locked_worker((value, n, barrier): (Value<i32>, u32, Barrier)) {
    barrier.wait().expect("barrier");
    for _ in 0..n {
        value.update(|v| *v += 1).expect("no holder dies here");
    }
}

fn atomic_worker((value, n, barrier): (Value<i32>, u32, Barrier)) {
    barrier.wait().expect("barrier");
    for _ in 0..n {
        value.fetch_add(1);
    }
}

/// Increments per second of 2 processes running `worker` after a 3-party barrier.
fn two_processes(worker: fn((Value<i32>, u32, Barrier))) -> multiproc::Result<f64> {
    let value = Value::new(0i32)?;
    let barrier = Barrier::new(3)?;
    let workers = (0..2)
        .map(|_| Process::spawn((value.clone(), N, barrier.clone()), worker))
        .collect::<Result<Vec<_>, _>>()?;
    barrier.wait()?;
    let t0 = Instant::now();
    for w in workers {
        w.join()?;
    }
    let dt = t0.elapsed().as_secs_f64();
    assert_eq!(value.get(), 2 * N as i32, "increments were lost");
    Ok(f64::from(2 * N) / dt)
}

/// Increments per second of this process alone.
fn one_process(increment: fn(&Value<i32>)) -> multiproc::Result<f64> {
    let value = Value::new(0i32)?;
    let t0 = Instant::now();
    for _ in 0..N {
        increment(&value);
    }
    let dt = t0.elapsed().as_secs_f64();
    assert_eq!(value.get(), N as i32);
    Ok(f64::from(N) / dt)
}

pub(crate) fn run() -> multiproc::Result<()> {
    use crate::result;
    result(
        "value_locked_incr_2proc_per_s",
        two_processes(locked_worker)?,
        "incr/s",
    );
    result(
        "value_locked_incr_1proc_uncontended_per_s",
        one_process(|v| v.update(|x| *x += 1).expect("no holder dies here"))?,
        "incr/s",
    );
    result(
        "value_incr_2proc_per_s_atomic",
        two_processes(atomic_worker)?,
        "incr/s",
    );
    result(
        "value_incr_1proc_uncontended_per_s_atomic",
        one_process(|v| {
            v.fetch_add(1);
        })?,
        "incr/s",
    );
    Ok(())
}
