//! Scenario S9, three workers: three processes each say they started, work for 200 ms, and say they
//! ended; the parent joins them all and has the last word.
//!
//! Python's version:
//!
//! ```python
//! def work(n):
//!     print(f"worker {n} started"); time.sleep(0.2); print(f"worker {n} ended")
//! ps = [Process(target=work, args=(n,)) for n in (1, 2, 3)]
//! for p in ps: p.start()
//! for p in ps: p.join()
//! print("all 3 workers joined")
//! ```
//!
//! Run it: `cargo run --release --example three_workers`.

use std::time::Duration;

use multiproc::Process;

fn work(n: u32) {
    println!("worker {n} started");
    std::thread::sleep(Duration::from_millis(200));
    println!("worker {n} ended");
}

pub fn run() -> multiproc::Result<()> {
    multiproc::join_all((1..=3).map(|n| {
        Process::builder()
            .name(format!("worker-{n}"))
            .spawn(n, work)
    }))?;
    println!("all 3 workers joined");
    Ok(())
}

#[allow(dead_code)] // unused when the tour includes this file
fn main() -> multiproc::Result<()> {
    multiproc::init();
    run()
}
