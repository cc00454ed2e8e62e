//! Scenario S1, dict_workers: a manager dict; ten processes, process i stores key i with value
//! 2i; the parent joins them and prints every pair in key order.
//!
//! Python's version:
//!
//! ```python
//! def work(d, i):
//!     d[i] = 2 * i
//!
//! with Manager() as m:
//!     d = m.dict()
//!     ps = [Process(target=work, args=(d, i)) for i in range(10)]
//!     ...
//!     for k in sorted(d): print(f"{k}={d[k]}")
//! ```
//!
//! Run it: `cargo run --release --example dict_workers`.

use multiproc::{DictProxy, Manager, Process};

fn work((d, i): (DictProxy<u32, u32>, u32)) {
    d.insert(i, 2 * i).expect("the manager runs");
}

pub fn run() -> multiproc::Result<()> {
    let manager = Manager::from_env()?; // on Redis if MULTIPROC_REDIS_URL says where
    let d = manager.dict::<u32, u32>()?;
    multiproc::join_all((0..10).map(|i| Process::spawn((d.clone(), i), work)))?;
    let mut pairs = d.items()?;
    pairs.sort();
    for (k, v) in pairs {
        println!("{k}={v}");
    }
    Ok(())
}

#[allow(dead_code)] // unused when the tour includes this file
fn main() -> multiproc::Result<()> {
    multiproc::init();
    run()
}
