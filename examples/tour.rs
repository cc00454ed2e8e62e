//! The tour: every reference scenario of `../shared/reference/scenarios.md` that exists so far, one
//! after the other. Each is also an example of its own (`cargo run --release --example NAME`).
//!
//! Run it: `cargo run --release --example tour`.

#[path = "array_child.rs"]
mod array_child;
#[path = "dict_list_child.rs"]
mod dict_list_child;
#[path = "dict_workers.rs"]
mod dict_workers;
#[path = "employee.rs"]
mod employee;
#[path = "locked_counter.rs"]
mod locked_counter;
#[path = "lost_update.rs"]
mod lost_update;
#[path = "mailbox.rs"]
mod mailbox;
#[path = "pool_squares.rs"]
mod pool_squares;
#[path = "queue_pipe.rs"]
mod queue_pipe;
#[path = "three_workers.rs"]
mod three_workers;
#[path = "twenty_workers.rs"]
mod twenty_workers;
#[path = "value_array_negate.rs"]
mod value_array_negate;
#[path = "value_child.rs"]
mod value_child;

/// One reference scenario.
struct Scenario {
    number: &'static str,
    name: &'static str,
    what: &'static str,
    run: fn() -> multiproc::Result<()>,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        number: "S1",
        name: "dict_workers",
        what: "ten processes fill a manager dict",
        run: dict_workers::run,
    },
    Scenario {
        number: "S2",
        name: "mailbox",
        what: "two producers append to a manager list: polled, then watched",
        run: mailbox::run,
    },
    Scenario {
        number: "S3",
        name: "value_child",
        what: "a child sets a shared f64",
        run: value_child::run,
    },
    Scenario {
        number: "S4",
        name: "array_child",
        what: "a child sets an element of a shared array",
        run: array_child::run,
    },
    Scenario {
        number: "S5",
        name: "dict_list_child",
        what: "a child fills a manager dict and extends a manager list",
        run: dict_list_child::run,
    },
    Scenario {
        number: "S6",
        name: "value_array_negate",
        what: "a child sets a value and negates an array",
        run: value_array_negate::run,
    },
    Scenario {
        number: "S7",
        name: "twenty_workers",
        what: "twenty processes update manager objects under a manager lock",
        run: twenty_workers::run,
    },
    Scenario {
        number: "S8",
        name: "employee",
        what: "a user type's methods called from ten processes",
        run: employee::run,
    },
    Scenario {
        number: "S9",
        name: "three_workers",
        what: "processes that print, sleep and are joined",
        run: three_workers::run,
    },
    Scenario {
        number: "S10",
        name: "locked_counter",
        what: "named processes increment a shared value under a lock",
        run: locked_counter::run,
    },
    Scenario {
        number: "S11",
        name: "pool_squares",
        what: "a pool of 4 maps x * x over 0..10",
        run: pool_squares::run,
    },
    Scenario {
        number: "S12",
        name: "queue_pipe",
        what: "a queue between two processes, a request and reply on a pipe, a closed peer",
        run: queue_pipe::run,
    },
    Scenario {
        number: "S13",
        name: "lost_update",
        what: "read-then-write increments lose updates; incr does not",
        run: lost_update::run,
    },
];

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
