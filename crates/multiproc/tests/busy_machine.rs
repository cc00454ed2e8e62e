//! Waiting on a machine whose every core is busy, and waiting long.
//!
//! A waiter polls for a moment before it sleeps only while polling pays (`src/spin.rs`): on a busy
//! machine it sleeps in the kernel and is woken. Here, every kind of wait runs across real
//! processes with a busy-loop process per core beside it, and must give every item, answer and
//! lock, in order, each within the test deadline (how fast is for the benchmarks:
//! `multiproc-bench`, `../shared/peers/compare-peers --hogs 2`). And a wait that lasts long sleeps:
//! it uses next to no CPU, however long it waits.

multiproc::test_support!();

mod common;

use std::time::Duration;

use common::{DEADLINE, join};
use multiproc::{
    Connection, DictProxy, Event, LockProxy, Manager, Process, Queue, QueueProxy, pipe,
};
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
