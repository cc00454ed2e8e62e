//! The manager's data across processes: dicts (atomic updates, nesting, watching), namespaces,
//! lists, arrays, values, user types, named objects; over a Unix socket and TCP, started here or
//! standalone. The waiting objects are in `manager_sync.rs`, the faults in `manager_faults.rs`.

multiproc::test_support!();

mod common;

/// The data suite's backend here: a manager process of its own for each test.
mod backend {
    pub fn manager() -> multiproc::Manager {
        multiproc::Manager::start().unwrap()
    }
}

#[path = "suite/data.rs"]
mod data;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{DEADLINE, join, refused};
use multiproc::{
    Address, ConnectError, DictProxy, ErrorCode, ListChange, ListProxy, Manager, ManagerError,
    NamespaceProxy, Process, ValueProxy,
};

#[test]
fn unrelated_processes_meet_at_a_named_dict() {
    let manager = Manager::start().unwrap();
    let address = manager.address().clone();
    let key = manager.authkey().to_vec();
    // The child gets only the address and the key (privately, as its argument).
    join(
        Process::spawn((address, key), |(address, key): (Address, Vec<u8>)| {
            let manager = Manager::connect(address, &key).unwrap();
            let results = manager.dict_named::<u32, String>("results").unwrap();
            results.insert(1, "from the child".to_string()).unwrap();
        })
        .unwrap(),
    );
    let results = manager.dict_named::<u32, String>("results").unwrap();
    assert_eq!(results.get(1).unwrap().as_deref(), Some("from the child"));
}

#[test]
fn a_manager_over_tcp_serves_children_and_refuses_an_open_interface() {
    let manager = Manager::builder()
        .address("127.0.0.1:0")
        .authkey(b"a tcp key")
        .start()
        .unwrap();
    let Address::Tcp(tcp) = manager.address() else {
        panic!("a TCP address")
    };
    assert_ne!(tcp.port(), 0);
    let d = manager.dict_named::<String, u32>("over-tcp").unwrap();
    join(
        Process::spawn(manager.address().clone(), |address: Address| {
            let manager = Manager::connect(address, b"a tcp key").unwrap();
            let d = manager.dict_named::<String, u32>("over-tcp").unwrap();
            d.incr("n", 5u32).unwrap();
        })
        .unwrap(),
    );
    assert_eq!(d.get("n").unwrap(), Some(5));
    assert!(matches!(
        Manager::connect(manager.address().clone(), b"wrong"),
        Err(ManagerError::Connect(ConnectError::AuthFailed))
    ));
    // Fault row 12: all interfaces without the opt-in.
    assert!(matches!(
        Manager::builder().address("0.0.0.0:0").start(),
        Err(ManagerError::Connect(ConnectError::NotLoopback { .. }))
    ));
}

#[test]
fn a_standalone_server_serves_until_a_client_shuts_it_down() {
    let dir = std::env::temp_dir().join(format!("multiproc-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("standalone.sock");
    let _ = std::fs::remove_file(&path);
    let mut server = Process::spawn(path.clone(), |path: std::path::PathBuf| {
        Manager::builder()
            .address(path)
            .authkey(b"standalone key")
            .serve()
            .unwrap();
    })
    .unwrap();
    // Connect as soon as it listens.
    let manager = {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match Manager::connect(path.clone(), b"standalone key") {
                Ok(manager) => break manager,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("the server never listened: {e}"),
            }
        }
    };
    manager.dict::<u8, u8>().unwrap().insert(1, 2).unwrap();
    manager.shutdown().unwrap();
    assert!(server.join_timeout(DEADLINE).is_ok(), "the server exited");
    let _ = std::fs::remove_dir_all(dir);
}

/// A user type for the tests: its methods add, fail, panic.
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Account {
    balance: i64,
}

impl multiproc::Shared for Account {
    const TYPE_NAME: &'static str = "Account";

    fn call(
        &mut self,
        method: &str,
        args: multiproc::Args,
    ) -> Result<multiproc::Reply, multiproc::CallError> {
        match method {
            "deposit" => {
                self.balance += args.decode::<i64>()?;
                multiproc::Reply::of(&self.balance)
            }
            "overdraw" => Err(multiproc::CallError::Failed("insufficient funds".into())),
            "explode" => {
                self.balance = -1_000_000; // never stored: the call fails
                panic!("boom")
            }
            _ => Err(multiproc::CallError::not_exposed(method)),
        }
    }
}

#[test]
fn a_registered_types_methods_run_on_the_server_and_a_panic_is_the_callers_error() {
    let manager = Manager::builder().register::<Account>().start().unwrap();
    let account = manager.create(&Account { balance: 10 }).unwrap();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            Process::spawn(account.clone(), |a: multiproc::ObjectProxy<Account>| {
                for _ in 0..25 {
                    a.call::<_, i64>("deposit", &1i64).unwrap();
                }
            })
            .unwrap()
        })
        .collect();
    for w in workers {
        join(w);
    }
    assert_eq!(account.get().unwrap(), Account { balance: 110 });
    let code = refused::<i64>;
    assert_eq!(code(account.call("overdraw", &())), ErrorCode::MethodFailed);
    assert_eq!(code(account.call("explode", &())), ErrorCode::Panicked);
    assert_eq!(code(account.call("steal", &())), ErrorCode::NotExposed);
    assert_eq!(
        code(account.call("deposit", &"not a number")),
        ErrorCode::BadArguments
    );
    // The server went on, and the failed calls changed nothing.
    assert_eq!(account.get().unwrap(), Account { balance: 110 });
    // A type this manager does not know is refused.
    let plain = Manager::start().unwrap();
    assert!(matches!(
        plain.create(&Account { balance: 0 }),
        Err(ManagerError::Remote { code, .. }) if code == ErrorCode::NotExposed
    ));
}

#[test]
fn nested_containers_stay_live_in_every_process() {
    // Python: `d["inner"]["x"] = 1` on a plain dict stored in a managed one is silently lost.
    let manager = Manager::start().unwrap();
    let outer = manager.dict::<String, HashMap<String, u32>>().unwrap();
    let inner = outer.dict_in::<String, u32>(&"inner".to_string()).unwrap();
    join(
        Process::spawn(
            outer.clone(),
            |outer: DictProxy<String, HashMap<String, u32>>| {
                let inner = outer.dict_in::<String, u32>(&"inner".to_string()).unwrap();
                inner.insert("x", 1).unwrap();
                inner.incr("x", 10u32).unwrap();
            },
        )
        .unwrap(),
    );
    assert_eq!(inner.get("x").unwrap(), Some(11));
    // Reading the outer key gives a copy of the nested dict.
    let copy = outer.get("inner").unwrap().unwrap();
    assert_eq!(copy.get("x"), Some(&11));
    // A plain value is not a container.
    let plain = manager.dict::<String, u32>().unwrap();
    plain.insert("n", 1).unwrap();
    assert!(matches!(
        plain.dict_in::<u8, u8>(&"n".to_string()),
        Err(ManagerError::Remote {
            code: ErrorCode::TypeError,
            ..
        })
    ));
    // Replacing the key detaches the nested dict: it lives on while a proxy holds it, as in
    // Python, and is freed with the last one.
    let objects = manager.stats().unwrap().objects;
    outer.insert("inner", HashMap::new()).unwrap();
    assert_eq!(inner.get("x").unwrap(), Some(11));
    assert_eq!(outer.get("inner").unwrap(), Some(HashMap::new()));
    assert_eq!(manager.stats().unwrap().objects, objects);
    drop(inner);
    // The child held the nested dict too, until the server saw its connection end: a moment
    // after the child exited, which `join` does not wait for.
    assert!(
        common::wait_until(|| manager.stats().unwrap().objects == objects - 1),
        "the detached dict outlived its last proxy: {:?}",
        manager.stats()
    );
}

#[test]
fn a_list_watcher_iterates_over_changes_and_ends_when_the_manager_does() {
    let manager = Manager::start().unwrap();
    let list = manager.list::<u32>().unwrap();
    let watcher = list.watch().unwrap();
    join(
        Process::spawn(list.clone(), |list: ListProxy<u32>| {
            list.push(1).unwrap();
            list.extend([2, 3]).unwrap();
            list.insert(0, 0).unwrap();
            list.set(1, 10).unwrap();
            list.remove(3).unwrap();
            list.pop().unwrap();
            list.clear().unwrap();
        })
        .unwrap(),
    );
    let (seen, gone): (Vec<_>, Vec<_>) = {
        let mut watcher = watcher;
        let seen: Vec<_> = watcher.by_ref().take(8).map(Result::unwrap).collect();
        manager.shutdown().unwrap();
        (seen, watcher.collect())
    };
    assert_eq!(
        seen,
        [
            ListChange::Appended(1),
            ListChange::Appended(2),
            ListChange::Appended(3),
            ListChange::Inserted(0, 0),
            ListChange::Set(1, 10),
            ListChange::Removed(3),
            ListChange::Removed(2),
            ListChange::Cleared,
        ]
    );
    assert!(matches!(gone.as_slice(), [Err(ManagerError::Gone { .. })]));
}

type Proxies = (
    DictProxy<u32, u32>,
    ListProxy<u32>,
    ValueProxy<u32>,
    NamespaceProxy,
    multiproc::Queue<u8>,
);

#[test]
fn a_child_shares_one_connection_for_its_data_proxies() {
    let manager = Manager::start().unwrap();
    let ready = multiproc::Queue::<u8>::new().unwrap();
    let proxies = (
        manager.dict::<u32, u32>().unwrap(),
        manager.list::<u32>().unwrap(),
        manager.value(&0u32).unwrap(),
        manager.namespace().unwrap(),
        ready.clone(),
    );
    let before = manager.stats().unwrap().connections;
    let mut child = Process::spawn(proxies, |(d, l, v, ns, ready): Proxies| -> () {
        d.insert(1, 1).unwrap();
        l.push(1).unwrap();
        v.set(1).unwrap();
        ns.set("x", 1).unwrap();
        ready.put(1).unwrap();
        loop {
            std::thread::park();
        }
    })
    .unwrap();
    ready.get_timeout(DEADLINE).unwrap();
    // One for the four proxies (Python: one per process and thread), not four.
    assert_eq!(manager.stats().unwrap().connections, before + 1);
    child.kill().unwrap();
    let _ = child.join_timeout(DEADLINE);
}

/// Takes the lock through its token, writes through the dict's token, and returns without
/// releasing the lock: dropping the token releases it, as a forgotten guard would.
fn uses_tokens((lock, d): (multiproc::Token, multiproc::Token)) -> Option<i64> {
    use multiproc::rmpv::Value as V;
    assert_eq!(
        lock.call("lock.acquire", vec![V::Nil]).unwrap(),
        V::from("acquired")
    );
    d.call("dict.incr", vec!["n".into(), 2.into()]).unwrap();
    d.call("dict.getitem", vec!["n".into()]).unwrap().as_i64()
}

#[test]
fn an_untyped_token_does_what_a_proxy_does_across_processes() {
    use multiproc::rmpv::Value as V;
    let manager = Manager::start().unwrap();
    let lock = manager.create_token("lock", Vec::new()).unwrap();
    let d = manager.named_token("counts", "dict", Vec::new()).unwrap();
    let typed = manager.dict_named::<String, i64>("counts").unwrap();
    let got = join(Process::spawn((lock.clone(), d.clone()), uses_tokens).unwrap());
    assert_eq!(got, Some(2));
    assert_eq!(typed.get("n").unwrap(), Some(2));
    // The child's token held the lock when it was dropped: released, and the next taker told.
    let answer = lock.call("lock.acquire", vec![V::from(5_000)]).unwrap();
    assert_eq!(answer, V::from("owner_died"), "{answer}");
    lock.call("lock.release", Vec::new()).unwrap();
    // Names this client does not know, and manager ops, are refused before anything is sent.
    for (op, on) in [("dict.exec", &d), ("stats", &d)] {
        match on.call(op, Vec::new()) {
            Err(ManagerError::Remote {
                code: ErrorCode::NotExposed,
                ..
            }) => {}
            other => panic!("{op}: {other:?}"),
        }
    }
    assert_eq!(manager.call("ping", Vec::new()).unwrap(), V::from("pong"));
    assert!(
        manager.call("dict", Vec::new()).is_err(),
        "objects come from create_token"
    );
}

/// A server whose user type's methods are a handler given at run time (as a binding to another
/// language gives them), dying with the test process.
fn serves_a_handler_type((address, key, parent): (String, Vec<u8>, u32)) {
    use multiproc::rmpv::Value as V;
    use std::sync::{Arc, Mutex};
    let freed: Arc<Mutex<Vec<V>>> = Arc::default();
    let seen = freed.clone();
    Manager::builder()
        .address(address.as_str())
        .authkey(&key)
        .die_with_parent(parent)
        .register_handler("Counter", move |method, state, args| match method {
            "freed" => Ok(V::Array(seen.lock().unwrap().clone())),
            "increase" => {
                let by = args.as_u64().unwrap_or(1);
                *state = V::from(state.as_u64().unwrap_or(0) + by);
                Ok(state.clone())
            }
            "boom" => {
                *state = V::from("changed before the panic");
                panic!("the handler panicked")
            }
            other => Err(multiproc::CallError::not_exposed(other)),
        })
        .on_free("Counter", move |state| freed.lock().unwrap().push(state))
        .serve()
        .unwrap();
}

#[test]
fn user_types_registered_at_run_time_are_served_and_a_handler_that_panics_changes_nothing() {
    use multiproc::rmpv::Value as V;
    let refused = Manager::builder()
        .register_handler("Counter", |_, _, _| Ok(V::Nil))
        .start();
    assert!(
        matches!(refused, Err(ManagerError::Start(_))),
        "{refused:?}"
    );
    let dir = std::env::temp_dir().join(format!("multiproc-handler-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("manager.sock");
    let address = socket.display().to_string();
    let args = (address, b"handler key".to_vec(), std::process::id());
    let server = Process::spawn(args, serves_a_handler_type).unwrap();
    let deadline = Instant::now() + DEADLINE;
    let manager = loop {
        match Manager::connect(socket.as_path(), b"handler key") {
            Ok(manager) => break manager,
            Err(e) => assert!(Instant::now() < deadline, "the server never answered: {e}"),
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let counter = manager
        .create_token("object", vec!["Counter".into(), 0.into()])
        .unwrap();
    let call = |method: &str, args: V| counter.call("object.call", vec![method.into(), args]);
    assert_eq!(call("increase", 5.into()).unwrap(), V::from(5));
    assert_eq!(call("increase", V::Nil).unwrap(), V::from(6));
    for (method, code) in [
        ("nope", ErrorCode::NotExposed),
        ("boom", ErrorCode::Panicked),
    ] {
        match call(method, V::Nil) {
            Err(ManagerError::Remote { code: got, .. }) => assert_eq!(got, code, "{method}"),
            other => panic!("{method}: {other:?}"),
        }
    }
    assert_eq!(counter.call("object.get", Vec::new()).unwrap(), V::from(6));
    // Freed with its last hold: the host hears of it, with the last state.
    drop(counter);
    let other = manager
        .create_token("object", vec!["Counter".into(), 100.into()])
        .unwrap();
    let freed = || {
        other
            .call("object.call", vec!["freed".into(), V::Nil])
            .unwrap()
    };
    while freed() != V::Array(vec![6.into()]) {
        assert!(
            Instant::now() < deadline,
            "the free hook never ran: {:?}",
            freed()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(other);
    manager.shutdown().unwrap();
    join(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_interrupted_wait_takes_nothing_and_a_finished_one_loses_nothing() {
    use multiproc::rmpv::Value as V;
    let manager = Manager::start().unwrap();
    let queue = manager.create_token("queue", vec![V::Nil]).unwrap();
    let soon = |ms| {
        let at = Instant::now() + Duration::from_millis(ms);
        move || Instant::now() > at
    };
    // A get given up: the item put afterwards is still there for the next taker.
    let waited = queue.call_interruptible("queue.get", vec![V::Nil], &soon(200));
    assert!(
        matches!(waited, Err(ManagerError::Interrupted)),
        "{waited:?}"
    );
    queue.call("queue.put", vec![7.into(), V::Nil]).unwrap();
    assert_eq!(
        queue.call("queue.get", vec![0.into()]).unwrap(),
        V::Array(vec![7.into()])
    );
    // An acquire given up while another owner holds the lock takes nothing: once released, a
    // third owner takes it at once.
    let lock = manager.create_token("lock", vec![]).unwrap();
    let (holder, waiter, third) = (lock.clone(), lock.clone(), lock.clone());
    assert_eq!(
        holder.call("lock.acquire", vec![V::Nil]).unwrap(),
        V::from("acquired")
    );
    let waited = waiter.call_interruptible("lock.acquire", vec![V::Nil], &soon(200));
    assert!(
        matches!(waited, Err(ManagerError::Interrupted)),
        "{waited:?}"
    );
    holder.call("lock.release", vec![]).unwrap();
    assert_eq!(
        third.call("lock.acquire", vec![0.into()]).unwrap(),
        V::from("acquired")
    );
    // A wait that is answered before anyone asks to stop ends as any call.
    queue.call("queue.put", vec![8.into(), V::Nil]).unwrap();
    assert_eq!(
        queue
            .call_interruptible("queue.get", vec![V::Nil], &|| false)
            .unwrap(),
        V::Array(vec![8.into()])
    );
    // And the token goes on working after an interruption.
    assert_eq!(
        queue
            .call("queue.state", vec![])
            .unwrap()
            .as_array()
            .unwrap()[0],
        V::from(0)
    );
    manager.shutdown().unwrap();
}

#[test]
fn an_opaque_value_is_stored_byte_for_byte_and_never_read() {
    use multiproc::rmpv::Value as V;
    let manager = Manager::start().unwrap();
    let d = manager.create_token("dict", vec![]).unwrap();
    let opaque = V::Ext(3, b"\x80\x04 a pickle, say".to_vec());
    d.call("dict.set", vec!["p".into(), opaque.clone()])
        .unwrap();
    assert_eq!(d.call("dict.getitem", vec!["p".into()]).unwrap(), opaque);
    // It is no number, and a typed read says what it is.
    match d.call("dict.incr", vec!["p".into(), 1.into()]) {
        Err(ManagerError::Remote { code, .. }) => assert_eq!(code, ErrorCode::TypeError),
        other => panic!("{other:?}"),
    }
    let typed = manager.dict_named::<String, Vec<u8>>("typed").unwrap();
    let named = manager.named_token("typed", "dict", vec![]).unwrap();
    named.call("dict.set", vec!["p".into(), opaque]).unwrap();
    let read = typed.get("p");
    assert!(format!("{read:?}").contains("opaque value"), "{read:?}");
    manager.shutdown().unwrap();
}

#[test]
fn dicts_and_lists_iterate_and_print_as_rust_collections() {
    let manager = Manager::start().unwrap();
    let ages = manager.dict::<String, u32>().unwrap();
    for (name, age) in [("ann", 31), ("bob", 42)] {
        ages.insert(name.to_string(), age).unwrap();
    }
    // A snapshot at the first step: a key another process adds meanwhile is not seen.
    let mut entries = ages.iter();
    assert_eq!(entries.next().unwrap().unwrap(), ("ann".to_string(), 31));
    join(
        Process::spawn(ages.clone(), |ages: DictProxy<String, u32>| {
            ages.insert("cy", 7).unwrap();
        })
        .unwrap(),
    );
    let rest: Vec<_> = entries.map(Result::unwrap).collect();
    assert_eq!(rest, [("bob".to_string(), 42)]);
    assert_eq!((&ages).into_iter().count(), 3);
    assert_eq!(ages.to_string(), r#"{"ann": 31, "bob": 42, "cy": 7}"#);

    // A list is read a page (256 items) at a time: a change beyond the page read is seen.
    let items = manager.list_from(&(0..600).collect::<Vec<u32>>()).unwrap();
    let mut read = items.iter();
    assert_eq!(read.next().unwrap().unwrap(), 0);
    join(
        Process::spawn(items.clone(), |items: ListProxy<u32>| {
            items.set(1, 1000).unwrap(); // in the page read already: not seen
            items.set(300, 3000).unwrap(); // in the next page: seen
            items.push(600).unwrap(); // pushed before the last page is read: seen
        })
        .unwrap(),
    );
    let rest: Vec<u32> = read.map(Result::unwrap).collect();
    assert_eq!(rest.len(), 600);
    assert_eq!((rest[0], rest[299], rest[599]), (1, 3000, 600));
    assert_eq!(manager.list_from(&[1, 2]).unwrap().to_string(), "[1, 2]");
    let mut sum = 0;
    for item in &items {
        sum += item.unwrap();
    }
    assert_eq!(sum, (0..601).sum::<u32>() - 1 - 300 + 1000 + 3000);

    // A manager gone: the first step says so, and printing says so instead of failing.
    let printed = ages.clone();
    manager.shutdown().unwrap();
    let mut after = printed.iter();
    assert!(matches!(after.next(), Some(Err(_))));
    assert!(after.next().is_none());
    assert!(
        printed.to_string().starts_with("<the manager is gone"),
        "{printed}"
    );
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Tally {
    total: i64,
}

#[multiproc::shared]
impl Tally {
    pub fn add(&mut self, by: i64, times: u32) -> i64 {
        self.total += by * i64::from(times);
        self.total
    }

    pub fn check(&self, limit: i64) -> Result<i64, String> {
        if self.total > limit {
            return Err(format!("{} is over {limit}", self.total));
        }
        Ok(self.total)
    }

    // Not served: private.
    #[allow(dead_code)]
    fn reset(&mut self) {
        self.total = 0;
    }
}

#[test]
fn a_shared_impl_block_is_served_and_called_through_its_typed_proxy() {
    let manager = Manager::builder().register::<Tally>().start().unwrap();
    let tally = manager.create(&Tally { total: 0 }).unwrap();
    assert_eq!(tally.add(2, 3).unwrap(), 6);
    // From other processes, one call at a time: no update is lost.
    let children: Vec<_> = (0..4)
        .map(|_| {
            Process::spawn(tally.clone(), |tally: multiproc::ObjectProxy<Tally>| {
                for _ in 0..25 {
                    tally.add(1, 1).unwrap();
                }
            })
            .unwrap()
        })
        .collect();
    for child in children {
        join(child);
    }
    assert_eq!(tally.check(1000).unwrap(), 106);
    // A method's error fails the call, with its message; a private method is not served.
    match tally.check(10) {
        Err(ManagerError::Remote { code, message }) => {
            assert_eq!(code, ErrorCode::MethodFailed);
            assert_eq!(message, "106 is over 10");
        }
        other => panic!("{other:?}"),
    }
    match tally.call::<_, ()>("reset", &()) {
        Err(ManagerError::Remote { code, .. }) => assert_eq!(code, ErrorCode::NotExposed),
        other => panic!("{other:?}"),
    }
    manager.shutdown().unwrap();
}

#[test]
fn list_value_and_queue_items_are_taken_owned_borrowed_or_as_what_they_borrow_as() {
    let manager = Manager::start().unwrap();
    let words = manager.list::<String>().unwrap();
    words.push("b").unwrap();
    words.insert(0, "a").unwrap();
    words.set(1, "c").unwrap();
    words.push(String::from("d")).unwrap();
    words.extend(["e", "f"]).unwrap();
    assert_eq!(words.to_vec().unwrap(), ["a", "c", "d", "e", "f"]);
    assert!(words.contains("d").unwrap());
    assert_eq!(words.position("e").unwrap(), Some(3));
    words.remove_item("f").unwrap();
    let jobs = manager.queue::<String>().unwrap();
    jobs.put("first").unwrap();
    jobs.try_put("second").unwrap();
    assert_eq!(jobs.get().unwrap(), "first");
    // Owned, from a child; a Vec item from an array.
    let batches = manager.queue::<Vec<u32>>().unwrap();
    let total = manager.value(&0u64).unwrap();
    let child = Process::spawn(
        (batches.clone(), total.clone()),
        |(batches, total): (multiproc::QueueProxy<Vec<u32>>, multiproc::ValueProxy<u64>)| {
            batches.put([1, 2, 3]).unwrap();
            batches.put(vec![4]).unwrap();
            total.set(10).unwrap();
            assert_eq!(total.compare_exchange(10, 11).unwrap(), Ok(10));
        },
    )
    .unwrap();
    join(child);
    assert_eq!(batches.get().unwrap(), [1, 2, 3]);
    assert_eq!(batches.get().unwrap(), [4]);
    assert_eq!(total.get().unwrap(), 11);
    manager.shutdown().unwrap();
}
