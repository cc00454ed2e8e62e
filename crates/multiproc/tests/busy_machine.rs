//! Waiting on a machine whose every core is busy, and waiting long.
//!
//! A waiter polls for a moment before it sleeps only while polling pays (`src/spin.rs`): on a busy
//! machine it sleeps in the kernel and is woken. Here, every kind of wait runs across real
//! processes with a busy-loop process per core beside it, and must give every item, answer and
//! lock, in order, each within the test deadline (how fast is for the benchmarks:
//! `multiproc-bench`, `../shared/peers/compare-peers --hogs 2`). And a wait that lasts long sleeps:
//! it uses next to no CPU, however long it waits. And on a busy machine the manager's thread that
//! serves a client follows it onto its CPU (`src/colocate.rs`), and gives the CPU back once the
//! machine frees up.

multiproc::test_support!();

mod common;

use std::time::{Duration, Instant};

use common::{DEADLINE, join};
use multiproc::{
    Connection, DictProxy, Event, LockProxy, Manager, Process, Queue, QueueProxy, pipe,
};
use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
use rustix::time::{ClockId, clock_gettime};

/// Round trips of each kind: enough for every spinner to learn the machine is busy, and to go on.
const ROUNDS: u32 = 2_000;

/// A busy loop until `stop` is set: one core's worth of someone else's work.
fn hog(stop: Event) {
    let mut spins = 0u64;
    while !stop.is_set() {
        spins = std::hint::black_box(spins.wrapping_add(1));
    }
}

/// Taken by each test that keeps the machine busy, so that one's busy loops do not outlast its end
/// in another's measure of the machine.
static MACHINE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn machine() -> std::sync::MutexGuard<'static, ()> {
    MACHINE.lock().unwrap_or_else(|e| e.into_inner())
}

/// One busy process per core, stopped (and joined) when dropped.
struct Hogs {
    stop: Event,
    hogs: Vec<Process<()>>,
}

impl Hogs {
    fn start() -> Hogs {
        let stop = Event::new().unwrap();
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let hogs = (0..cores)
            .map(|_| Process::spawn(stop.clone(), hog).unwrap())
            .collect();
        Hogs { stop, hogs }
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        self.stop.set();
        for hog in self.hogs.drain(..) {
            join(hog);
        }
    }
}

/// Echoes every message back until the other end goes.
fn echo(conn: Connection<u32>) {
    while let Ok(n) = conn.recv() {
        conn.send(n).unwrap();
    }
}

/// [`echo`], held on one CPU.
fn echo_on((conn, cpu): (Connection<u32>, usize)) {
    pin_to(cpu);
    echo(conn);
}

/// The CPUs the calling thread may run on: the set, to give back, and its members in order.
fn own_cpus() -> (CpuSet, Vec<usize>) {
    let own = sched_getaffinity(None).unwrap();
    let cpus = (0..CpuSet::MAX_CPU).filter(|&c| own.is_set(c)).collect();
    (own, cpus)
}

/// Holds the calling thread on `cpu`.
fn pin_to(cpu: usize) {
    let mut only = CpuSet::new();
    only.set(cpu);
    sched_setaffinity(None, &only).unwrap();
}

/// Puts `0..ROUNDS` on `queue`.
fn produce(queue: Queue<u32>) {
    for i in 0..ROUNDS {
        queue.put(i).unwrap();
    }
}

/// A manager client in its own process: dict round trips, queue put and get, lock pairs; returns
/// the last value it read and the number of items it got back.
fn manager_client(
    (d, q, lock): (DictProxy<String, u32>, QueueProxy<u32>, LockProxy),
) -> (u32, u32) {
    let key = "k".to_string();
    let mut last = 0;
    for i in 0..ROUNDS {
        d.insert(&key, i).unwrap();
        last = d.get(&key).unwrap().expect("just set");
        assert_eq!(last, i);
    }
    let mut got = 0;
    for i in 0..ROUNDS {
        q.put(i).unwrap();
        assert_eq!(q.get().unwrap(), i);
        got += 1;
    }
    for _ in 0..ROUNDS {
        drop(lock.acquire().unwrap());
    }
    (last, got)
}

#[test]
fn every_kind_of_wait_gives_everything_with_every_core_busy() {
    let _machine = machine();
    let _hogs = Hogs::start();

    // A pipe: ping-pong with a child.
    let (here, there) = pipe::<u32>().unwrap();
    let echoer = Process::spawn(there, echo).unwrap();
    for i in 0..ROUNDS {
        here.send(i).unwrap();
        assert_eq!(here.recv_timeout(DEADLINE).unwrap(), i);
    }
    drop(here);
    join(echoer);

    // A pipe whose ends are held on two CPUs, each beside a busy loop: they say so in their
    // messages, and each polls for the other's answer instead of sleeping.
    let (own, cpus) = own_cpus();
    let (here, there) = pipe::<u32>().unwrap();
    let echoer = Process::spawn((there, cpus[cpus.len() - 1]), echo_on).unwrap();
    pin_to(cpus[0]);
    for i in 0..ROUNDS {
        here.send(i).unwrap();
        assert_eq!(here.recv_timeout(DEADLINE).unwrap(), i);
    }
    sched_setaffinity(None, &own).unwrap();
    drop(here);
    join(echoer);

    // A shared-memory queue: a producer child, items in order.
    let queue = Queue::<u32>::new().unwrap();
    let producer = Process::spawn(queue.clone(), produce).unwrap();
    for i in 0..ROUNDS {
        assert_eq!(queue.get_timeout(DEADLINE).unwrap(), i);
    }
    join(producer);

    // The manager: two client processes at once, and this one.
    let manager = Manager::start().unwrap();
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let args = (
                manager.dict().unwrap(),
                manager.queue().unwrap(),
                manager.lock().unwrap(),
            );
            Process::spawn(args, manager_client).unwrap()
        })
        .collect();
    let mine = manager_client((
        manager.dict().unwrap(),
        manager.queue().unwrap(),
        manager.lock().unwrap(),
    ));
    assert_eq!(mine, (ROUNDS - 1, ROUNDS));
    for client in clients {
        assert_eq!(join(client), (ROUNDS - 1, ROUNDS));
    }
}

/// The CPUs each thread of process `pid` may run on, as `/proc` lists them (`0-1`, `3`).
fn allowed_cpus_of_threads(pid: u32) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the manager runs");
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("status")).ok())
        .filter_map(|status| {
            let line = status
                .lines()
                .find(|l| l.starts_with("Cpus_allowed_list:"))?;
            Some(line.split_whitespace().nth(1)?.to_owned())
        })
        .collect()
}

/// Makes dict round trips on `d` until `done` says so of the manager's threads' CPUs; fails at
/// the deadline.
fn round_trips_until(
    d: &DictProxy<String, u32>,
    pid: u32,
    what: &str,
    done: impl Fn(&[String]) -> bool,
) {
    let key = "k".to_string();
    let deadline = Instant::now() + DEADLINE;
    let mut i = 0;
    loop {
        for _ in 0..100 {
            d.insert(&key, i).unwrap();
            assert_eq!(d.get(&key).unwrap(), Some(i));
            i += 1;
        }
        let cpus = allowed_cpus_of_threads(pid);
        if done(&cpus) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "after {i} round trips, {what}: the manager's threads may run on {cpus:?}"
        );
    }
}

#[test]
fn on_a_busy_machine_the_serving_thread_follows_its_client_and_lets_go_after() {
    let _machine = machine();
    let manager = Manager::start().unwrap();
    let pid = manager.pid().expect("a manager this process started");
    let d = manager.dict::<String, u32>().unwrap();
    let (own, cpus) = own_cpus();
    let all = allowed_cpus_of_threads(pid)[0].clone();
    let hogs = Hogs::start();
    // This thread runs on one CPU, then on another: the thread serving it goes along.
    for &cpu in [cpus[0], cpus[cpus.len() - 1]].iter() {
        pin_to(cpu);
        let pinned = cpu.to_string();
        round_trips_until(
            &d,
            pid,
            &format!("no thread follows this one onto CPU {cpu}"),
            |threads| threads.contains(&pinned),
        );
    }
    sched_setaffinity(None, &own).unwrap();
    // The machine frees up: every thread of the manager may run anywhere again.
    drop(hogs);
    round_trips_until(
        &d,
        pid,
        "a thread is still pinned with the machine idle",
        |threads| threads.iter().all(|t| *t == all),
    );
}

/// The CPU time this thread has used.
fn cpu_time() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Runs `wait` (which waits about [`LONG`]) and gives the CPU time it used.
fn cpu_of(wait: impl FnOnce()) -> Duration {
    let before = cpu_time();
    wait();
    cpu_time() - before
}

/// How long each wait below waits.
const LONG: Duration = Duration::from_secs(1);

/// What a wait of [`LONG`] may use of the CPU, at most: a poll before it sleeps, and its wake-ups
/// (a shared-memory waiter looks again every 50 ms; a manager waiter's server checks its caller).
/// Spinning through the wait would use all of it.
const SLEEPER: Duration = Duration::from_millis(100);

#[test]
fn a_long_wait_sleeps_in_the_kernel() {
    let (here, _there) = pipe::<u32>().unwrap();
    let used = cpu_of(|| assert!(here.recv_timeout(LONG).unwrap_err().is_timeout()));
    assert!(
        used < SLEEPER,
        "a pipe's receive used {used:?} of CPU waiting {LONG:?}"
    );

    let queue = Queue::<u32>::new().unwrap();
    let used = cpu_of(|| assert!(queue.get_timeout(LONG).unwrap_err().is_empty()));
    assert!(
        used < SLEEPER,
        "a queue's get used {used:?} of CPU waiting {LONG:?}"
    );

    let manager = Manager::start().unwrap();
    let queue = manager.queue::<u32>().unwrap();
    let used = cpu_of(|| assert!(queue.get_timeout(LONG).unwrap_err().is_empty()));
    assert!(
        used < SLEEPER,
        "a manager queue's get used {used:?} waiting {LONG:?}"
    );

    let lock = manager.lock().unwrap();
    let _held = lock.acquire().unwrap();
    let other = lock.clone();
    let used = cpu_of(|| assert!(other.acquire_timeout(LONG).unwrap_err().is_timeout()));
    assert!(
        used < SLEEPER,
        "a manager lock's acquire used {used:?} waiting {LONG:?}"
    );
}
