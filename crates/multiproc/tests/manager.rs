//! The manager's data across processes: dicts (atomic updates, nesting, watching), namespaces,
//! lists, arrays, values, user types, named objects; over a Unix socket and TCP, started here or
//! standalone. The waiting objects are in `manager_sync.rs`, the faults in `manager_faults.rs`.

multiproc::test_support!();

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{DEADLINE, join, refused};
use multiproc::{
    Address, ConnectError, DictChange, DictProxy, ErrorCode, ListChange, ListProxy, Manager,
    ManagerError, NamespaceProxy, Process, ValueProxy,
};

#[test]
fn a_dict_does_what_a_dict_does() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<String, i64>().unwrap();
    let k = |s: &str| s.to_string();
    assert!(d.is_empty().unwrap());
    d.insert(k("a"), 1).unwrap();
    assert_eq!(d.get(k("a")).unwrap(), Some(1));
    assert_eq!(d.get(k("zz")).unwrap(), None);
    assert!(d.contains_key(k("a")).unwrap());
    assert_eq!(d.setdefault(k("a"), 5).unwrap(), 1);
    assert_eq!(d.setdefault(k("b"), 5).unwrap(), 5);
    d.update([(&k("c"), &3), (&k("d"), &4)]).unwrap();
    assert_eq!(
        d.get_many([&k("a"), &k("zz"), &k("d")]).unwrap(),
        [Some(1), None, Some(4)]
    );
    assert!(d.compare_and_swap(k("a"), Some(&1), &10).unwrap());
    assert!(!d.compare_and_swap(k("a"), Some(&1), &20).unwrap());
    assert!(d.compare_and_swap(k("new"), None, &7).unwrap());
    assert_eq!(d.incr(k("a"), 5i64).unwrap(), 15);
    assert_eq!(d.remove(k("b")).unwrap(), Some(5));
    assert_eq!(d.remove(k("b")).unwrap(), None);
    let mut keys = d.keys().unwrap();
    keys.sort();
    assert_eq!(keys, ["a", "c", "d", "new"]);
    assert_eq!(d.len().unwrap(), 4);
    let mut items = d.items().unwrap();
    items.sort();
    assert_eq!(items[0], (k("a"), 15));

    let words = manager.dict::<String, String>().unwrap();
    words.insert(k("w"), k("text")).unwrap();
    assert!(matches!(
        words.incr(k("w"), 1i64),
        Err(ManagerError::Remote { code, .. }) if code == ErrorCode::TypeError
    ));
}

#[test]
fn increments_from_many_processes_are_all_counted() {
    // Python's `d[k] += 1` from several processes loses updates; `incr` runs on the server.
    let manager = Manager::start().unwrap();
    let counts = manager.dict::<String, i64>().unwrap();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            Process::spawn(counts.clone(), |counts: DictProxy<String, i64>| {
                for _ in 0..500 {
                    counts.incr("n", 1i64).unwrap();
                }
            })
            .unwrap()
        })
        .collect();
    for w in workers {
        join(w);
    }
    assert_eq!(counts.get("n").unwrap(), Some(2000));
}

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
fn a_list_and_a_value_are_shared_with_children() {
    let manager = Manager::start().unwrap();
    let list = manager.list_from(&[1i64, 2, 3]).unwrap();
    let total = manager.value(&0i64).unwrap();
    join(
        Process::spawn(
            (list.clone(), total.clone()),
            |(list, total): (ListProxy<i64>, ValueProxy<i64>)| {
                list.push(4).unwrap();
                list.extend([5, 6]).unwrap();
                list.set(0, 10).unwrap();
                for item in list.to_vec().unwrap() {
                    total.fetch_add(item).unwrap();
                }
            },
        )
        .unwrap(),
    );
    assert_eq!(list.to_vec().unwrap(), [10, 2, 3, 4, 5, 6]);
    assert_eq!(total.get().unwrap(), 30);
    assert_eq!(list.get(1).unwrap(), Some(2));
    assert_eq!(list.get(99).unwrap(), None, "past the end, as Vec::get");
    assert!(matches!(
        list.set(99, 0),
        Err(ManagerError::Remote { code, .. }) if code == ErrorCode::IndexOutOfRange
    ));
    assert_eq!(list.incr(2, 100i64).unwrap(), 103);
    list.insert(0, -1).unwrap();
    assert_eq!(list.remove(0).unwrap(), -1);
    assert_eq!(list.pop().unwrap(), Some(6));
    assert_eq!(list.len().unwrap(), 5);
    assert_eq!(total.compare_exchange(&30, &31).unwrap(), Ok(30));
    assert_eq!(total.compare_exchange(&30, &32).unwrap(), Err(31));
    assert_eq!(total.fetch_add(1).unwrap(), 31);
    assert_eq!(total.get().unwrap(), 32);
    total.set(7).unwrap();
    assert_eq!(total.get().unwrap(), 7);
}

/// In a child: appends `items` to the list.
fn append_all((list, items): (ListProxy<String>, Vec<String>)) {
    list.extend(items.iter()).unwrap();
}

#[test]
fn a_list_finds_counts_and_tells_membership_of_items_another_process_added() {
    let manager = Manager::start().unwrap();
    let list = manager.list::<String>().unwrap();
    let items: Vec<String> = ["b", "a", "b", "c", "b"].map(String::from).to_vec();
    join(Process::spawn((list.clone(), items), append_all).unwrap());
    let s = |x: &str| x.to_string();
    assert!(list.contains(s("c")).unwrap());
    assert!(!list.contains(s("z")).unwrap());
    assert_eq!(list.count(s("b")).unwrap(), 3);
    assert_eq!(list.count(s("z")).unwrap(), 0);
    assert_eq!(list.position(s("a")).unwrap(), Some(1));
    assert_eq!(list.position(s("b")).unwrap(), Some(0));
    assert_eq!(list.position(s("z")).unwrap(), None);

    // The same on an array.
    let array = manager.array(&[5u32, 7, 5]).unwrap();
    assert_eq!(array.count(5).unwrap(), 2);
    assert_eq!(array.position(7).unwrap(), Some(1));
    // An item of another type is another item: seen as text, the number 1 is not "1".
    let numbers = manager.list_named::<i64>("numbers").unwrap();
    numbers.push(1).unwrap();
    let as_text = manager.list_named::<String>("numbers").unwrap();
    assert!(numbers.contains(1).unwrap());
    assert!(!as_text.contains(s("1")).unwrap());
    assert_eq!(as_text.position(s("1")).unwrap(), None);
}

#[test]
fn an_array_keeps_its_length() {
    let manager = Manager::start().unwrap();
    let array = manager.array(&[0i32; 4]).unwrap();
    join(
        Process::spawn(array.clone(), |a: multiproc::ArrayProxy<i32>| {
            a.set(3, 9).unwrap();
            a.incr(0, 2).unwrap();
        })
        .unwrap(),
    );
    assert_eq!(array.to_vec().unwrap(), [2, 0, 0, 9]);
    assert_eq!(array.len().unwrap(), 4);
    assert!(matches!(
        array.set(4, 1),
        Err(ManagerError::Remote { code, .. }) if code == ErrorCode::IndexOutOfRange
    ));
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
fn a_watcher_sees_every_change_made_by_other_processes_in_order() {
    let manager = Manager::start().unwrap();
    let list = manager.list_from(&[0u32]).unwrap();
    list.push(1).unwrap(); // before the watch: not seen
    let mut watcher = list.watch().unwrap();
    assert!(matches!(
        watcher.next_timeout(Duration::from_millis(20)),
        Err(ManagerError::Timeout)
    ));
    join(
        Process::spawn(list.clone(), |list: ListProxy<u32>| {
            list.push(2).unwrap();
            list.extend([3, 4]).unwrap();
            list.set(0, 9).unwrap();
        })
        .unwrap(),
    );
    let mut seen = Vec::new();
    while let Ok(change) = watcher.next_timeout(Duration::from_millis(200)) {
        seen.push(change);
    }
    assert_eq!(
        seen,
        [
            multiproc::ListChange::Appended(2),
            multiproc::ListChange::Appended(3),
            multiproc::ListChange::Appended(4),
            multiproc::ListChange::Set(0, 9),
        ]
    );
}

#[test]
fn a_dict_has_pythons_other_methods_with_typed_errors() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u32, String>().unwrap();
    d.update([(&1, &"one".to_string()), (&2, &"two".to_string())])
        .unwrap();
    let mut values = d.values().unwrap();
    values.sort();
    assert_eq!(values, ["one", "two"]);
    assert_eq!(d.pop(1).unwrap(), "one");
    assert!(matches!(
        d.pop(1),
        Err(ManagerError::Remote {
            code: ErrorCode::KeyMissing,
            ..
        })
    ));
    d.clear().unwrap();
    assert!(d.is_empty().unwrap());
}

/// In a child: inserts `keys` in that order, sets the first again, and pops the last.
fn insert_in_order((d, keys): (DictProxy<String, u32>, Vec<String>)) -> (String, u32) {
    for (i, key) in keys.iter().enumerate() {
        d.insert(key, i as u32).unwrap();
    }
    d.insert(&keys[0], 100).unwrap(); // keeps its place
    d.pop_last().unwrap()
}

#[test]
fn a_dict_keeps_insertion_order_across_processes_and_pops_the_last_inserted() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<String, u32>().unwrap();
    let keys: Vec<String> = ["m", "c", "x", "a", "q"].map(String::from).to_vec();
    let child = Process::spawn((d.clone(), keys.clone()), insert_in_order).unwrap();
    assert_eq!(join(child), ("q".to_string(), 4));
    // Here, in another process: the child's order, which no hash or sort gives.
    assert_eq!(d.keys().unwrap(), ["m", "c", "x", "a"]);
    assert_eq!(d.values().unwrap(), [100, 1, 2, 3]);
    assert_eq!(d.items().unwrap()[0], ("m".to_string(), 100));
    // Removed and set again: to the end.
    d.remove("c").unwrap();
    d.insert("c", 7).unwrap();
    assert_eq!(d.keys().unwrap(), ["m", "x", "a", "c"]);
    for expected in ["c", "a", "x", "m"] {
        assert_eq!(d.pop_last().unwrap().0, expected);
    }
    assert!(matches!(
        d.pop_last(),
        Err(ManagerError::Remote {
            code: ErrorCode::KeyMissing,
            ..
        })
    ));
    // A watcher sees a popped entry as removed.
    let mut changes = d.watch().unwrap();
    d.insert("z", 1).unwrap();
    assert_eq!(d.pop_last().unwrap(), ("z".to_string(), 1));
    assert_eq!(
        changes.next_timeout(DEADLINE).unwrap(),
        DictChange::Set("z".to_string(), 1)
    );
    assert_eq!(
        changes.next_timeout(DEADLINE).unwrap(),
        DictChange::Removed("z".to_string())
    );
}

/// In a child: sets `key` once.
fn set_once((d, key): (DictProxy<String, u32>, String)) {
    d.insert(&key, 1).unwrap();
}

#[test]
fn a_dicts_version_tells_a_reader_whether_another_process_changed_it() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<String, u32>().unwrap();
    let v0 = d.version().unwrap();
    assert_eq!(d.keys().unwrap().len(), 0);
    assert_eq!(d.version().unwrap(), v0, "reading changes nothing");
    join(Process::spawn((d.clone(), "k".to_string()), set_once).unwrap());
    let v1 = d.version().unwrap();
    assert!(v1 > v0, "the child's change shows");
    // A failed operation changes nothing, and says so by the version too.
    assert!(d.pop("absent").is_err());
    assert!(!d.compare_and_swap("k", Some(&9), &2).unwrap());
    assert_eq!(d.version().unwrap(), v1);
    d.pop_last().unwrap();
    d.clear().unwrap();
    assert_eq!(d.version().unwrap(), v1 + 2);
}

#[test]
fn a_namespace_shares_attributes_of_any_type() {
    let manager = Manager::start().unwrap();
    let ns = manager.namespace().unwrap();
    ns.set("epochs", 3u32).unwrap();
    join(
        Process::spawn(ns.clone(), |ns: NamespaceProxy| {
            let epochs: u32 = ns.get("epochs").unwrap();
            ns.set("model", format!("trained for {epochs} epochs"))
                .unwrap();
            ns.set("_private", true).unwrap(); // shared too, unlike Python
        })
        .unwrap(),
    );
    assert_eq!(ns.get::<String>("model").unwrap(), "trained for 3 epochs");
    assert!(ns.get::<bool>("_private").unwrap());
    assert!(ns.contains("epochs").unwrap());
    ns.remove("epochs").unwrap();
    assert!(matches!(
        ns.get::<u32>("epochs"),
        Err(ManagerError::Remote {
            code: ErrorCode::KeyMissing,
            ..
        })
    ));
    let mut names = ns.names().unwrap();
    names.sort();
    assert_eq!(names, ["_private", "model"]);
    // Mistyped: a value of another type is a conversion error, not a panic.
    assert!(matches!(
        ns.get::<u32>("model"),
        Err(ManagerError::Value(_))
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
fn nested_lists_and_the_nesting_limit() {
    let manager = Manager::start().unwrap();
    let jobs = manager.dict::<String, Vec<u32>>().unwrap();
    let log = jobs.list_in::<u32>(&"done".to_string()).unwrap();
    let workers: Vec<_> = (0..3)
        .map(|i| {
            Process::spawn(
                (jobs.clone(), i),
                |(jobs, i): (DictProxy<String, Vec<u32>>, u32)| {
                    jobs.list_in::<u32>(&"done".to_string())
                        .unwrap()
                        .push(i)
                        .unwrap();
                },
            )
            .unwrap()
        })
        .collect();
    for w in workers {
        join(w);
    }
    let mut done = jobs.get("done").unwrap().unwrap();
    done.sort();
    assert_eq!(done, [0, 1, 2]);
    assert_eq!(log.len().unwrap(), 3);
    // 32 levels deep at most.
    let mut level = manager.dict::<u8, u8>().unwrap();
    let mut refused = None;
    for depth in 1..=40 {
        match level.dict_in::<u8, u8>(&0) {
            Ok(next) => level = next,
            Err(e) => {
                refused = Some((depth, e));
                break;
            }
        }
    }
    assert!(matches!(
        refused,
        Some((
            33,
            ManagerError::Remote {
                code: ErrorCode::NestingTooDeep,
                ..
            }
        ))
    ));
}

#[test]
fn a_dict_watcher_sees_every_kind_of_change_in_order() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<String, i64>().unwrap();
    d.insert("before", 0).unwrap(); // not seen: before the watch
    let mut watcher = d.watch().unwrap();
    assert!(watcher.try_next().unwrap_err().is_timeout());
    join(
        Process::spawn(d.clone(), |d: DictProxy<String, i64>| {
            let k = |s: &str| s.to_string();
            d.insert(k("a"), 1).unwrap();
            d.incr(k("a"), 2i64).unwrap();
            d.setdefault(k("a"), 100).unwrap(); // present: no change
            d.compare_and_swap(k("a"), Some(&3), &4).unwrap();
            d.update([(&k("b"), &5)]).unwrap();
            d.remove(k("b")).unwrap();
            d.dict_in::<u8, u8>(&k("n")).unwrap();
            d.clear().unwrap();
        })
        .unwrap(),
    );
    let k = |s: &str| s.to_string();
    let seen: Vec<_> = (0..7)
        .map(|_| watcher.next_timeout(DEADLINE).expect("a change"))
        .collect();
    assert_eq!(
        seen,
        [
            DictChange::Set(k("a"), 1),
            DictChange::Set(k("a"), 3),
            DictChange::Set(k("a"), 4),
            DictChange::Set(k("b"), 5),
            DictChange::Removed(k("b")),
            DictChange::Nested(k("n")),
            DictChange::Cleared,
        ]
    );
    assert!(watcher.try_next().unwrap_err().is_timeout());
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

#[test]
fn list_ranges_clamp_like_python_slices() {
    let manager = Manager::start().unwrap();
    let list = manager.list_from(&[0u8, 1, 2, 3, 4]).unwrap();
    assert_eq!(list.range(1..3).unwrap(), [1, 2]);
    assert_eq!(list.range(3..).unwrap(), [3, 4]);
    assert_eq!(list.range(..=1).unwrap(), [0, 1]);
    assert_eq!(list.range(4..99).unwrap(), [4]);
    assert!(list.range(9..).unwrap().is_empty());
    let array = manager.array(&[5u8, 6, 7]).unwrap();
    assert_eq!(array.range(1..).unwrap(), [6, 7]);
    let named = manager.value_named("v", &1u8).unwrap();
    assert_eq!(manager.value_named("v", &9u8).unwrap().get().unwrap(), 1);
    named.set(2).unwrap();
    assert_eq!(
        manager.value_named::<u8>("v", &0).unwrap().get().unwrap(),
        2
    );
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

#[test]
fn a_forked_child_does_not_use_the_connection_its_parent_shares() {
    let manager = Manager::start().unwrap();
    let counts = manager.dict::<String, u32>().unwrap();
    // A child that shares a connection, then forks a grandchild given the same dict: both count
    // at once. On one socket, their requests and answers would cross.
    let total = join(
        Process::spawn(counts.clone(), |counts: DictProxy<String, u32>| {
            counts.incr("warm", 1).unwrap();
            let grandchild = Process::builder()
                .start_method(multiproc::StartMethod::Fork)
                .spawn(counts.clone(), |counts: DictProxy<String, u32>| {
                    for _ in 0..300 {
                        counts.incr("grandchild", 1).unwrap();
                    }
                })
                .unwrap();
            for _ in 0..300 {
                counts.incr("child", 1).unwrap();
            }
            grandchild.join().unwrap();
            counts.get("grandchild").unwrap().unwrap() + counts.get("child").unwrap().unwrap()
        })
        .unwrap(),
    );
    assert_eq!(total, 600);
}

/// Edits the shared list as a Python program would, in another process.
fn edits_like_python(l: ListProxy<i64>) -> Vec<i64> {
    l.replace_range(1..3, [7, 7, 7]).unwrap(); // l[1:3] = [7, 7, 7]
    l.remove_item(7).unwrap(); // l.remove(7)
    l.repeat(2).unwrap(); // l *= 2
    l.sort_descending().unwrap(); // l.sort(reverse=True)
    l.remove_range(..1).unwrap(); // del l[:1]
    l.to_vec().unwrap()
}

#[test]
fn a_list_edits_as_a_python_list_does_across_processes() {
    let manager = Manager::start().unwrap();
    let l = manager.list_from(&[5i64, 1, 2, 3]).unwrap();
    let edited = join(Process::spawn(l.clone(), edits_like_python).unwrap());
    // CPython: l = [5, 1, 2, 3]; l[1:3] = [7, 7, 7]; l.remove(7); l *= 2;
    // l.sort(reverse=True); del l[:1]  ->  [7, 7, 7, 5, 5, 3, 3]
    assert_eq!(edited, [7, 7, 7, 5, 5, 3, 3]);
    assert_eq!(l.to_vec().unwrap(), edited);
    l.reverse().unwrap();
    assert_eq!(l.to_vec().unwrap(), [3, 3, 5, 5, 7, 7, 7]);
    assert!(matches!(
        l.remove_item(42),
        Err(ManagerError::Remote {
            code: ErrorCode::ItemMissing,
            ..
        })
    ));
    let words = manager.list_from(&["b".to_string()]).unwrap();
    let mixed = manager.list_named::<Mixed>("mixed").unwrap();
    mixed.push(Mixed::N(1)).unwrap();
    mixed.push(Mixed::S("a".into())).unwrap();
    assert!(matches!(
        mixed.sort(),
        Err(ManagerError::Remote {
            code: ErrorCode::TypeError,
            ..
        })
    ));
    words.push("a").unwrap();
    words.sort().unwrap();
    assert_eq!(words.to_vec().unwrap(), ["a", "b"]);
    let a = manager.array(&[3, 1, 2]).unwrap();
    a.sort().unwrap();
    a.replace_range(0..2, [9, 9]).unwrap();
    assert_eq!(a.to_vec().unwrap(), [9, 9, 3]);
    assert!(matches!(
        a.replace_range(0..2, [1]),
        Err(ManagerError::Remote {
            code: ErrorCode::BadArguments,
            ..
        })
    ));
}

/// A number or a string: untagged, so a list of them is a Python list of mixed types.
#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
#[serde(untagged)]
enum Mixed {
    N(i64),
    S(String),
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

#[test]
fn keys_and_values_are_taken_owned_borrowed_or_as_what_they_borrow_as() {
    let manager = Manager::start().unwrap();
    let names = manager.dict::<String, String>().unwrap();
    names.insert("ann", "Ann").unwrap();
    assert_eq!(names.get("ann").unwrap().as_deref(), Some("Ann"));
    assert!(names.contains_key("ann").unwrap());
    assert_eq!(names.setdefault("bob", "Bob").unwrap(), "Bob");
    assert!(
        names
            .compare_and_swap("bob", Some("Bob"), "Robert")
            .unwrap()
    );
    // The same entry as the owned key's: a type and what it borrows as encode alike.
    assert_eq!(names.get("bob").unwrap().as_deref(), Some("Robert"));
    assert_eq!(names.remove("ann").unwrap().as_deref(), Some("Ann"));
    assert_eq!(names.pop("bob").unwrap(), "Robert");
    let bytes = manager.dict::<String, Vec<u8>>().unwrap();
    bytes.insert("k", &[1u8, 2][..]).unwrap();
    assert_eq!(bytes.get("k").unwrap(), Some(vec![1, 2]));
    let counts = manager.dict::<String, i64>().unwrap();
    assert_eq!(counts.incr("hits", 2).unwrap(), 2);
    // Owned, in a child: what it writes with owned keys and values, the parent reads with `&str`
    // and with references, and the batch forms take pairs and keys as they come.
    let squares = manager.dict::<u32, u64>().unwrap();
    let child = Process::spawn(
        (names.clone(), squares.clone()),
        |(names, squares): (DictProxy<String, String>, DictProxy<u32, u64>)| {
            let owned = String::from("cy");
            names.insert(owned, String::from("Cy")).unwrap();
            for i in 0..3 {
                squares.insert(i, u64::from(i * i)).unwrap();
            }
            names.update([("dan", "Dan"), ("eve", "Eve")]).unwrap();
        },
    )
    .unwrap();
    join(child);
    assert_eq!(names.get("cy").unwrap().as_deref(), Some("Cy"));
    assert_eq!(squares.get(2).unwrap(), Some(4));
    assert_eq!(squares.get(2).unwrap(), Some(4));
    let more = std::collections::HashMap::from([("fay".to_string(), "Fay".to_string())]);
    names.update(&more).unwrap();
    assert_eq!(
        names.get_many(["dan", "fay", "zed"]).unwrap(),
        [Some("Dan".into()), Some("Fay".into()), None]
    );
    assert!(squares.compare_and_swap(7, None, 49).unwrap());
    assert_eq!(names.len().unwrap(), 4);
    manager.shutdown().unwrap();
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
