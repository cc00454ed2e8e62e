//! Scenario S7, twenty_workers: a manager list `[1..=5]`, a manager dict, a manager i32 array
//! 0..10, a manager i32 value 1, and a manager lock; twenty processes each, holding the lock,
//! add 1 to the value, store 1 -> "1" and 2 -> "2" in the dict, and add 1 to every list item.
//!
//! Python's version:
//!
//! ```python
//! def work(l, d, a, v, lock):
//!     with lock:
//!         v.value += 1
//!         d[1] = "1"; d[2] = "2"
//!         for i in range(len(l)):
//!             l[i] += 1
//! ```
//!
//! Run it: `cargo run --release --example twenty_workers`.

use multiproc::{ArrayProxy, DictProxy, ListProxy, LockProxy, Manager, Process, ValueProxy};

type Shared = (
    ListProxy<i32>,
    DictProxy<i32, String>,
    ArrayProxy<i32>,
    ValueProxy<i32>,
    LockProxy,
);

fn work((list, dict, _array, value, lock): Shared) {
    let _held = lock.acquire().expect("the manager runs");
    // Read-modify-writes, made safe by the lock.
    value.set(value.get().expect("runs") + 1).expect("runs");
    dict.insert(1, "1").expect("runs");
    dict.insert(2, "2").expect("runs");
    for i in 0..list.len().expect("runs") {
        let item = list.get(i).expect("runs").expect("in range");
        list.set(i, item + 1).expect("runs");
    }
}

pub fn run() -> multiproc::Result<()> {
    let manager = Manager::from_env()?; // on Redis if MULTIPROC_REDIS_URL says where
    let list = manager.list_from(&[1, 2, 3, 4, 5])?;
    let dict = manager.dict::<i32, String>()?;
    let array = manager.array(&(0..10).collect::<Vec<i32>>())?;
    let value = manager.value(&1)?;
    let lock = manager.lock()?;
    multiproc::join_all((0..20).map(|_| {
        let shared = (
            list.clone(),
            dict.clone(),
            array.clone(),
            value.clone(),
            lock.clone(),
        );
        Process::spawn(shared, work)
    }))?;
    println!("list {:?}", list.to_vec()?);
    let mut entries = dict.items()?;
    entries.sort();
    println!("dict {entries:?}");
    println!("array {:?}", array.to_vec()?);
    println!("value {}", value.get()?);
    Ok(())
}

#[allow(dead_code)] // unused when the tour includes this file
fn main() -> multiproc::Result<()> {
    multiproc::init();
    run()
}
