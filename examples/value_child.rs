//! Scenario S3, value_child: a shared f64 starts at 10.0; a child sets it to 10.78; the parent
//! prints it before and after.
//!
//! Python's version:
//!
//! ```python
//! def child(v): v.value = 10.78
//! v = Value('d', 10.0); print(v.value)
//! p = Process(target=child, args=(v,)); p.start(); p.join(); print(v.value)
//! ```
//!
//! Run it: `cargo run --release --example value_child`.

use multiproc::{Process, Value};

pub fn run() -> multiproc::Result<()> {
    let value = Value::new(10.0f64)?;
    println!("{}", value.get());
    Process::spawn(value.clone(), |v: Value<f64>| v.set(10.78))?.join()?;
    println!("{}", value.get());
    Ok(())
}

#[allow(dead_code)] // unused when the tour includes this file
fn main() -> multiproc::Result<()> {
    multiproc::init();
    run()
}
