//! The manager's first slice: a server process, shared dicts reached through proxies from many
//! processes, atomic updates, named objects, a wrong key, a dead manager, and hostile frames
//! (sent by a client that speaks the documented protocol by hand).

multiproc::test_support!();

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{DEADLINE, sigkill};
use hmac::{Hmac, Mac};
use multiproc::{
    Address, ConnectError, DictProxy, ErrorCode, ListProxy, LockProxy, Manager, ManagerError,
    Process, QueueProxy, ValueProxy,
};
use sha2::Sha256;

fn join<R: serde::de::DeserializeOwned>(mut p: Process<R>) -> R {
    p.join_timeout(DEADLINE).expect("child ran to the end")
}

#[test]
fn a_dict_does_what_a_dict_does() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<String, i64>().unwrap();
    let k = |s: &str| s.to_string();
    assert!(d.is_empty().unwrap());
    d.insert(&k("a"), &1).unwrap();
    assert_eq!(d.get(&k("a")).unwrap(), Some(1));
    assert_eq!(d.get(&k("zz")).unwrap(), None);
    assert!(d.contains_key(&k("a")).unwrap());
    assert_eq!(d.setdefault(&k("a"), &5).unwrap(), 1);
    assert_eq!(d.setdefault(&k("b"), &5).unwrap(), 5);
    d.update([(&k("c"), &3), (&k("d"), &4)]).unwrap();
    assert_eq!(
        d.get_many([&k("a"), &k("zz"), &k("d")]).unwrap(),
        [Some(1), None, Some(4)]
    );
    assert!(d.compare_and_swap(&k("a"), Some(&1), &10).unwrap());
    assert!(!d.compare_and_swap(&k("a"), Some(&1), &20).unwrap());
    assert!(d.compare_and_swap(&k("new"), None, &7).unwrap());
    assert_eq!(d.incr(&k("a"), 5i64).unwrap(), 15);
    assert_eq!(d.remove(&k("b")).unwrap(), Some(5));
    assert_eq!(d.remove(&k("b")).unwrap(), None);
    let mut keys = d.keys().unwrap();
    keys.sort();
    assert_eq!(keys, ["a", "c", "d", "new"]);
    assert_eq!(d.len().unwrap(), 4);
    let mut items = d.items().unwrap();
    items.sort();
    assert_eq!(items[0], (k("a"), 15));

    let words = manager.dict::<String, String>().unwrap();
    words.insert(&k("w"), &k("text")).unwrap();
    assert!(matches!(
        words.incr(&k("w"), 1i64),
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
                    counts.incr(&"n".to_string(), 1i64).unwrap();
                }
            })
            .unwrap()
        })
        .collect();
    for w in workers {
        join(w);
    }
    assert_eq!(counts.get(&"n".to_string()).unwrap(), Some(2000));
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
            results.insert(&1, &"from the child".to_string()).unwrap();
        })
        .unwrap(),
    );
    let results = manager.dict_named::<u32, String>("results").unwrap();
    assert_eq!(results.get(&1).unwrap().as_deref(), Some("from the child"));
}

#[test]
fn a_wrong_key_is_refused() {
    let manager = Manager::start().unwrap();
    assert!(matches!(
        Manager::connect(manager.address().clone(), b"not the key"),
        Err(ManagerError::Connect(ConnectError::AuthFailed))
    ));
}

#[test]
fn a_dead_manager_is_gone_at_once_for_every_call() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    d.insert(&1, &1).unwrap();
    let pid = manager.pid().expect("started here");
    sigkill(pid);
    let started = Instant::now();
    for _ in 0..3 {
        assert!(matches!(d.get(&1), Err(ManagerError::Gone { .. })));
    }
    assert!(started.elapsed() < DEADLINE);
}

/// A client speaking the protocol by hand, as docs/manager-protocol.md describes it.
struct RawClient(UnixStream);

impl RawClient {
    fn connect(manager: &Manager) -> RawClient {
        let Address::Unix(path) = manager.address() else {
            panic!("a Unix socket")
        };
        let mut stream = UnixStream::connect(path).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut hello = [0u8; 40];
        stream.read_exact(&mut hello).unwrap();
        assert_eq!(&hello[..8], b"MPAUTH01");
        let client_nonce = [7u8; 32];
        let mut mac = Hmac::<Sha256>::new_from_slice(manager.authkey()).unwrap();
        mac.update(b"multiproc-auth-v1 client");
        mac.update(&hello[8..]);
        mac.update(&client_nonce);
        let proof = mac.finalize().into_bytes();
        stream
            .write_all(&[&b"MPAUTH01"[..], &client_nonce, &proof].concat())
            .unwrap();
        let mut reply = [0u8; 40];
        stream.read_exact(&mut reply).unwrap();
        assert_eq!(&reply[..8], b"MPAUTHOK");
        RawClient(stream)
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).unwrap();
    }

    fn frame(payload: &[u8]) -> Vec<u8> {
        [&b"MPM1"[..], &(payload.len() as u32).to_be_bytes(), payload].concat()
    }

    /// The next response as a MessagePack value, or None when the server closed.
    fn response(&mut self) -> Option<rmpv::Value> {
        let mut header = [0u8; 8];
        if self.0.read_exact(&mut header).is_err() {
            return None;
        }
        assert_eq!(&header[..4], b"MPM1");
        let len = u32::from_be_bytes(header[4..].try_into().unwrap()) as usize;
        let mut payload = vec![0; len];
        self.0.read_exact(&mut payload).unwrap();
        Some(rmpv::decode::read_value(&mut &payload[..]).unwrap())
    }

    fn closed(&mut self) -> bool {
        let mut byte = [0u8];
        matches!(self.0.read(&mut byte), Ok(0) | Err(_))
    }
}

fn request(id: u64, op: &str, object: u64, args: Vec<rmpv::Value>) -> Vec<u8> {
    let value = rmpv::Value::Array(vec![
        id.into(),
        op.into(),
        object.into(),
        rmpv::Value::Array(args),
    ]);
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &value).unwrap();
    RawClient::frame(&bytes)
}

/// The error code of a response `[id, {"Err": [code, message]}]`.
fn error_code(response: &rmpv::Value) -> Option<String> {
    let result = &response.as_array()?[1];
    let (tag, body) = result.as_map()?.first()?;
    (tag.as_str()? == "Err").then(|| body.as_array()?[0].as_str().map(str::to_owned))?
}

#[test]
fn hostile_frames_get_typed_errors_and_nothing_else() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    d.insert(&1, &1).unwrap();

    // A well-formed client works, and its unknown object and operation are typed errors.
    let mut raw = RawClient::connect(&manager);
    raw.send_raw(&request(1, "ping", 0, vec![]));
    assert_eq!(
        raw.response().unwrap().as_array().unwrap()[0].as_u64(),
        Some(1)
    );
    raw.send_raw(&request(2, "dict.get", 999, vec![1.into()]));
    assert_eq!(
        error_code(&raw.response().unwrap()).as_deref(),
        Some("UnknownObject")
    );
    raw.send_raw(&request(3, "dict.exec", 1, vec![]));
    assert_eq!(
        error_code(&raw.response().unwrap()).as_deref(),
        Some("NotExposed")
    );
    // Nesting 100 000 levels deep: a decode error, no stack overflow.
    let mut deep = vec![0x91u8; 100_000];
    deep.push(0xc0);
    raw.send_raw(&RawClient::frame(&deep));
    assert_eq!(
        error_code(&raw.response().unwrap()).as_deref(),
        Some("DecodeError")
    );
    // A frame claiming 4 GiB: refused before any allocation, then the connection closes.
    raw.send_raw(&[&b"MPM1"[..], &u32::MAX.to_be_bytes()].concat());
    assert_eq!(
        error_code(&raw.response().unwrap()).as_deref(),
        Some("FrameTooLarge")
    );
    assert!(raw.closed());

    // Bad magic (an HTTP request after the handshake): closed at once.
    let mut http = RawClient::connect(&manager);
    http.send_raw(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(http.response().is_none());

    // The server goes on serving everyone else.
    assert_eq!(d.get(&1).unwrap(), Some(1));
    let _ = Duration::ZERO;
}

#[test]
fn a_manager_lock_excludes_across_processes() {
    let manager = Manager::start().unwrap();
    let lock = manager.lock().unwrap();
    let d = manager.dict::<String, i64>().unwrap();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            Process::spawn(
                (lock.clone(), d.clone()),
                |(lock, d): (LockProxy, DictProxy<String, i64>)| {
                    let key = "n".to_string();
                    for _ in 0..100 {
                        let _held = lock.acquire().unwrap();
                        let n = d.get(&key).unwrap().unwrap_or(0);
                        d.insert(&key, &(n + 1)).unwrap(); // read then write, safe under the lock
                    }
                },
            )
            .unwrap()
        })
        .collect();
    for w in workers {
        join(w);
    }
    assert_eq!(d.get(&"n".to_string()).unwrap(), Some(400));
    let held = lock.acquire().unwrap();
    let other = lock.clone();
    assert!(other.try_acquire().unwrap().is_none());
    assert!(
        other
            .acquire_timeout(Duration::from_millis(50))
            .unwrap()
            .is_none()
    );
    drop(held);
    assert!(other.try_acquire().unwrap().is_some());
}

#[test]
fn a_dead_holders_manager_lock_is_released_and_the_waiter_told() {
    let manager = Manager::start().unwrap();
    let lock = manager.lock().unwrap();
    let taken = multiproc::Queue::<u32>::new().unwrap();
    let mut holder = Process::spawn(
        (lock.clone(), taken.clone()),
        |(lock, taken): (LockProxy, multiproc::Queue<u32>)| -> () {
            let _held = lock.acquire().unwrap();
            taken.put(&std::process::id()).unwrap();
            common::park_forever()
        },
    )
    .unwrap();
    taken.get_timeout(DEADLINE).unwrap();
    // A waiter in another process, blocked in acquire when the holder dies.
    let waiter = Process::spawn(lock.clone(), |lock: LockProxy| {
        lock.acquire().unwrap().owner_died()
    })
    .unwrap();
    sigkill(holder.pid());
    let _ = holder.join_timeout(DEADLINE);
    assert!(
        join(waiter),
        "the waiter took the lock and was told its holder died"
    );
    // Released again by the waiter: a clean take now.
    let guard = lock.acquire_timeout(DEADLINE).unwrap().expect("free");
    assert!(!guard.owner_died());
}

#[test]
fn a_manager_queue_carries_items_between_processes_with_bounds_and_timeouts() {
    let manager = Manager::start().unwrap();
    let q = manager.queue::<String>().unwrap();
    let producer = Process::spawn(q.clone(), |q: QueueProxy<String>| {
        for i in 0..50 {
            q.put(&format!("item {i}")).unwrap();
        }
    })
    .unwrap();
    for i in 0..50 {
        assert_eq!(q.get().unwrap(), format!("item {i}"));
    }
    join(producer);
    assert!(q.is_empty().unwrap());
    let started = Instant::now();
    assert_eq!(q.get_timeout(Duration::from_millis(50)).unwrap(), None);
    assert!(started.elapsed() >= Duration::from_millis(50));

    let bounded = manager.queue_bounded::<u32>(1).unwrap();
    bounded.put(&1).unwrap();
    assert!(!bounded.put_timeout(&2, Duration::from_millis(50)).unwrap());
    // A getter in another process makes room.
    let getter = Process::spawn(bounded.clone(), |q: QueueProxy<u32>| q.get().unwrap()).unwrap();
    assert!(bounded.put_timeout(&2, DEADLINE).unwrap());
    assert_eq!(join(getter), 1);
    assert_eq!(bounded.len().unwrap(), 1);
}

#[test]
fn a_list_and_a_value_are_shared_with_children() {
    let manager = Manager::start().unwrap();
    let list = manager.list(&[1i64, 2, 3]).unwrap();
    let total = manager.value(&0i64).unwrap();
    join(
        Process::spawn(
            (list.clone(), total.clone()),
            |(list, total): (ListProxy<i64>, ValueProxy<i64>)| {
                list.push(&4).unwrap();
                list.extend(&[5, 6]).unwrap();
                list.set(0, &10).unwrap();
                for item in list.to_vec().unwrap() {
                    total.incr(item).unwrap();
                }
            },
        )
        .unwrap(),
    );
    assert_eq!(list.to_vec().unwrap(), [10, 2, 3, 4, 5, 6]);
    assert_eq!(total.get().unwrap(), 30);
    assert_eq!(list.get(1).unwrap(), 2);
    assert!(matches!(
        list.get(99),
        Err(ManagerError::Remote { code, .. }) if code == ErrorCode::IndexOutOfRange
    ));
    assert_eq!(list.incr(2, 100i64).unwrap(), 103);
    list.insert(0, &-1).unwrap();
    assert_eq!(list.remove(0).unwrap(), -1);
    assert_eq!(list.pop().unwrap(), Some(6));
    assert_eq!(list.len().unwrap(), 5);
    assert!(total.compare_and_swap(&30, &31).unwrap());
    assert!(!total.compare_and_swap(&30, &32).unwrap());
    total.set(&7).unwrap();
    assert_eq!(total.get().unwrap(), 7);
}

#[test]
fn an_array_keeps_its_length() {
    let manager = Manager::start().unwrap();
    let array = manager.array(&[0i32; 4]).unwrap();
    join(
        Process::spawn(array.clone(), |a: multiproc::ArrayProxy<i32>| {
            a.set(3, &9).unwrap();
            a.incr(0, 2).unwrap();
        })
        .unwrap(),
    );
    assert_eq!(array.to_vec().unwrap(), [2, 0, 0, 9]);
    assert_eq!(array.len().unwrap(), 4);
    assert!(matches!(
        array.set(4, &1),
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
            d.incr(&"n".to_string(), 5u32).unwrap();
        })
        .unwrap(),
    );
    assert_eq!(d.get(&"n".to_string()).unwrap(), Some(5));
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
    manager.dict::<u8, u8>().unwrap().insert(&1, &2).unwrap();
    manager.shutdown().unwrap();
    assert!(server.join_timeout(DEADLINE).is_ok(), "the server exited");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_truncated_frame_is_dropped_with_its_connection_and_applies_nothing() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    // Fault row 6: a set request cut short, then the end of the stream.
    let mut raw = RawClient::connect(&manager);
    let whole = request(1, "dict.set", 1, vec![5.into(), 5.into()]);
    raw.send_raw(&whole[..whole.len() - 3]);
    raw.0.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(raw.response().is_none(), "no answer, the connection closed");
    assert_eq!(d.get(&5).unwrap(), None, "nothing applied");
    // Fault row 7: a frame cut short, then silence: closed after the frame timeout.
    let mut silent = RawClient::connect(&manager);
    silent.send_raw(&whole[..10]);
    let started = Instant::now();
    assert!(silent.response().is_none(), "closed, not answered");
    assert!(started.elapsed() < DEADLINE);
    // Everyone else is served all along.
    assert_eq!(d.len().unwrap(), 0);
}

#[test]
fn another_users_process_is_refused_even_with_the_key() {
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("not root: cannot run a process as another user; check not run");
        return;
    }
    // A socket any user may reach, so that only the credential check stands in the way.
    let dir = std::env::temp_dir().join(format!("multiproc-foreign-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let path = dir.join("m.sock");
    let _ = std::fs::remove_file(&path);
    let manager = Manager::builder()
        .address(path.as_path())
        .authkey(b"shared key")
        .start()
        .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let refused = join(
        Process::spawn(path.clone(), |path: std::path::PathBuf| {
            rustix::thread::set_thread_uid(rustix::process::Uid::from_raw(65534)).unwrap();
            Manager::connect(path, b"shared key").is_err()
        })
        .unwrap(),
    );
    assert!(refused, "a process of another user did not get in");
    assert!(manager.dict::<u8, u8>().is_ok(), "the owner still does");
    drop(manager);
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
    let code = |r: Result<i64, ManagerError>| match r {
        Err(ManagerError::Remote { code, .. }) => code,
        other => panic!("{other:?}"),
    };
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
    let list = manager.list(&[0u32]).unwrap();
    list.push(&1).unwrap(); // before the watch: not seen
    let mut watcher = list.watch().unwrap();
    assert_eq!(
        watcher.next_timeout(Duration::from_millis(20)).unwrap(),
        None
    );
    join(
        Process::spawn(list.clone(), |list: ListProxy<u32>| {
            list.push(&2).unwrap();
            list.extend(&[3, 4]).unwrap();
            list.set(0, &9).unwrap();
        })
        .unwrap(),
    );
    let mut seen = Vec::new();
    while let Some(change) = watcher.next_timeout(Duration::from_millis(200)).unwrap() {
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
