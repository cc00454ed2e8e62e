//! Scenario S11, pool_squares: a Pool of 4 maps `x * x` over 0..10.
//!
//! Python's version:
//!
//! ```python
//! with Pool(4) as pool:
//!     print(pool.map(square, range(10)))
//! ```
//!
//! Run it: `cargo run --release --example pool_squares`.

use multiproc::Pool;

fn square(x: u64) -> u64 {
    x * x
}

pub fn run() -> multiproc::Result<()> {
    let pool = Pool::new(4)?;
    println!("{:?}", pool.map(square, 0..10)?);
    Ok(())
}

#[allow(dead_code)] // unused when the tour includes this file
fn main() -> multiproc::Result<()> {
    multiproc::init();
    run()
}
