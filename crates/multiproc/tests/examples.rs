//! The examples' output: each reference scenario prints what `scenarios.md` says it should.
//! The example binaries are built by `cargo test` (it builds every example) next to the test.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

const DEADLINE: Duration = Duration::from_secs(60);

/// Runs a built example and returns its standard output; panics on failure or after `DEADLINE`.
fn run_example(name: &str) -> String {
    run_example_with(name, &[])
}

/// [`run_example`], with more environment variables.
fn run_example_with(name: &str, env: &[(&str, &str)]) -> String {
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
    let mut child = Command::new(&path)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
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

/// S3: the value before and after the child set it.
fn check_value_child(lines: &[&str]) {
    assert_eq!(lines, ["10", "10.78"]);
}

/// S4: the array before and after the child set index 2.
fn check_array_child(lines: &[&str]) {
    assert_eq!(lines, ["[1, 2, 3, 4, 5]", "[1, 2, 9999, 4, 5]"]);
}

/// S6: the value the child set and the negated array.
fn check_value_array_negate(lines: &[&str]) {
    assert_eq!(lines, ["3.14", "[0, -1, -2, -3, -4, -5, -6, -7, -8, -9]"]);
}

/// S1: every pair, in key order.
fn check_dict_workers(lines: &[&str]) {
    let expected: Vec<String> = (0..10).map(|i| format!("{i}={}", 2 * i)).collect();
    assert_eq!(lines, expected);
}

/// S13: the first total is printed (lost updates are likely, not certain); the second is exact.
fn check_lost_update(lines: &[&str]) {
    assert_eq!(lines.len(), 2, "{lines:?}");
    let first: u32 = lines[0]
        .strip_prefix("read then write: ")
        .and_then(|rest| rest.strip_suffix(" of 20000"))
        .and_then(|n| n.parse().ok())
        .expect("read then write: N of 20000");
    assert!(first <= 20000, "{first}");
    assert_eq!(lines[1], "incr: 20000 of 20000");
}

/// S5: the extended list, then the two entries.
fn check_dict_list_child(lines: &[&str]) {
    assert_eq!(
        lines,
        [
            "[0, 1, 2, 3, 4, 11, 22, 33]",
            "lang: rust",
            "name: multiproc"
        ]
    );
}

/// S7: every update counted, the array untouched.
fn check_twenty_workers(lines: &[&str]) {
    assert_eq!(
        lines,
        [
            "list [21, 22, 23, 24, 25]",
            r#"dict [(1, "1"), (2, "2")]"#,
            "array [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]",
            "value 21",
        ]
    );
}

/// S8: ten increases of 100, none lost.
fn check_employee(lines: &[&str]) {
    assert_eq!(lines, ["zhangsan:2000"]);
}

/// Each producer's items, in its own order, in a sequence of items.
fn in_producer_order(items: &[u32]) -> bool {
    let a: Vec<u32> = items.iter().copied().filter(|&i| i < 300).collect();
    let b: Vec<u32> = items.iter().copied().filter(|&i| i >= 300).collect();
    a == (100..105).collect::<Vec<_>>() && b == (300..309).collect::<Vec<_>>()
}

/// S2: six polls (their contents depend on timing), the final list with all 14 items in each
/// producer's order; then 14 appends seen by the watcher, in each producer's order.
fn check_mailbox(lines: &[&str]) {
    assert_eq!(lines.len(), 6 + 1 + 14 + 1, "{lines:?}");
    assert!(
        lines[..6].iter().all(|l| l.starts_with("poll [")),
        "{lines:?}"
    );
    let final_list: Vec<u32> = lines[6]
        .strip_prefix("final [")
        .and_then(|l| l.strip_suffix(']'))
        .expect("final [...]")
        .split(", ")
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(final_list.len(), 14);
    assert!(in_producer_order(&final_list), "{final_list:?}");
    let watched: Vec<u32> = lines[7..21]
        .iter()
        .map(|l| l.strip_prefix("appended ").unwrap().parse().unwrap())
        .collect();
    assert!(in_producer_order(&watched), "{watched:?}");
    assert_eq!(lines[21], "watched 14 appends");
}

/// S11: the squares, in order.
fn check_pool_squares(lines: &[&str]) {
    assert_eq!(lines, ["[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]"]);
}

/// S12: the five items in order, the reply, and the disconnection reported.
fn check_queue_pipe(lines: &[&str]) {
    assert_eq!(
        lines,
        [
            "got item 0",
            "got item 1",
            "got item 2",
            "got item 3",
            "got item 4",
            "reply PING",
            "recv after the server ended: Disconnected",
        ]
    );
}

/// S10: each of the five named processes printed a different value, 1 to 5; then the total.
fn check_locked_counter(lines: &[&str]) {
    assert_eq!(lines.len(), 6, "{lines:?}");
    let mut names = Vec::new();
    let mut values = Vec::new();
    for line in &lines[..5] {
        let (name, value) = line.split_once(' ').expect("NAME VALUE");
        names.push(name.to_string());
        values.push(value.parse::<i32>().expect("a number"));
    }
    names.sort();
    values.sort();
    assert_eq!(
        names,
        (1..=5).map(|n| format!("counter-{n}")).collect::<Vec<_>>()
    );
    assert_eq!(
        values,
        [1, 2, 3, 4, 5],
        "each increment seen once: {lines:?}"
    );
    assert_eq!(lines[5], "final 5");
}

type Check = fn(&[&str]);

/// Every scenario: its number, example name and output check.
const SCENARIOS: &[(&str, &str, Check)] = &[
    ("S1", "dict_workers", check_dict_workers),
    ("S2", "mailbox", check_mailbox),
    ("S3", "value_child", check_value_child),
    ("S4", "array_child", check_array_child),
    ("S5", "dict_list_child", check_dict_list_child),
    ("S6", "value_array_negate", check_value_array_negate),
    ("S7", "twenty_workers", check_twenty_workers),
    ("S8", "employee", check_employee),
    ("S9", "three_workers", check_three_workers),
    ("S10", "locked_counter", check_locked_counter),
    ("S11", "pool_squares", check_pool_squares),
    ("S12", "queue_pipe", check_queue_pipe),
    ("S13", "lost_update", check_lost_update),
];

#[test]
fn each_scenario_prints_what_it_should() {
    for (number, name, check) in SCENARIOS {
        let out = run_example(name);
        let lines: Vec<&str> = out.lines().collect();
        println!("{number} {name}: {} lines", lines.len());
        check(&lines);
    }
}

/// Runs the scenarios whose objects are all on the manager (`Manager::from_env`) with `env`
/// set, and checks their output.
fn run_the_scenarios_on(store: &str, env: &[(&str, &str)]) {
    for (number, name, check) in SCENARIOS {
        if !["S1", "S2", "S5", "S7", "S8", "S13"].contains(number) {
            continue;
        }
        let out = run_example_with(name, env);
        let lines: Vec<&str> = out.lines().collect();
        println!("{number} {name} on {store}: {} lines", lines.len());
        check(&lines);
    }
}

/// The scenarios whose objects are all on the Redis backend, with `MULTIPROC_REDIS_URL` set:
/// the same programs, the same output, their objects on a real redis-server.
#[test]
fn the_scenarios_on_redis_print_what_they_should() {
    let server = common::redis::RedisServer::start();
    run_the_scenarios_on("Redis", &[("MULTIPROC_REDIS_URL", &server.url())]);
    // They were on Redis: their objects are there.
    let keys = server.command(&["DBSIZE"]);
    assert!(
        !keys.starts_with(":0\r"),
        "nothing was stored on Redis: {keys}"
    );
}

/// The same scenarios on a Redis Cluster of three real redis-servers, with
/// `MULTIPROC_REDIS_CLUSTER` set.
#[test]
fn the_scenarios_on_a_redis_cluster_print_what_they_should() {
    let cluster = common::redis::RedisCluster::start(3);
    let nodes = cluster.urls().join(",");
    run_the_scenarios_on("a Redis Cluster", &[("MULTIPROC_REDIS_CLUSTER", &nodes)]);
    let keys: usize = (0..3).map(|node| cluster.keys(node, "mp:*").len()).sum();
    assert!(keys > 0, "nothing was stored on the cluster");
}

#[test]
fn the_tour_runs_every_scenario() {
    let out = run_example("tour");
    let mut sections: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in out.lines() {
        match line.strip_prefix("== ") {
            Some(header) => sections.push((header, Vec::new())),
            None => sections
                .last_mut()
                .expect("output starts with a header")
                .1
                .push(line),
        }
    }
    let (last, rest) = sections.split_last().expect("sections");
    assert_eq!(last.0, format!("tour done: {} scenarios", SCENARIOS.len()));
    assert_eq!(rest.len(), SCENARIOS.len());
    for ((header, lines), (number, name, check)) in rest.iter().zip(SCENARIOS) {
        assert!(header.starts_with(&format!("{number} {name}:")), "{header}");
        check(lines);
    }
}
