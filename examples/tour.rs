//! The tour: every reference scenario of `../shared/reference/scenarios.md` that exists so far, one
//! after the other. Each is also an example of its own (`cargo run --release --example NAME`).
//!
//! Run it: `cargo run --release --example tour`.

#[path = "three_workers.rs"]
mod three_workers;

/// One reference scenario.
struct Scenario {
    number: &'static str,
    name: &'static str,
    what: &'static str,
    run: fn() -> multiproc::Result<()>,
}

const SCENARIOS: &[Scenario] = &[Scenario {
    number: "S9",
    name: "three_workers",
    what: "processes that print, sleep and are joined",
    run: three_workers::run,
}];

fn main() -> multiproc::Result<()> {
    multiproc::init();
    for Scenario {
        number,
        name,
        what,
        run,
    } in SCENARIOS
    {
        println!("== {number} {name}: {what}");
        run()?;
    }
    println!("== tour done: {} scenarios", SCENARIOS.len());
    Ok(())
}
