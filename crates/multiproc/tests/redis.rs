//! The manager's proxies on Redis, against a real redis-server each test starts
//! (`common::redis`): the data suite that `manager.rs` runs on a manager process, and what is
//! Redis's own (objects outlive their proxies, the URL's forms, its errors).

multiproc::test_support!();

mod common;

use common::redis::RedisServer;
use common::{join, refused};
use multiproc::{Backend, ErrorCode, Manager, ManagerError, Process, RedisOptions};

/// The data suite's backend here: a Redis server of its own for each test, and a manager on it.
mod backend {
    use crate::common::redis::{RedisServer, Served};

    /// Leases of 300 ms: a dead holder's lock is the next taker's soon.
    pub fn manager() -> Served {
        let server = RedisServer::start();
        let options = multiproc::RedisOptions::new(server.url()).lease(super::LEASE);
        Served {
            manager: multiproc::Manager::redis(options).unwrap(),
            _server: Some(server),
        }
    }
}

#[path = "suite/data.rs"]
mod data;

#[path = "suite/waits.rs"]
mod waits;

#[test]
fn unrelated_processes_meet_at_a_named_dict_on_redis() {
    let server = RedisServer::start();
    let manager = Manager::connect_redis(&server.url()).unwrap();
    assert_eq!(manager.backend(), Backend::Redis);
    assert_eq!(
        manager.address(),
        &multiproc::Address::Unix(server.socket()),
        "the server's address"
    );
    // The child gets only the URL.
    join(
        Process::spawn(server.url(), |url: String| {
            let manager = Manager::connect_redis(&url).unwrap();
            let results = manager.dict_named::<u32, String>("results").unwrap();
            results.insert(1, "from the child".to_string()).unwrap();
        })
        .unwrap(),
    );
    let results = manager.dict_named::<u32, String>("results").unwrap();
    assert_eq!(results.get(1).unwrap().as_deref(), Some("from the child"));
    // Another kind under that name is refused; another namespace has names of its own.
    assert_eq!(
        refused(manager.list_named::<u32>("results")),
        ErrorCode::WrongKind
    );
    let other = Manager::redis(RedisOptions::new(server.url()).namespace("other")).unwrap();
    assert!(
        other
            .dict_named::<u32, String>("results")
            .unwrap()
            .is_empty()
            .unwrap()
    );
    // A named object lives until its name is removed, on Redis as nothing holds it.
    assert!(manager.remove_named("results").unwrap());
    assert!(!manager.remove_named("results").unwrap());
    assert_eq!(refused(results.len()), ErrorCode::UnknownObject);
    assert!(
        manager
            .dict_named::<u32, String>("results")
            .unwrap()
            .is_empty()
            .unwrap()
    );
}

#[test]
fn increments_are_exact_to_64_bits_as_on_the_manager() {
    // Redis's own Lua MessagePack loses integers past 2^53; the scripts never decode values.
    let server = RedisServer::start();
    let redis = Manager::connect_redis(&server.url()).unwrap();
    let memory = Manager::start().unwrap();
    let on_redis = redis.dict::<String, rmpv::Value>().unwrap();
    let in_memory = memory.dict::<String, rmpv::Value>().unwrap();
    let cases: Vec<(rmpv::Value, rmpv::Value)> = vec![
        ((1i64 << 53) + 1).into(),
        i64::MAX.into(),
        i64::MIN.into(),
        u64::MAX.into(),
        (-1i64).into(),
        0.into(),
        (-33i64).into(),
        (1i64 << 31).into(),
        (-(1i64 << 31) - 1).into(),
        1.5f64.into(),
        rmpv::Value::F32(0.25),
        "text".into(),
        rmpv::Value::Nil,
    ]
    .into_iter()
    .flat_map(|a: rmpv::Value| {
        let deltas: Vec<rmpv::Value> = vec![
            1.into(),
            (-1i64).into(),
            i64::MAX.into(),
            i64::MIN.into(),
            u64::MAX.into(),
            0.5f64.into(),
            255.into(),
            (-129i64).into(),
            65536.into(),
        ];
        deltas.into_iter().map(move |d| (a.clone(), d))
    })
    .collect();
    for (i, (start, delta)) in cases.into_iter().enumerate() {
        let key = format!("k{i}");
        on_redis.insert(&key, &start).unwrap();
        in_memory.insert(&key, &start).unwrap();
        let here = in_memory.incr(&key, delta.clone());
        let there = on_redis.incr(&key, delta.clone());
        match (&here, &there) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{start} + {delta}"),
            (Err(a), Err(b)) => assert_eq!(a.code(), b.code(), "{start} + {delta}"),
            _ => panic!("{start} + {delta}: the manager says {here:?}, Redis {there:?}"),
        }
        // And what is stored, byte for byte as the manager stores it.
        assert_eq!(
            on_redis.get(&key).unwrap(),
            in_memory.get(&key).unwrap(),
            "{start} + {delta}"
        );
    }
}

#[test]
fn a_wrong_password_a_server_that_is_not_redis_and_a_dead_one_are_typed_errors() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let socket = server.socket();
    let right = format!("redis+unix://{}?pass=s3cret", socket.display());
    let wrong = format!("redis+unix://{}?pass=nope", socket.display());
    let manager = Manager::connect_redis(&right).unwrap();
    // A proxy carries the password to a child apart from the URL, as a manager's key travels.
    let shared = manager.dict::<u8, u8>().unwrap();
    join(
        Process::spawn(shared.clone(), |d: multiproc::DictProxy<u8, u8>| {
            d.insert(1, 2).unwrap();
        })
        .unwrap(),
    );
    assert_eq!(shared.get(1).unwrap(), Some(2));
    assert!(!format!("{shared:?}").contains("s3cret"), "{shared:?}");
    assert!(matches!(
        Manager::connect_redis(&wrong),
        Err(ManagerError::Connect(multiproc::ConnectError::AuthFailed))
    ));
    // A manager process is not Redis.
    let ours = Manager::start().unwrap();
    let multiproc::Address::Unix(path) = ours.address().clone() else {
        unreachable!("a started manager is on a Unix socket");
    };
    let not_redis = Manager::redis(
        RedisOptions::new(format!("redis+unix://{}", path.display()))
            .connect_timeout(std::time::Duration::from_secs(2)),
    );
    assert!(
        matches!(
            not_redis,
            Err(ManagerError::Connect(_) | ManagerError::Gone { .. })
        ),
        "{not_redis:?}"
    );
    // A server that died: the call in flight is Gone; so is the next, until one is there.
    let d = manager.dict::<u8, u8>().unwrap();
    drop(server);
    assert!(matches!(d.insert(1, 1), Err(ManagerError::Gone { .. })));
    assert!(matches!(d.len(), Err(ManagerError::Gone { .. })));
    assert!(matches!(
        Manager::connect_redis("redis://:x@"),
        Err(ManagerError::Value(_) | ManagerError::Gone { .. })
    ));
}

#[test]
fn a_foreign_key_under_our_prefix_and_a_full_server_are_typed_errors() {
    let server =
        RedisServer::start_with(&["--maxmemory", "2mb", "--maxmemory-policy", "noeviction"]);
    let manager = Manager::connect_redis(&server.url()).unwrap();
    let d = manager.dict_named::<String, String>("d").unwrap();
    d.insert("k", "v").unwrap();
    // Another program writes a string where the dict keeps its hash.
    let keys = server.command(&["KEYS", "mp:*:h"]);
    let key = keys
        .lines()
        .find(|l| l.starts_with("mp:"))
        .expect("the dict's hash");
    server.command(&["DEL", key]);
    server.command(&["SET", key, "not ours"]);
    assert_eq!(refused(d.get("k")), ErrorCode::WrongKind);
    // Filling the server: refused as out of memory, and nothing half-written.
    let list = manager.list::<String>().unwrap();
    let big = "x".repeat(64 * 1024);
    let mut refusals = 0;
    for _ in 0..200 {
        match list.push(&big) {
            Ok(()) => {}
            Err(e) => {
                assert_eq!(e.code(), Some(&ErrorCode::OutOfMemory), "{e}");
                refusals += 1;
                break;
            }
        }
    }
    assert_eq!(refusals, 1, "a 2 MiB server refused 12 MiB");
    let len = list.len().unwrap();
    assert!(len > 0 && list.get(len - 1).unwrap() == Some(big));
}

#[test]
fn a_flushed_library_is_loaded_again_and_the_call_runs_once() {
    let server = RedisServer::start();
    let manager = Manager::connect_redis(&server.url()).unwrap();
    let d = manager.dict::<String, i64>().unwrap();
    assert_eq!(d.incr("n", 1).unwrap(), 1);
    // Another program (or a restart without persistence) drops our functions: the next call
    // finds them missing, loads them, and runs once.
    assert!(server.command(&["FUNCTION", "FLUSH"]).starts_with("+OK"));
    assert_eq!(d.incr("n", 1).unwrap(), 2);
    assert!(server.command(&["SCRIPT", "FLUSH"]).starts_with("+OK"));
    assert_eq!(d.incr("n", 1).unwrap(), 3);
}

/// A manager on `server` whose locks are leases of `LEASE`.
fn leased(server: &RedisServer) -> Manager {
    Manager::redis(RedisOptions::new(server.url()).lease(LEASE)).unwrap()
}

const LEASE: std::time::Duration = std::time::Duration::from_millis(300);

#[test]
fn a_lock_on_redis_is_owned_by_its_handle_and_counts_a_recursive_ones_depth() {
    let server = RedisServer::start();
    let manager = leased(&server);
    let lock = manager.lock().unwrap();
    let held = lock.acquire().unwrap();
    assert!(!held.owner_died());
    assert!(lock.is_locked().unwrap());
    assert_eq!(refused(lock.try_acquire()), ErrorCode::WouldDeadlock);
    let other = lock.clone(); // another owner
    assert!(other.try_acquire().unwrap_err().is_timeout());
    assert!(
        other
            .acquire_timeout(std::time::Duration::from_millis(50))
            .unwrap_err()
            .is_timeout()
    );
    drop(held);
    assert!(!lock.is_locked().unwrap());
    drop(other.try_acquire().unwrap());

    let rlock = manager.rlock_named("r").unwrap();
    let outer = rlock.acquire().unwrap();
    let inner = rlock.acquire().unwrap();
    assert_eq!(rlock.depth().unwrap(), 2);
    drop(inner);
    assert!(rlock.clone().try_acquire().is_err());
    drop(outer);
    assert_eq!(rlock.depth().unwrap(), 0);
    assert_eq!(refused(rlock.release()), ErrorCode::NotOwner);
    // A waiter is woken by the release, not by its next look.
    let taken = rlock.acquire().unwrap();
    let waiter = {
        let rlock = rlock.clone();
        std::thread::spawn(move || {
            rlock
                .acquire_timeout(common::DEADLINE)
                .map(|g| g.owner_died())
        })
    };
    drop(taken);
    assert!(!waiter.join().unwrap().unwrap());
}

#[test]
fn a_live_holder_keeps_its_lease_past_its_length() {
    let server = RedisServer::start();
    let manager = leased(&server);
    let lock = manager.lock_named("kept").unwrap();
    let held = lock.acquire().unwrap();
    // Three leases long: the holder's process renews it meanwhile.
    std::thread::sleep(3 * LEASE);
    let url = server.url();
    let tried = join(
        Process::spawn(url, |url: String| {
            let manager = Manager::redis(RedisOptions::new(url).lease(LEASE)).unwrap();
            manager.lock_named("kept").unwrap().try_acquire().is_ok()
        })
        .unwrap(),
    );
    assert!(!tried, "another process took a lock whose holder lives");
    drop(held);
    assert!(!lock.acquire().unwrap().owner_died());
}

/// In a child: takes the lock, says so, waits for `go`, then writes to the dict "data" fenced
/// with its token, gives the lock up and tries again. Says whether the lock was held, whether
/// still by it, its token, its fenced write's refusal, and whether it got the lock again.
fn hold_until_told(
    (url, held, go): (String, multiproc::Event, multiproc::Event),
) -> (bool, bool, u64, Option<String>, bool) {
    let manager = Manager::redis(RedisOptions::new(url).lease(LEASE)).unwrap();
    let lock = manager.lock_named("leased").unwrap();
    let data = manager.dict_named::<String, String>("data").unwrap();
    let guard = lock.acquire().unwrap();
    held.set();
    go.wait_timeout(common::DEADLINE).unwrap();
    let locked = lock.is_locked().unwrap();
    let still_mine = guard.is_still_held().unwrap();
    let fence = guard.fencing_token();
    let written = data.fenced(fence).insert("by", "the stopped holder");
    let refusal = written.err().and_then(|e| Some(e.code()?.to_string()));
    drop(guard);
    (
        locked,
        still_mine,
        fence,
        refusal,
        lock.try_acquire().is_ok(),
    )
}

#[test]
fn a_stopped_holder_loses_its_lease_and_the_next_taker_is_told() {
    use rustix::process::{Pid, Signal, kill_process};
    let server = RedisServer::start();
    let manager = leased(&server);
    let lock = manager.lock_named("leased").unwrap();
    let (held, go) = (
        multiproc::Event::new().unwrap(),
        multiproc::Event::new().unwrap(),
    );
    let child = Process::spawn((server.url(), held.clone(), go.clone()), hold_until_told).unwrap();
    held.wait_timeout(common::DEADLINE).unwrap();
    let pid = Pid::from_raw(child.pid() as i32).unwrap();
    kill_process(pid, Signal::STOP).unwrap();
    // Stopped, it renews nothing: within about a lease the lock is the next taker's, who is told.
    let taken = lock.acquire_timeout(common::DEADLINE);
    kill_process(pid, Signal::CONT).unwrap();
    let taken = taken.unwrap();
    assert!(taken.owner_died(), "the lapsed holder is reported");
    assert!(taken.is_still_held().unwrap());
    let data = manager.dict_named::<String, String>("data").unwrap();
    data.fenced(taken.fencing_token())
        .insert("by", "the next holder")
        .unwrap();
    go.set();
    let (locked, still_mine, old_fence, refusal, free) = join(child);
    assert_eq!(
        refusal.as_deref(),
        Some("StaleFence"),
        "the resumed holder's write is refused"
    );
    assert_eq!(data.get("by").unwrap().as_deref(), Some("the next holder"));
    assert!(locked, "the lock is held (by the next taker)");
    assert!(!still_mine, "the resumed holder knows it lost the lease");
    assert!(
        taken.fencing_token() > old_fence,
        "the next holder's token is larger: {} after {old_fence}",
        taken.fencing_token()
    );
    assert!(
        !free,
        "the resumed holder does not get it back while the next holds it"
    );
    drop(taken);
    assert!(!lock.acquire().unwrap().owner_died(), "told once");
}

#[test]
fn a_killed_holders_lock_is_the_next_takers_after_its_lease() {
    let server = RedisServer::start();
    let manager = leased(&server);
    let lock = manager.lock_named("killed").unwrap();
    let held = multiproc::Event::new().unwrap();
    let mut child = Process::spawn(
        (server.url(), held.clone()),
        |(url, held): (String, multiproc::Event)| {
            let manager = Manager::redis(RedisOptions::new(url).lease(LEASE)).unwrap();
            let lock = manager.lock_named("killed").unwrap();
            let guard = lock.acquire().unwrap();
            held.set();
            std::thread::sleep(common::DEADLINE); // until killed
            drop(guard);
        },
    )
    .unwrap();
    held.wait_timeout(common::DEADLINE).unwrap();
    child.kill().unwrap();
    let _ = child.join_timeout(common::DEADLINE);
    let taken = lock.acquire_timeout(common::DEADLINE).unwrap();
    assert!(taken.owner_died());
}

#[test]
fn a_queue_on_redis_does_what_the_managers_does_across_processes() {
    let server = RedisServer::start();
    let manager = leased(&server);
    let q = manager.queue::<String>().unwrap();
    assert!(q.try_get().unwrap_err().is_empty());
    assert!(
        q.get_timeout(std::time::Duration::from_millis(50))
            .unwrap_err()
            .is_empty()
    );
    let child = Process::spawn(q.clone(), |q: multiproc::QueueProxy<String>| {
        for i in 0..50 {
            q.put(format!("item {i}")).unwrap();
        }
    })
    .unwrap();
    // Blocked in BLMOVE until the child's first put.
    let got: Vec<String> = (0..50).map(|_| q.get().unwrap()).collect();
    join(child);
    assert_eq!(
        got,
        (0..50).map(|i| format!("item {i}")).collect::<Vec<_>>()
    );
    assert!(q.is_empty().unwrap());
    assert_eq!(q.max_items().unwrap(), None);
    q.put("last".to_string()).unwrap();
    q.close().unwrap();
    assert!(q.is_closed().unwrap());
    assert_eq!(refused(q.put("more".to_string())), ErrorCode::Closed);
    assert_eq!(q.get().unwrap(), "last");
    assert_eq!(refused(q.get()), ErrorCode::Closed);

    let bounded = manager.queue_bounded::<u8>(2).unwrap();
    bounded.put(1).unwrap();
    bounded.put(2).unwrap();
    assert!(bounded.is_full().unwrap());
    assert!(bounded.try_put(3).unwrap_err().is_full());
    assert_eq!(bounded.get().unwrap(), 1);
    bounded.put_timeout(3, common::DEADLINE).unwrap();
    assert_eq!(
        refused(manager.queue_bounded::<u8>(0)),
        ErrorCode::BadArguments
    );

    let jobs = manager.joinable_queue_named::<u32>("jobs").unwrap();
    assert!(jobs.try_join().is_ok());
    for i in 0..3 {
        jobs.put(i).unwrap();
    }
    assert!(jobs.try_join().unwrap_err().is_timeout());
    let worker = Process::spawn(jobs.clone(), |jobs: multiproc::JoinableQueueProxy<u32>| {
        for _ in 0..3 {
            jobs.get().unwrap();
            jobs.task_done().unwrap();
        }
    })
    .unwrap();
    jobs.join_timeout(common::DEADLINE).unwrap();
    join(worker);
    assert_eq!(jobs.unfinished().unwrap(), 0);
    assert_eq!(refused(jobs.task_done()), ErrorCode::TooManyTaskDone);
}

/// A consumer: takes items, says each (through `seen`) before it declares it done.
fn consume((jobs, seen): (multiproc::JoinableQueueProxy<u32>, multiproc::Queue<u32>)) {
    loop {
        let item = jobs.get().unwrap();
        seen.put(item).unwrap();
        jobs.task_done().unwrap();
    }
}

#[test]
fn consumers_killed_mid_get_and_before_task_done_lose_no_item() {
    let server = RedisServer::start();
    let manager = leased(&server);
    let jobs = manager.joinable_queue::<u32>().unwrap();
    let seen = multiproc::Queue::<u32>::new().unwrap();
    const ITEMS: u32 = 300;
    // A consumer blocked in BLMOVE (the queue empty), killed: it takes nothing with it.
    let mut blocked = Process::spawn((jobs.clone(), seen.clone()), consume).unwrap();
    assert!(
        common::wait_until(|| server.command(&["CLIENT", "LIST"]).contains("cmd=blmove")),
        "the consumer blocks in BLMOVE"
    );
    blocked.kill().unwrap();
    let _ = blocked.join_timeout(common::DEADLINE);
    // A consumer killed right after a get, before its task_done: the item comes again.
    let taken = multiproc::Event::new().unwrap();
    let mut holder = Process::spawn(
        (jobs.clone(), taken.clone()),
        |(jobs, taken): (multiproc::JoinableQueueProxy<u32>, multiproc::Event)| {
            let _item = jobs.get().unwrap();
            taken.set();
            std::thread::sleep(common::DEADLINE); // until killed, never done
        },
    )
    .unwrap();
    jobs.put(0).unwrap();
    taken.wait_timeout(common::DEADLINE).unwrap();
    holder.kill().unwrap();
    let _ = holder.join_timeout(common::DEADLINE);
    for i in 1..ITEMS {
        jobs.put(i).unwrap();
    }
    // Live consumers, one of them killed half-way.
    let live: Vec<_> = (0..2)
        .map(|_| Process::spawn((jobs.clone(), seen.clone()), consume).unwrap())
        .collect();
    let mut count = std::collections::HashMap::<u32, u32>::new();
    let mut victim = Process::spawn((jobs.clone(), seen.clone()), consume).unwrap();
    let mut kills = 2;
    while count.len() < ITEMS as usize {
        let item = seen
            .get_timeout(common::DEADLINE)
            .expect("every item comes");
        *count.entry(item).or_default() += 1;
        if count.len() == ITEMS as usize / 2 && kills == 2 {
            victim.kill().unwrap();
            let _ = victim.join_timeout(common::DEADLINE);
            kills += 1;
        }
    }
    jobs.join_timeout(common::DEADLINE)
        .expect("join returns once every item is done");
    let duplicates: u32 = count.values().map(|n| n - 1).sum();
    assert!(
        duplicates <= kills,
        "{duplicates} duplicates for {kills} kills"
    );
    for mut consumer in live {
        consumer.kill().unwrap();
        let _ = consumer.join_timeout(common::DEADLINE);
    }
}

/// Runs `call` on a thread; what it returned and how long after `kill` it did, `kill` run once
/// the call is under way (`started` says so: the waits it starts are blocked in Redis).
fn gone_after<T: Send + 'static + std::fmt::Debug>(
    server: &mut RedisServer,
    blocked_in: &str,
    call: impl FnOnce() -> Result<T, ManagerError> + Send + 'static,
) -> (Result<T, ManagerError>, std::time::Duration) {
    let (done, answer) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(call());
    });
    let blocked = format!("cmd={blocked_in}");
    assert!(
        common::wait_until(|| server.command(&["CLIENT", "LIST"]).contains(&blocked)),
        "the call blocks in {blocked_in}"
    );
    let killed = std::time::Instant::now();
    server.kill();
    let result = answer
        .recv_timeout(common::DEADLINE)
        .expect("the call returned");
    (result, killed.elapsed())
}

#[test]
fn a_killed_server_is_gone_at_once_for_a_blocked_get_a_lock_wait_and_a_write() {
    let mut server = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
    let manager = leased(&server);
    let d = manager.dict_named::<String, u32>("kept").unwrap();
    d.insert("k", 7).unwrap();
    let q = manager.queue_named::<u32>("q").unwrap();
    let (got, after) = gone_after(&mut server, "blmove", move || q.get());
    assert!(matches!(got, Err(ManagerError::Gone { .. })), "{got:?}");
    assert!(after < std::time::Duration::from_secs(2), "{after:?}");

    server.restart();
    let lock = manager.lock_named("door").unwrap();
    let held = lock.acquire().unwrap();
    let waiter = lock.clone();
    let (got, after) = gone_after(&mut server, "blpop", move || {
        waiter.acquire().map(|g| g.owner_died())
    });
    assert!(matches!(got, Err(ManagerError::Gone { .. })), "{got:?}");
    assert!(after < std::time::Duration::from_secs(2), "{after:?}");
    drop(held);
    // A write to a dead server: Gone, never sent again.
    assert!(matches!(d.insert("k", 8), Err(ManagerError::Gone { .. })));

    // Back on the same socket, with its append-only file: the next call connects, and the data
    // written before the kill is there.
    server.restart();
    assert_eq!(d.get("k").unwrap(), Some(7));
    let again = leased(&server);
    assert_eq!(
        again
            .dict_named::<String, u32>("kept")
            .unwrap()
            .get("k")
            .unwrap(),
        Some(7)
    );
}

#[test]
fn a_restarted_server_without_persistence_has_no_objects_and_says_so() {
    let mut server = RedisServer::start();
    let manager = leased(&server);
    let d = manager.dict::<String, u32>().unwrap();
    d.insert("k", 1).unwrap();
    server.restart();
    // The first call after the restart finds its connection closed before it wrote, and sends on
    // a new one; the object is gone, and no call works on an empty dict in its place.
    assert_eq!(refused(d.len()), ErrorCode::UnknownObject);
    assert_eq!(refused(d.insert("k", 2)), ErrorCode::UnknownObject);
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Tally {
    total: i64,
}

#[multiproc::shared]
impl Tally {
    pub fn add(&mut self, by: i64) -> i64 {
        self.total += by;
        self.total
    }

    pub fn check(&self, limit: i64) -> Result<i64, String> {
        if self.total > limit {
            return Err(format!("{} is over {limit}", self.total));
        }
        Ok(self.total)
    }

    pub fn add_then_panic(&mut self) {
        self.total += 1_000_000;
        panic!("half-way");
    }
}

#[test]
fn a_user_types_methods_run_in_their_callers_and_no_update_is_lost() {
    use TallyMethods;
    let server = RedisServer::start();
    let manager = leased(&server);
    let tally = manager.create_named("tally", &Tally { total: 0 }).unwrap();
    // Four processes at once: each call reads, runs, and writes only if nobody wrote meanwhile.
    let workers: Vec<_> = (0..4)
        .map(|_| {
            Process::spawn(tally.clone(), |tally: multiproc::ObjectProxy<Tally>| {
                for _ in 0..50 {
                    tally.add(1).unwrap();
                }
            })
            .unwrap()
        })
        .collect();
    for w in workers {
        join(w);
    }
    assert_eq!(tally.get().unwrap().total, 200);
    assert_eq!(tally.check(500).unwrap(), 200);
    let failed = tally.check(100);
    assert!(
        matches!(&failed, Err(ManagerError::Remote { code: ErrorCode::MethodFailed, message }) if message.contains("over 100")),
        "{failed:?}"
    );
    // A method that panics writes nothing.
    assert_eq!(refused(tally.add_then_panic()), ErrorCode::Panicked);
    assert_eq!(tally.get().unwrap().total, 200);
    assert_eq!(
        refused(tally.call::<_, ()>("no_such_method", &())),
        ErrorCode::NotExposed
    );
}

/// Edits a dict and a list as every kind of change does, from another process.
fn edit_everything((d, l): (multiproc::DictProxy<String, i64>, multiproc::ListProxy<i64>)) {
    let k = |s: &str| s.to_string();
    d.insert(k("a"), 1).unwrap();
    d.incr(k("a"), 2i64).unwrap();
    d.setdefault(k("a"), 100).unwrap(); // present: no change
    d.compare_and_swap(k("a"), Some(&3), &4).unwrap();
    d.update([(&k("b"), &5)]).unwrap();
    d.remove(k("b")).unwrap();
    d.pop_last().unwrap();
    d.insert(k("c"), 6).unwrap();
    d.clear().unwrap();
    l.push(3).unwrap();
    l.extend([1, 2]).unwrap();
    l.insert(0, 0).unwrap();
    l.insert(99, 9).unwrap();
    l.set(1, 10).unwrap();
    l.incr(1, 1i64).unwrap();
    l.remove(3).unwrap();
    l.pop().unwrap();
    l.remove_item(0).unwrap();
    l.sort().unwrap();
    l.clear().unwrap();
}

#[test]
fn watchers_see_the_changes_the_managers_watchers_see() {
    let server = RedisServer::start();
    let redis = leased(&server);
    let memory = Manager::start().unwrap();
    let mut seen = Vec::new();
    for manager in [&redis, &memory] {
        let d = manager.dict::<String, i64>().unwrap();
        let l = manager.list::<i64>().unwrap();
        let mut dict_changes = d.watch().unwrap();
        let mut list_changes = l.watch().unwrap();
        join(Process::spawn((d.clone(), l.clone()), edit_everything).unwrap());
        let mut dict_seen = Vec::new();
        while let Ok(change) = dict_changes.next_timeout(std::time::Duration::from_millis(200)) {
            dict_seen.push(change);
        }
        let mut list_seen = Vec::new();
        while let Ok(change) = list_changes.next_timeout(std::time::Duration::from_millis(200)) {
            list_seen.push(change);
        }
        assert!(
            dict_seen.len() >= 8 && list_seen.len() >= 10,
            "{dict_seen:?} {list_seen:?}"
        );
        seen.push((dict_seen, list_seen));
    }
    assert_eq!(seen[0], seen[1], "Redis's changes, then the manager's");
}

#[test]
fn nested_containers_stay_live_on_redis_and_go_with_their_key() {
    use std::collections::HashMap;
    let server = RedisServer::start();
    let manager = leased(&server);
    let outer = manager
        .dict_named::<String, HashMap<String, u32>>("outer")
        .unwrap();
    let inner = outer.dict_in::<String, u32>(&"inner".to_string()).unwrap();
    join(
        Process::spawn(
            outer.clone(),
            |outer: multiproc::DictProxy<String, HashMap<String, u32>>| {
                let inner = outer.dict_in::<String, u32>(&"inner".to_string()).unwrap();
                inner.insert("x", 1).unwrap();
                inner.incr("x", 10u32).unwrap();
            },
        )
        .unwrap(),
    );
    assert_eq!(inner.get("x").unwrap(), Some(11));
    // Reading the outer key gives a copy of the nested dict, in every read.
    let copy = outer.get("inner").unwrap().unwrap();
    assert_eq!(copy.get("x"), Some(&11));
    assert_eq!(outer.items().unwrap()[0].1, copy);
    assert_eq!(outer.get_many(["inner"]).unwrap(), [Some(copy.clone())]);
    // A plain value is not a container; a value may not forge the nesting mark.
    let plain = manager.dict::<String, rmpv::Value>().unwrap();
    plain.insert("n", rmpv::Value::from(1)).unwrap();
    assert_eq!(
        refused(plain.dict_in::<u8, u8>(&"n".to_string())),
        ErrorCode::TypeError
    );
    let raw = manager.create_token("dict", vec![]).unwrap();
    let forged = rmpv::Value::Ext(1, vec![0; 8]);
    let refused_forgery = raw.call("dict.set", vec!["f".into(), forged]);
    assert!(
        matches!(refused_forgery, Err(ManagerError::Value(_))),
        "{refused_forgery:?}"
    );
    // Replacing the key removes the nested dict on Redis (nothing holds objects there).
    outer.insert("inner", HashMap::new()).unwrap();
    assert_eq!(outer.get("inner").unwrap(), Some(HashMap::new()));
    assert_eq!(refused(inner.get("x")), ErrorCode::UnknownObject);
    // Removing the outer dict's name removes what it nests.
    let again = outer.dict_in::<String, u32>(&"again".to_string()).unwrap();
    again.insert("y", 2).unwrap();
    assert!(manager.remove_named("outer").unwrap());
    assert_eq!(refused(again.len()), ErrorCode::UnknownObject);
}

/// In a child: writes through the dict stored under "config", and takes the lock stored in the
/// queue.
fn uses_stored_proxies(
    (d, q): (
        multiproc::DictProxy<String, multiproc::DictProxy<String, u32>>,
        multiproc::QueueProxy<multiproc::LockProxy>,
    ),
) -> (Option<u32>, bool) {
    let config = d.get("config").unwrap().expect("stored");
    config.insert("workers", 4).unwrap();
    let lock = q.get().unwrap();
    let free = lock.try_acquire().is_ok();
    (config.get("workers").unwrap(), free)
}

#[test]
fn proxies_stored_as_values_read_back_live_in_another_process() {
    let server = RedisServer::start();
    let manager = leased(&server);
    let d = manager
        .dict::<String, multiproc::DictProxy<String, u32>>()
        .unwrap();
    let config = manager.dict::<String, u32>().unwrap();
    d.insert("config", &config).unwrap();
    let q = manager.queue::<multiproc::LockProxy>().unwrap();
    let lock = manager.lock().unwrap();
    q.put(&lock).unwrap();
    let (workers, free) =
        join(Process::spawn((d.clone(), q.clone()), uses_stored_proxies).unwrap());
    assert_eq!((workers, free), (Some(4), true));
    assert_eq!(config.get("workers").unwrap(), Some(4));
    let again = d.get("config").unwrap().unwrap();
    again.insert("more", 1).unwrap();
    assert_eq!(config.len().unwrap(), 2, "the same object");
    // A proxy of another manager is refused before anything is sent.
    let other = Manager::start().unwrap();
    let foreign = other.dict::<String, u32>().unwrap();
    assert!(matches!(
        d.insert("x", &foreign),
        Err(ManagerError::Value(_))
    ));
}

#[test]
fn stats_count_the_namespaces_objects_and_redis_clients() {
    let server = RedisServer::start_with(&["--requirepass", "pw"]);
    let url = format!("{}?pass=pw", server.url());
    let manager = Manager::redis(RedisOptions::new(&url).namespace("counted")).unwrap();
    let other = Manager::redis(RedisOptions::new(&url).namespace("other")).unwrap();
    assert_eq!(manager.stats().unwrap().objects, 0);
    let _d = manager.dict::<u8, u8>().unwrap();
    let l = manager.list_named::<u8>("l").unwrap();
    let _q = other.queue::<u8>().unwrap();
    let stats = manager.stats().unwrap();
    assert_eq!(stats.objects, 2, "this namespace's, not the other's");
    assert!(stats.connections >= 2, "{stats:?}");
    assert!(Manager::connect_redis(&format!("{}?pass=nope", server.url())).is_err());
    assert!(manager.stats().unwrap().auth_failures >= 1);
    assert!(manager.remove_named("l").unwrap());
    drop(l);
    assert_eq!(manager.stats().unwrap().objects, 1);
    let pong = manager.call("ping", Vec::new()).unwrap();
    assert_eq!(pong.as_str(), Some("pong"), "ping answers as the manager's");
}

#[test]
fn dropping_a_namespace_removes_its_objects_keys_and_no_others() {
    let server = RedisServer::start();
    common::redis::drops_a_namespace_and_no_other(
        |namespace| Manager::redis(RedisOptions::new(server.url()).namespace(namespace)).unwrap(),
        |pattern| {
            let answer = server.command(&["KEYS", pattern]);
            answer
                .trim_start_matches('*')
                .lines()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        },
    );
    // A manager process has no namespace to drop: it frees what nothing holds.
    let ours = Manager::start().unwrap();
    assert!(matches!(ours.drop_namespace(), Err(ManagerError::Value(_))));
}

#[test]
fn a_manager_on_redis_over_tls_serves_children_and_refuses_an_unknown_authority() {
    let (server, url, authority) = RedisServer::start_tls();
    let options = RedisOptions::new(&url).tls_root_certificates(authority);
    let manager = Manager::redis(options).unwrap();
    let d = manager.dict::<String, u32>().unwrap();
    // The child connects over TLS too: the authority travels with the proxy.
    join(
        Process::spawn(d.clone(), |d: multiproc::DictProxy<String, u32>| {
            d.insert("over", 1).unwrap();
        })
        .unwrap(),
    );
    assert_eq!(d.get("over").unwrap(), Some(1));
    // Without the authority (the system's roots only), the certificate is not trusted.
    let untrusted =
        Manager::redis(RedisOptions::new(&url).connect_timeout(std::time::Duration::from_secs(2)));
    assert!(
        matches!(
            untrusted,
            Err(ManagerError::Connect(_) | ManagerError::Gone { .. })
        ),
        "{untrusted:?}"
    );
    drop(server);
}

#[test]
fn an_oversize_value_is_refused_before_it_is_sent() {
    let server = RedisServer::start();
    let manager = leased(&server);
    let d = manager.dict::<String, serde_bytes::ByteBuf>().unwrap();
    let huge = serde_bytes::ByteBuf::from(vec![7u8; multiproc::DEFAULT_MAX_FRAME + 1]);
    let refused_value = d.insert("big", &huge);
    assert!(
        matches!(refused_value, Err(ManagerError::FrameTooLarge { .. })),
        "{:?}",
        refused_value.map(drop)
    );
    // Nothing was sent, and the connection goes on.
    assert!(d.is_empty().unwrap());
    d.insert("small", serde_bytes::ByteBuf::from(vec![1u8]))
        .unwrap();
    assert_eq!(d.len().unwrap(), 1);
}

#[test]
fn a_consumer_killed_after_two_gets_loses_the_first_and_gives_back_the_second() {
    // Its second get acknowledged the first (delivered: if it was done, it is lost to join);
    // the second was still pending: it comes again. join returns, and reports the first.
    let server = RedisServer::start();
    let manager = leased(&server);
    let jobs = manager.joinable_queue::<u32>().unwrap();
    for i in 1..=3 {
        jobs.put(i).unwrap();
    }
    let taken = multiproc::Event::new().unwrap();
    let mut greedy = Process::spawn(
        (jobs.clone(), taken.clone()),
        |(jobs, taken): (multiproc::JoinableQueueProxy<u32>, multiproc::Event)| {
            let first = jobs.get().unwrap();
            let second = jobs.get().unwrap();
            assert_eq!((first, second), (1, 2));
            taken.set();
            std::thread::sleep(common::DEADLINE); // until killed, never done
        },
    )
    .unwrap();
    taken.wait_timeout(common::DEADLINE).unwrap();
    greedy.kill().unwrap();
    let _ = greedy.join_timeout(common::DEADLINE);
    // Another consumer gets what is left: 3, and 2 again once the dead one's lease lapsed (in
    // whichever order the lapse makes).
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(jobs.get_timeout(common::DEADLINE).unwrap());
        jobs.task_done().unwrap();
    }
    got.sort();
    assert_eq!(got, [2, 3]);
    match jobs.join_timeout(common::DEADLINE) {
        Err(ManagerError::TasksLost(lost)) => assert_eq!(lost.items, 1),
        other => panic!("join should report the one item lost: {other:?}"),
    }
    jobs.join_timeout(common::DEADLINE).expect("reported once");
}
