//! The data objects' suite, one source for every backend: dicts, namespaces, lists, arrays and
//! values across processes (and their watchers), as `manager.rs` runs it on a manager process and `redis.rs` on a real
//! redis-server. The file that includes it gives `backend::manager()`.

use std::time::Duration;

use multiproc::{
    DictProxy, ErrorCode, ListProxy, ManagerError, NamespaceProxy, Process, ValueProxy,
};

use super::backend::manager;
use crate::common::{DEADLINE, join};

#[test]
fn a_dict_does_what_a_dict_does() {
    let manager = manager();
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
    let manager = manager();
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
fn a_list_and_a_value_are_shared_with_children() {
    let manager = manager();
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
    let manager = manager();
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
    let manager = manager();
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
fn a_dict_has_pythons_other_methods_with_typed_errors() {
    let manager = manager();
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
    let manager = manager();
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
}

/// In a child: sets `key` once.
fn set_once((d, key): (DictProxy<String, u32>, String)) {
    d.insert(&key, 1).unwrap();
}

#[test]
fn a_dicts_version_tells_a_reader_whether_another_process_changed_it() {
    let manager = manager();
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
    let manager = manager();
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
fn list_ranges_clamp_like_python_slices() {
    let manager = manager();
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
    let manager = manager();
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

#[test]
fn keys_and_values_are_taken_owned_borrowed_or_as_what_they_borrow_as() {
    let manager = manager();
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

#[test]
fn a_forked_child_does_not_use_the_connection_its_parent_shares() {
    let manager = manager();
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

#[test]
fn a_watcher_sees_every_change_made_by_other_processes_in_order() {
    let manager = manager();
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
fn a_dict_watcher_sees_a_popped_entry_as_removed() {
    let manager = manager();
    let d = manager.dict::<String, u32>().unwrap();
    let mut changes = d.watch().unwrap();
    d.insert("z", 1).unwrap();
    assert_eq!(d.pop_last().unwrap(), ("z".to_string(), 1));
    assert_eq!(
        changes.next_timeout(DEADLINE).unwrap(),
        multiproc::DictChange::Set("z".to_string(), 1)
    );
    assert_eq!(
        changes.next_timeout(DEADLINE).unwrap(),
        multiproc::DictChange::Removed("z".to_string())
    );
}

#[test]
fn nested_lists_and_the_nesting_limit() {
    let manager = manager();
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
    let manager = manager();
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
            multiproc::DictChange::Set(k("a"), 1),
            multiproc::DictChange::Set(k("a"), 3),
            multiproc::DictChange::Set(k("a"), 4),
            multiproc::DictChange::Set(k("b"), 5),
            multiproc::DictChange::Removed(k("b")),
            multiproc::DictChange::Nested(k("n")),
            multiproc::DictChange::Cleared,
        ]
    );
    assert!(watcher.try_next().unwrap_err().is_timeout());
}
