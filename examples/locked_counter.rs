//! Scenario S10, locked_counter: a shared i32 and a Lock; five named processes each take the lock,
//! add 1, and print their name and the new value.
//!
//! Python's version:
//!
//! ```python
//! def work(v, lock):
//!     with lock:
//!         v.value += 1
//!         print(current_process().name, v.value)
//! ```
//!
//! Run it: `cargo run --release --example locked_counter`.

use multiproc::{Lock, Process, Value, current_process};

fn work((counter, lock): (Value<i32>, Lock)) {
    let _held = lock.acquire().expect("no holder died");
    let next = counter.get() + 1;
    counter.set(next);
    println!("{} {next}", current_process().name());
}

pub fn run() -> multiproc::Result<()> {
    let counter = Value::new(0i32)?;
    let lock = Lock::new()?;
    multiproc::join_all((1..=5).map(|n| {
        Process::builder()
            .name(format!("counter-{n}"))
            .spawn((counter.clone(), lock.clone()), work)
    }))?;
    println!("final {}", counter.get());
    Ok(())
}

#[allow(dead_code)] // unused when the tour includes this file
fn main() -> multiproc::Result<()> {
    multiproc::init();
    run()
}
