//! How long the manager's objects live: exactly as long as something holds them (a proxy in any
//! process, a name, a dict's slot, a proxy in flight), across real processes; a SIGKILLed holder
//! gives up what it held; a proxy inherited through fork is refused, not used.

multiproc::test_support!();

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::{DEADLINE, join, park_forever, sigkill, status_field, wait_until};
use multiproc::{DictProxy, Event, Manager, ManagerError, Process, RecvError, StartMethod, pipe};

fn unix_address(manager: &Manager) -> String {
    match manager.address() {
        multiproc::Address::Unix(path) => path.display().to_string(),
        other => panic!("a Unix socket, not {other}"),
    }
}

fn objects(manager: &Manager) -> u64 {
    manager.stats().unwrap().objects
}

/// The server's resident memory, in KiB.
fn resident(manager: &Manager) -> u64 {
    status_field(manager.pid().expect("started here"), "VmRSS")
}

/// Creates and drops `cycles` objects, rotating through dicts, lists, locks and queues, each
/// used once so that the server really holds something.
fn churn((manager, cycles): (String, u32)) -> u32 {
    let (address, key) = manager.split_once('\n').unwrap();
    let manager = Manager::connect(address, key.as_bytes()).unwrap();
    for i in 0..cycles {
        match i % 4 {
            0 => manager.dict::<u32, u32>().unwrap().insert(i, i).unwrap(),
            1 => manager.list_from::<u32>(&[i]).unwrap().push(i).unwrap(),
            2 => drop(manager.lock().unwrap().acquire().unwrap()),
            _ => manager.queue::<u32>().unwrap().put(i).unwrap(),
        }
    }
    cycles
}

#[test]
fn a_hundred_thousand_objects_created_and_dropped_from_four_processes_leave_nothing_behind() {
    let manager = Manager::builder().authkey(b"churn").start().unwrap();
    let kept = manager.dict::<u32, u32>().unwrap();
    let baseline = objects(&manager);
    let address = unix_address(&manager);
    let arg = |cycles| (format!("{address}\nchurn"), cycles);
    // A first round, so that the server's tables and allocator have their working size.
    assert_eq!(churn(arg(2_000)), 2_000);
    assert!(wait_until(|| objects(&manager) == baseline));
    let before = resident(&manager);
    let workers: Vec<_> = (0..4)
        .map(|_| Process::spawn(arg(25_000), churn).unwrap())
        .collect();
    let done: u32 = workers.into_iter().map(join).sum();
    assert_eq!(done, 100_000);
    // A process gives its last holds back without waiting: they are freed once the server has
    // read them, before it sees the process's connections end.
    assert!(
        wait_until(|| objects(&manager) == baseline),
        "every dropped object was freed: {} objects, {baseline} before",
        objects(&manager)
    );
    let after = resident(&manager);
    // 100 000 objects left behind would take tens of MiB.
    assert!(
        after < before + 8 * 1024,
        "the server grew from {before} KiB to {after} KiB resident"
    );
    kept.insert(1, 1).unwrap();
    assert_eq!(kept.get(1).unwrap(), Some(1));
}

#[test]
fn clones_share_one_hold_and_the_last_dropped_frees_the_object() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    let clone = d.clone();
    let watcher = d.watch().unwrap();
    assert_eq!(objects(&manager), 1);
    drop(d);
    clone.insert(1, 2).unwrap();
    drop(clone);
    assert_eq!(objects(&manager), 1, "the watcher still holds it");
    drop(watcher);
    assert_eq!(objects(&manager), 0);
    // A nested container is held by its slot, and by its proxies.
    let outer = manager.dict::<String, Vec<u32>>().unwrap();
    let inner = outer.list_in::<u32>(&"log".to_string()).unwrap();
    drop(inner);
    assert_eq!(objects(&manager), 2, "the slot holds the nested list");
    outer.remove("log").unwrap();
    assert_eq!(objects(&manager), 1);
    outer
        .list_in::<u32>(&"log".to_string())
        .unwrap()
        .push(1)
        .unwrap();
    drop(outer);
    assert_eq!(objects(&manager), 0, "a dict freed frees what it nests");
}

#[test]
fn a_named_object_lives_until_its_name_is_removed_and_its_proxies_are_gone() {
    let manager = Manager::start().unwrap();
    let scores = manager.dict_named::<String, u32>("scores").unwrap();
    scores.insert("ann", 3).unwrap();
    drop(scores);
    assert_eq!(objects(&manager), 1, "its name holds it");
    let again = manager.dict_named::<String, u32>("scores").unwrap();
    assert_eq!(again.get("ann").unwrap(), Some(3));
    assert!(manager.remove_named("scores").unwrap());
    assert!(!manager.remove_named("scores").unwrap());
    assert_eq!(objects(&manager), 1, "a proxy still holds it");
    assert_eq!(again.get("ann").unwrap(), Some(3));
    // The name now makes a new object.
    let fresh = manager.dict_named::<String, u32>("scores").unwrap();
    assert_eq!(fresh.get("ann").unwrap(), None);
    drop(again);
    drop(fresh);
    assert_eq!(objects(&manager), 1, "the new one's name holds it");
    assert!(manager.remove_named("scores").unwrap());
    assert_eq!(objects(&manager), 0);
}

/// Waits until told, then reads the proxy sent before and uses it.
fn late_reader(
    (proxies, go): (multiproc::Connection<DictProxy<u32, u32>>, Event),
) -> Result<Option<u32>, String> {
    go.wait_timeout(DEADLINE).map_err(|e| e.to_string())?;
    let d = proxies.recv_timeout(DEADLINE).map_err(|e| e.to_string())?;
    d.get(7).map_err(|e| e.to_string())
}

#[test]
fn a_proxy_in_flight_keeps_its_object_alive_after_its_sender_drops_it() {
    let manager = Manager::start().unwrap();
    let (here, there) = pipe::<DictProxy<u32, u32>>().unwrap();
    let go = Event::new().unwrap();
    let reader = Process::spawn((there, go.clone()), late_reader).unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    d.insert(7, 49).unwrap();
    here.send(&d).unwrap();
    drop(d);
    assert_eq!(objects(&manager), 1, "the loan holds it");
    go.set();
    assert_eq!(join(reader), Ok(Some(49)));
    // The reader claimed the loan and ended: nothing holds the dict now.
    assert!(wait_until(|| objects(&manager) == 0));
}

#[test]
fn a_loan_nobody_claims_ends_with_its_grace_period() {
    let manager = Manager::builder()
        .loan_grace(Duration::from_millis(200))
        .start()
        .unwrap();
    let (here, there) = pipe::<DictProxy<u32, u32>>().unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    here.send(&d).unwrap();
    drop(d);
    assert!(
        wait_until(|| objects(&manager) == 0),
        "the unclaimed loan kept the dict"
    );
    match there.recv_timeout(DEADLINE) {
        Err(multiproc::RecvTimeoutError::Recv(RecvError::Decode(e))) => {
            assert!(e.to_string().contains("freed"), "{e}")
        }
        other => panic!("expected a decode error naming the freed object, got {other:?}"),
    }
}

/// Creates a dict (sent back) and a lock it holds, reports, and parks until killed.
fn holder((address, key, report): (String, Vec<u8>, multiproc::Connection<DictProxy<u32, u32>>)) {
    let manager = Manager::connect(address.as_str(), &key).unwrap();
    let shared = manager.dict::<u32, u32>().unwrap();
    let _mine = manager.dict::<u32, u32>().unwrap();
    let lock = manager.lock().unwrap();
    let _guard = lock.acquire().unwrap();
    report.send(&shared).unwrap();
    park_forever()
}

#[test]
fn a_sigkilled_holder_frees_what_only_it_held() {
    let manager = Manager::start().unwrap();
    let address = unix_address(&manager);
    let (here, there) = pipe::<DictProxy<u32, u32>>().unwrap();
    let mut child = Process::spawn((address, manager.authkey().to_vec(), there), holder).unwrap();
    let shared = here.recv_timeout(DEADLINE).unwrap();
    assert_eq!(objects(&manager), 3);
    sigkill(child.pid());
    let _ = child.join_timeout(DEADLINE);
    assert!(
        wait_until(|| objects(&manager) == 1),
        "{} objects after the kill",
        objects(&manager)
    );
    shared.insert(1, 1).unwrap();
    assert_eq!(shared.len().unwrap(), 1, "what this process holds lives on");
}

static INHERITED: OnceLock<DictProxy<u32, u32>> = OnceLock::new();

/// Run in a forked grandchild: uses the proxy its parent left in a static.
fn uses_inherited(_: ()) -> String {
    match INHERITED.get().expect("inherited").len() {
        Err(e @ ManagerError::InheritedThroughFork { .. }) => e.to_string(),
        other => format!("used the parent's connection: {other:?}"),
    }
}

/// Connects, leaves a proxy in a static, and forks a child that finds it there.
fn forks_with_a_proxy((address, key): (String, Vec<u8>)) -> (String, usize) {
    let manager = Manager::connect(address.as_str(), &key).unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    d.insert(1, 1).unwrap();
    INHERITED.set(d).unwrap();
    let child = Process::builder()
        .start_method(StartMethod::Fork)
        .spawn((), uses_inherited)
        .unwrap();
    let said = join(child);
    // The parent's connection is still in step.
    (said, INHERITED.get().unwrap().len().unwrap())
}

#[test]
fn a_proxy_inherited_through_fork_is_refused_and_its_parents_connection_stays_in_step() {
    let manager = Manager::start().unwrap();
    let address = unix_address(&manager);
    // In a child of its own: the fork happens there, single-threaded, not in the test harness.
    let parent = Process::spawn((address, manager.authkey().to_vec()), forks_with_a_proxy).unwrap();
    let (said, len) = join(parent);
    assert!(said.contains("inherited through fork"), "{said}");
    assert_eq!(len, 1);
}

// References as values: a proxy stored in a dict, a list, a namespace or a queue of its own
// manager is a reference, read back as a live proxy.

/// Reads the dict stored under "config" and writes through it.
fn writes_through_a_stored_proxy(d: DictProxy<String, DictProxy<String, u32>>) -> Option<u32> {
    let config = d.get("config").unwrap().expect("stored");
    config.insert("workers", 4).unwrap();
    config.get("workers").unwrap()
}

#[test]
fn a_proxy_stored_in_a_dict_reads_back_live_in_another_process() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<String, DictProxy<String, u32>>().unwrap();
    let config = manager.dict::<String, u32>().unwrap();
    d.insert("config", &config).unwrap();
    drop(config);
    assert_eq!(objects(&manager), 2, "the slot holds the stored dict");
    let child = Process::spawn(d.clone(), writes_through_a_stored_proxy).unwrap();
    assert_eq!(join(child), Some(4));
    let config = d.get("config").unwrap().unwrap();
    assert_eq!(config.get("workers").unwrap(), Some(4));
    // Read twice, the same object.
    let again = d.get("config").unwrap().unwrap();
    again.insert("more", 1).unwrap();
    assert_eq!(config.len().unwrap(), 2);
    // Removed from the dict, it lives while a proxy holds it.
    d.remove("config").unwrap();
    assert_eq!(config.len().unwrap(), 2);
    drop((config, again));
    assert!(wait_until(|| objects(&manager) == 1));
}

/// Puts a fresh dict, holding `n`, into the queue and ends (its own holds end with it).
fn leaves_a_dict_in_a_queue(
    (queue, address, key, n): (
        multiproc::QueueProxy<DictProxy<String, u32>>,
        String,
        Vec<u8>,
        u32,
    ),
) {
    let manager = Manager::connect(address.as_str(), &key).unwrap();
    let d = manager.dict::<String, u32>().unwrap();
    d.insert("n", n).unwrap();
    queue.put(&d).unwrap();
}

#[test]
fn a_proxy_in_a_queue_outlives_the_process_that_put_it() {
    let manager = Manager::start().unwrap();
    let queue = manager.queue::<DictProxy<String, u32>>().unwrap();
    let address = unix_address(&manager);
    let args = (queue.clone(), address, manager.authkey().to_vec(), 7);
    let child = Process::spawn(args, leaves_a_dict_in_a_queue).unwrap();
    join(child);
    assert!(
        wait_until(|| objects(&manager) == 2),
        "the queue's item holds the dict"
    );
    let d = queue.get_timeout(DEADLINE).unwrap();
    assert_eq!(d.get("n").unwrap(), Some(7));
    drop(d);
    assert_eq!(objects(&manager), 1, "got and dropped: freed");
}

#[test]
fn a_list_of_queues_and_a_cycle_of_namespaces_are_freed_when_unreachable() {
    let manager = Manager::start().unwrap();
    let queues = manager.list::<multiproc::QueueProxy<u32>>().unwrap();
    queues.push(manager.queue::<u32>().unwrap()).unwrap();
    queues.get(0).unwrap().unwrap().put(5).unwrap();
    assert_eq!(queues.get(0).unwrap().unwrap().get().unwrap(), 5);
    assert_eq!(objects(&manager), 2);
    drop(queues);
    assert_eq!(objects(&manager), 0, "the list freed what it alone held");

    // A namespace that holds itself, and two that hold each other.
    let me = manager.namespace().unwrap();
    me.set("me", &me).unwrap();
    let myself: multiproc::NamespaceProxy = me.get("me").unwrap();
    myself.set("n", 1).unwrap();
    assert_eq!(me.get::<u32>("n").unwrap(), 1);
    let (a, b) = (manager.namespace().unwrap(), manager.namespace().unwrap());
    a.set("b", &b).unwrap();
    b.set("a", &a).unwrap();
    let keeper = manager.dict::<String, multiproc::NamespaceProxy>().unwrap();
    keeper.insert("a", &a).unwrap();
    drop((me, myself, a, b));
    assert_eq!(
        objects(&manager),
        3,
        "the keeper reaches a, and a reaches b"
    );
    let a = keeper.get("a").unwrap().unwrap();
    let b: multiproc::NamespaceProxy = a.get("b").unwrap();
    let back: multiproc::NamespaceProxy = b.get("a").unwrap();
    back.set("seen", true).unwrap();
    assert!(a.get::<bool>("seen").unwrap());
    drop((a, b, back));
    keeper.clear().unwrap();
    assert_eq!(objects(&manager), 1, "an unreachable cycle is freed");
}

#[test]
fn a_proxy_is_refused_as_a_key_and_in_another_manager_and_a_misread_one_leaks_nothing() {
    let manager = Manager::start().unwrap();
    let other = Manager::start().unwrap();
    let d = manager.dict::<u8, u8>().unwrap();
    let keyed = manager.dict::<DictProxy<u8, u8>, u8>().unwrap();
    match keyed.insert(&d, 1) {
        Err(ManagerError::Remote {
            code: multiproc::ErrorCode::BadArguments,
            message,
        }) => assert!(message.contains("key"), "{message}"),
        other => panic!("a proxy as a key: {other:?}"),
    }
    let foreign = other.dict::<u8, DictProxy<u8, u8>>().unwrap();
    match foreign.insert(1, &d) {
        Err(ManagerError::Value(message)) => assert!(message.contains("another manager")),
        other => panic!("a proxy of another manager: {other:?}"),
    }
    assert_eq!(foreign.len().unwrap(), 0, "nothing was stored");
    // The same dict read as holding numbers: the reference is no number, and its hold is given
    // back.
    let stored = manager.dict_named::<u8, DictProxy<u8, u8>>("box").unwrap();
    stored.insert(1, &d).unwrap();
    let misread = manager.dict_named::<u8, u32>("box").unwrap();
    match misread.get(1) {
        Err(ManagerError::Value(message)) => assert!(message.contains("proxy"), "{message}"),
        other => panic!("a reference read as a number: {other:?}"),
    }
    assert_eq!(misread.len().unwrap(), 1);
    drop((stored, misread, d, keyed));
    assert!(manager.remove_named("box").unwrap());
    assert_eq!(
        objects(&manager),
        0,
        "nothing leaked: the misread hold was given back"
    );
}

#[test]
fn references_in_a_list_are_counted_through_every_edit() {
    let manager = Manager::start().unwrap();
    let l = manager.list::<DictProxy<u8, u8>>().unwrap();
    l.push(manager.dict().unwrap()).unwrap();
    l.repeat(3).unwrap();
    assert_eq!(l.len().unwrap(), 3);
    assert_eq!(objects(&manager), 2, "three references to one dict");
    l.remove_range(..2).unwrap();
    l.reverse().unwrap();
    assert_eq!(objects(&manager), 2, "one reference left");
    let d = l.pop().unwrap().expect("an item");
    d.insert(1, 1).unwrap();
    drop(d);
    assert_eq!(objects(&manager), 1, "popped and dropped: freed");
    let a = manager.dict::<u8, u8>().unwrap();
    l.replace_range(.., [&a, &a]).unwrap();
    drop(a);
    assert_eq!(objects(&manager), 2);
    assert!(l.sort().is_err(), "proxies have no natural order");
    l.remove_item(l.get(0).unwrap().unwrap()).unwrap();
    assert_eq!(l.len().unwrap(), 1);
    l.clear().unwrap();
    assert_eq!(objects(&manager), 1);
}

#[test]
fn dropping_a_proxy_never_waits_for_the_server() {
    use rustix::process::{Pid, Signal, kill_process};
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u8, u8>().unwrap();
    let server = Pid::from_raw(manager.pid().unwrap() as i32).unwrap();
    kill_process(server, Signal::STOP).unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(d);
        let _ = done.send(());
    });
    let dropped = finished.recv_timeout(DEADLINE);
    kill_process(server, Signal::CONT).unwrap();
    dropped.expect("the drop returned while the server was stopped");
    assert!(wait_until(|| objects(&manager) == 0));
}
