//! Scenario S13, lost_update: the classic trap. Two processes each do 10 000 read-then-write
//! increments of one key of a manager dict, and updates are lost (a read and the write after it
//! are two round trips; the other process writes in between). Then the same with `incr`, which
//! the server runs atomically: exact.
//!
//! Python's version of the trap (and Python has no atomic alternative):
//!
//! ```python
//! def work(d):
//!     for _ in range(10_000):
//!         d["n"] += 1
//! ```
//!
//! Run it: `cargo run --release --example lost_update`.

use multiproc::{DictProxy, Manager, Process};

const ROUNDS: u32 = 10_000;

fn read_then_write(d: DictProxy<String, i64>) {
    for _ in 0..ROUNDS {
        let n = d.get("n").expect("the manager runs").unwrap_or(0);
        d.insert("n", n + 1).expect("the manager runs");
    }
}

fn atomic(d: DictProxy<String, i64>) {
    for _ in 0..ROUNDS {
        d.incr("n", 1i64).expect("the manager runs");
    }
}

fn total(d: &DictProxy<String, i64>, work: fn(DictProxy<String, i64>)) -> multiproc::Result<i64> {
    d.insert("n", 0)?;
    let workers = (0..2)
        .map(|_| Process::spawn(d.clone(), work))
        .collect::<Result<Vec<_>, _>>()?;
    for w in workers {
        w.join()?;
    }
    Ok(d.get("n")?.unwrap_or(0))
}

pub fn run() -> multiproc::Result<()> {
    let manager = Manager::from_env()?; // on Redis if MULTIPROC_REDIS_URL says where
    let d = manager.dict::<String, i64>()?;
    println!("read then write: {} of 20000", total(&d, read_then_write)?);
    println!("incr: {} of 20000", total(&d, atomic)?);
    Ok(())
}

#[allow(dead_code)] // unused when the tour includes this file
fn main() -> multiproc::Result<()> {
    multiproc::init();
    run()
}
