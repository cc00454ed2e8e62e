//! The fork server start method: a child that is safe to start from a parent with threads, that
//! starts from the server's clean state, and a server that, killed, takes its children with it and
//! is replaced. (Every test of `process.rs`, `handles.rs` and `lifetime.rs` runs with it too.)

multiproc::test_support!();

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use common::{DEADLINE, flag, is_raised, park_forever, raise, sigkill, wait_until, watch};
use multiproc::{JoinError, Process, SharedMemory, StartMethod};

/// Held by a thread of the parent while the child starts.
static HELD: Mutex<u32> = Mutex::new(0);

/// Holds [`HELD`] on a thread of its own until the returned sender is dropped; returns once it holds.
fn hold_the_lock_on_another_thread() -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (release, released) = mpsc::channel::<()>();
    let (held, is_held) = mpsc::channel();
    let holder = std::thread::spawn(move || {
        let _guard = HELD.lock().unwrap();
        held.send(()).unwrap();
        let _ = released.recv();
    });
    is_held
        .recv_timeout(DEADLINE)
        .expect("the holder took the lock");
    (release, holder)
}

fn take_the_lock(_: ()) -> u32 {
    *HELD.lock().unwrap() + 1
}

#[test]
fn a_child_can_take_a_lock_a_thread_of_its_parent_holds_at_the_start() {
    let (release, holder) = hold_the_lock_on_another_thread();

    let mut clean = Process::builder()
        .start_method(StartMethod::ForkServer)
        .spawn((), take_the_lock)
        .unwrap();
    assert_eq!(clean.join_timeout(DEADLINE).unwrap(), 1);

    // The hazard the fork server avoids: a forked child's copy of the lock stays held forever.
    let mut forked = Process::builder()
        .start_method(StartMethod::Fork)
        .spawn((), take_the_lock)
        .unwrap();
    assert!(matches!(
        forked.join_timeout(Duration::from_millis(300)),
        Err(JoinError::Timeout)
    ));
    forked.kill().unwrap();
    assert!(matches!(
        forked.join_timeout(DEADLINE),
        Err(JoinError::Signaled { signal: 9 })
    ));

    drop(release);
    holder.join().unwrap();
}

static SET_BY_THE_PARENT: AtomicU32 = AtomicU32::new(0);

#[test]
fn a_child_starts_from_the_servers_state_not_its_parents() {
    SET_BY_THE_PARENT.store(7, Ordering::SeqCst);
    let seen = |method| {
        let mut child = Process::builder()
            .start_method(method)
            .spawn((), |()| SET_BY_THE_PARENT.load(Ordering::SeqCst))
            .unwrap();
        child.join_timeout(DEADLINE).unwrap()
    };
    assert_eq!(
        seen(StartMethod::Fork),
        7,
        "a forked child has its parent's memory"
    );
    assert_eq!(
        seen(StartMethod::ForkServer),
        0,
        "the fork server's is fresh"
    );
}

#[test]
fn many_threads_start_children_through_one_server_at_once() {
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                (0..8u64)
                    .map(|i| {
                        let mut child = Process::builder()
                            .start_method(StartMethod::ForkServer)
                            .spawn(t * 100 + i, |n: u64| n * 2)
                            .unwrap();
                        child.join_timeout(DEADLINE).unwrap()
                    })
                    .sum::<u64>()
            })
        })
        .collect();
    let sums: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(sums, [56, 1656, 3256, 4856]);
}

/// The parent pid of `pid`, from `/proc/<pid>/stat` (the field after the state).
fn parent_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("a live process");
    let after_name = &stat[stat.rfind(')').expect("a stat line") + 1..];
    after_name
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

/// A child of the fork server that parks once it runs its task.
fn start_parked() -> Result<Process<()>, String> {
    let running = flag();
    let parked = Process::builder()
        .start_method(StartMethod::ForkServer)
        .spawn(running.clone(), |running: SharedMemory| -> () {
            raise(&running);
            park_forever()
        })
        .map_err(|e| e.to_string())?;
    match wait_until(|| is_raised(&running)) {
        true => Ok(parked),
        false => Err("the parked child never ran".into()),
    }
}

/// In a process of its own (whose fork server no other test uses): a parked child and the server
/// that forked it; the server is killed; the child dies with it and says SIGKILL; the next start
/// starts a new server. Returns the two servers' pids.
fn kill_the_server(_: ()) -> Result<(u32, u32), String> {
    let mut parked = start_parked()?;
    let server = parent_of(parked.pid());
    if server == std::process::id() {
        return Err("the child is ours, not a fork server's".into());
    }
    let child = watch(parked.pid());
    sigkill(server);
    if !child.dies_within_deadline() {
        return Err("the child outlived its fork server".into());
    }
    match parked.join_timeout(DEADLINE) {
        Err(JoinError::Signaled { signal: 9 }) => {}
        other => return Err(format!("the child of a killed server ended with {other:?}")),
    }
    let mut next = start_parked()?;
    let new_server = parent_of(next.pid());
    next.kill().map_err(|e| e.to_string())?;
    match next.join_timeout(DEADLINE) {
        Err(JoinError::Signaled { signal: 9 }) => Ok((server, new_server)),
        other => Err(format!(
            "the new server's child, killed, ended with {other:?}"
        )),
    }
}

#[test]
fn a_killed_server_takes_its_children_and_the_next_start_starts_a_new_one() {
    let mut middle = Process::spawn((), kill_the_server).unwrap();
    let (killed, next) = middle.join_timeout(DEADLINE * 2).unwrap().unwrap();
    assert_ne!(killed, next, "a new server");
}

#[test]
fn the_server_and_its_children_end_with_the_parent() {
    let pids = SharedMemory::create(8).unwrap();
    let mut middle = Process::spawn(pids.clone(), |pids: SharedMemory| -> () {
        let parked = Process::builder()
            .start_method(StartMethod::ForkServer)
            .spawn((), |()| -> () { park_forever() })
            .unwrap();
        let server = parent_of(parked.pid());
        pids.write_at(0, &parked.pid().to_le_bytes()).unwrap();
        pids.write_at(4, &server.to_le_bytes()).unwrap();
        park_forever()
    })
    .unwrap();
    let read = |at| {
        let mut bytes = [0; 4];
        pids.read_at(at, &mut bytes).unwrap();
        u32::from_le_bytes(bytes)
    };
    assert!(wait_until(|| read(4) != 0), "the middle reported its pids");
    let (child, server) = (watch(read(0)), watch(read(4)));
    sigkill(middle.pid());
    let _ = middle.join_timeout(DEADLINE);
    server.assert_dies("a fork server outlived its parent");
    child.assert_dies("a fork server's child outlived the process that asked for it");
}

/// In a process of its own: a fork server started under a low limit on open files (its parent's
/// limit raised again after), asked for children until it has no descriptor left for one more.
/// Returns how many started and the error of the one that did not.
fn fill_the_server(_: ()) -> Result<(usize, String), String> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let original = getrlimit(Resource::Nofile);
    let mut low = original;
    low.current = Some(48);
    setrlimit(Resource::Nofile, low).map_err(|e| e.to_string())?;
    let first = start_parked();
    setrlimit(Resource::Nofile, original).map_err(|e| e.to_string())?;
    let mut children = vec![first?];
    let error = loop {
        if children.len() > 100 {
            return Err("the server never ran out of descriptors".into());
        }
        match Process::builder()
            .start_method(StartMethod::ForkServer)
            .spawn((), |()| -> () { park_forever() })
        {
            Ok(child) => children.push(child),
            Err(e @ multiproc::SpawnError::Start(_)) => break e.to_string(),
            Err(e) => return Err(format!("a full server's refusal is {e:?}")),
        }
    };
    if let Some(dead) = children.iter().find(|child| !child.is_alive()) {
        return Err(format!(
            "child {} ended when the server was full",
            dead.pid()
        ));
    }
    // One ends: its descriptors are the server's again, and the next start works.
    let mut ended = children.pop().expect("at least the first");
    ended.kill().map_err(|e| e.to_string())?;
    match ended.join_timeout(DEADLINE) {
        Err(JoinError::Signaled { signal: 9 } | JoinError::NotStarted { .. }) => {}
        other => return Err(format!("a killed child ended with {other:?}")),
    }
    let mut next = Process::builder()
        .start_method(StartMethod::ForkServer)
        .spawn(21, |n: u32| n * 2)
        .map_err(|e| format!("after a child ended, a start still fails: {e}"))?;
    if next.join_timeout(DEADLINE).map_err(|e| e.to_string())? != 42 {
        return Err("the next child's result is wrong".into());
    }
    Ok((children.len() + 1, error))
}

#[test]
fn a_server_out_of_descriptors_refuses_a_start_and_serves_again_once_one_ends() {
    let mut middle = Process::spawn((), fill_the_server).unwrap();
    let (started, error) = middle.join_timeout(DEADLINE * 2).unwrap().unwrap();
    assert!(
        started >= 5,
        "only {started} children started under 48 descriptors"
    );
    assert!(
        error.contains("the fork server could not start it"),
        "the refusal says who refused: {error}"
    );
}
