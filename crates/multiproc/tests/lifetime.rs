//! A child never outlives its parent: not when the parent returns, not when it is SIGKILLed, not
//! when the parent dies while the child is still starting.

multiproc::test_support!();

mod common;

use std::time::{Duration, Instant};

use common::{
    DEADLINE, flag, is_raised, park_forever, raise, read_u32, wait_until, watch, write_u32,
};
use multiproc::{JoinError, Process, SharedMemory, StartMethod};

const METHODS: [StartMethod; 3] = [
    StartMethod::Spawn,
    StartMethod::Fork,
    StartMethod::ForkServer,
];

/// Starts a grandchild that parks forever, waits until it runs, and returns its pid.
fn start_parked_grandchild(method: StartMethod) -> u32 {
    let started = flag();
    let grandchild = Process::builder()
        .start_method(method)
        .spawn(started.clone(), |started: SharedMemory| -> () {
            raise(&started);
            park_forever()
        })
        .unwrap();
    assert!(
        wait_until(|| is_raised(&started)),
        "grandchild never started"
    );
    grandchild.pid()
}

#[test]
fn a_grandchild_dies_when_its_parent_returns() {
    for method in METHODS {
        let mut middle = Process::builder()
            .start_method(method)
            .spawn(method, start_parked_grandchild)
            .unwrap();
        let grandchild = middle.join_timeout(DEADLINE).unwrap();
        watch(grandchild).assert_dies(&format!("{method:?}: a grandchild outlived its parent"));
    }
}

#[test]
fn a_grandchild_dies_when_its_parent_is_sigkilled() {
    for method in METHODS {
        let slot = SharedMemory::create(4).unwrap();
        let mut middle = Process::builder()
            .start_method(method)
            .spawn(
                (method, slot.clone()),
                |(method, slot): (StartMethod, SharedMemory)| -> () {
                    write_u32(&slot, start_parked_grandchild(method));
                    park_forever()
                },
            )
            .unwrap();
        assert!(
            wait_until(|| read_u32(&slot) != 0),
            "middle never reported its child"
        );
        let grandchild = watch(read_u32(&slot));
        assert!(grandchild.is_running());
        middle.kill().unwrap();
        assert!(matches!(
            middle.join_timeout(DEADLINE),
            Err(JoinError::Signaled { signal: 9 })
        ));
        grandchild.assert_dies(&format!(
            "{method:?}: a grandchild outlived its SIGKILLed parent"
        ));
    }
}

/// The race: the parent dies while its children are being started, before some of them have asked
/// to follow it. Each round, a "middle" process starts children in a loop until a thread of its own
/// SIGKILLs it at a moment that moves from round to round. Orphans are reparented to the "reaper"
/// (a child subreaper), which must then find that every one of them died: it waits until it has no
/// child left, which would never happen if one survived.
#[test]
fn children_die_even_when_the_parent_dies_while_starting_them() {
    const ROUNDS: u32 = 12;
    let mut reaper = Process::spawn(ROUNDS, reap_rounds).unwrap();
    let survivors = reaper.join_timeout(DEADLINE * 2).unwrap();
    assert_eq!(survivors, Ok(0), "children outlived their parent");
}

fn reap_rounds(rounds: u32) -> Result<u32, String> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| e.to_string())?;
    for round in 0..rounds {
        let method = METHODS[round as usize % METHODS.len()];
        // A fork server of our own would be a child that stays: the middle is forked by none.
        let middle_method = match method {
            StartMethod::ForkServer => StartMethod::Spawn,
            other => other,
        };
        let middle = Process::builder()
            .start_method(middle_method)
            .spawn((round, method), start_until_killed);
        let mut middle = middle.map_err(|e| e.to_string())?;
        match middle.join_timeout(DEADLINE) {
            Err(JoinError::Signaled { signal: 9 }) => {}
            other => return Err(format!("round {round}: middle ended with {other:?}")),
        }
    }
    // Every orphan was reparented to us. Reap until none is left, or count those that stay.
    let deadline = Instant::now() + DEADLINE;
    loop {
        use rustix::process::{WaitId, WaitIdOptions};
        match rustix::process::waitid(WaitId::All, WaitIdOptions::EXITED | WaitIdOptions::NOHANG) {
            Err(rustix::io::Errno::CHILD) => return Ok(0),
            Err(e) => return Err(e.to_string()),
            Ok(Some(_)) => continue,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            Ok(None) => return Ok(kill_survivors()),
        }
    }
}

/// Kills the children still alive (so a failure leaves nothing behind) and counts them.
fn kill_survivors() -> u32 {
    let me = std::process::id();
    let children =
        std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")).unwrap_or_default();
    let pids: Vec<u32> = children
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    for pid in &pids {
        common::sigkill(*pid);
    }
    pids.len() as u32
}

fn start_until_killed((round, method): (u32, StartMethod)) {
    let delay = Duration::from_micros(u64::from(round) * 397 % 3000);
    std::thread::spawn(move || {
        let t0 = Instant::now();
        while t0.elapsed() < delay {
            std::hint::spin_loop();
        }
        common::sigkill(std::process::id());
    });
    let mut children = Vec::new();
    loop {
        // Started and never joined: they park until their parent's death ends them.
        if let Ok(child) = Process::builder()
            .start_method(method)
            .spawn((), |()| -> () { park_forever() })
        {
            children.push(child);
        }
    }
}
