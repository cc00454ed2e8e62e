//! Scenario S4, array_child: a shared i32 array `[1, 2, 3, 4, 5]`; a child sets index 2 to 9999.
//!
//! Python's version:
//!
//! ```python
//! def child(a): a[2] = 9999
//! a = Array('i', [1, 2, 3, 4, 5]); print(a[:])
//! p = Process(target=child, args=(a,)); p.start(); p.join(); print(a[:])
//! ```
//!
//! Run it: `cargo run --release --example array_child`.

use multiproc::{Array, Process};

pub fn run() -> multiproc::Result<()> {
    let array = Array::from_slice(&[1i32, 2, 3, 4, 5])?;
    println!("{:?}", array.to_vec());
    Process::spawn(array.clone(), |a: Array<i32>| a.set(2, 9999))?.join()??;
    println!("{:?}", array.to_vec());
    Ok(())
}

#[allow(dead_code)] // unused when the tour includes this file
fn main() -> multiproc::Result<()> {
    multiproc::init();
    run()
}
