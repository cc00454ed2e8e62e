//! Scenario S6, value_array_negate: a shared f64 value 1.0 and an i32 array 0..10; a child sets
//! the value to 3.14 and negates every element. (The example of Python's documentation.)
//!
//! ```python
//! def f(n, a):
//!     n.value = 3.1415927
//!     for i in range(len(a)): a[i] = -a[i]
//! ```
//!
//! Run it: `cargo run --release --example value_array_negate`.

use multiproc::{Array, Process, Value};

#[allow(clippy::approx_constant)] // the scenario's 3.14, not an approximation of π
fn negate((number, array): (Value<f64>, Array<i32>)) {
    number.set(3.14);
    // One lock for the whole array: the change is seen whole or not at all.
    let mut elements = array.lock().expect("nobody else holds it");
    for element in elements.iter_mut() {
        *element = -*element;
    }
}

pub fn run() -> multiproc::Result<()> {
    let number = Value::new(1.0f64)?;
    let array = Array::from_slice(&(0..10).collect::<Vec<i32>>())?;
    Process::spawn((number.clone(), array.clone()), negate)?.join()?;
    println!("{}", number.get());
    println!("{:?}", array.to_vec());
    Ok(())
}

#[allow(dead_code)] // unused when the tour includes this file
fn main() -> multiproc::Result<()> {
    multiproc::init();
    run()
}
