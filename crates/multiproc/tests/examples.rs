//! The examples' output: each reference scenario prints what `scenarios.md` says it should.
//! The example binaries are built by `cargo test` (it builds every example) next to the test.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);

/// Runs a built example and returns its standard output; panics on failure or after `DEADLINE`.
fn run_example(name: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let path: PathBuf = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is not built: run the whole suite with `cargo test --workspace`",
        path.display()
    );
    let mut child = Command::new(&path).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).map(|_| out)
    });
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("example {name} still running after {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = reader.join().unwrap().unwrap();
    assert!(
        status.success(),
        "example {name} failed with {status}; output:\n{out}"
    );
    out
}

/// S9: three start lines and three end lines (each worker's start before its end), then the
/// parent's line last. All starts before all ends is what the 200 ms of work makes likely, not
/// what anything guarantees, so it is not asserted.
fn check_three_workers(lines: &[&str]) {
    assert_eq!(lines.len(), 7, "{lines:?}");
    for n in 1..=3 {
        let started = lines
            .iter()
            .position(|l| *l == format!("worker {n} started"));
        let ended = lines.iter().position(|l| *l == format!("worker {n} ended"));
        match (started, ended) {
            (Some(s), Some(e)) => assert!(s < e, "worker {n} ended before it started: {lines:?}"),
            _ => panic!("worker {n} is missing a line: {lines:?}"),
        }
    }
    assert_eq!(lines[6], "all 3 workers joined");
}

#[test]
fn three_workers() {
    let out = run_example("three_workers");
    check_three_workers(&out.lines().collect::<Vec<_>>());
}

#[test]
fn the_tour_runs_every_scenario() {
    let out = run_example("tour");
    let lines: Vec<&str> = out.lines().collect();
    let s9 = lines
        .iter()
        .position(|l| l.starts_with("== S9 three_workers"))
        .expect("S9 header");
    check_three_workers(&lines[s9 + 1..s9 + 8]);
    assert_eq!(lines.last(), Some(&"== tour done: 1 scenarios"));
}
