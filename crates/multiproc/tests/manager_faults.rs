//! The faults of `docs/faults.md` that concern the manager (rows 1 to 13, 15 and 17, 26 to 32),
//! each inflicted on a live server: hostile and broken clients (most by a client that speaks the
//! documented protocol by hand, `RawClient`), wrong keys, other users, and the manager killed under
//! its clients. Row 17 (a dead holder of a manager lock) is in `manager_sync.rs`, with the locks.

multiproc::test_support!();

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{DEADLINE, join, park_forever, sigkill, status_field, watch};
use hmac::{Hmac, Mac};
use multiproc::{
    Address, ConnectError, DictProxy, ErrorCode, Manager, ManagerError, Process, QueueProxy,
};
use sha2::Sha256;

fn socket_path(manager: &Manager) -> PathBuf {
    let Address::Unix(path) = manager.address() else {
        panic!("a Unix socket")
    };
    path.clone()
}

/// A connection that has read the server's hello, and nothing more.
fn unauthenticated(manager: &Manager) -> (UnixStream, [u8; 40]) {
    let mut stream = UnixStream::connect(socket_path(manager)).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut hello = [0u8; 40];
    stream.read_exact(&mut hello).unwrap();
    assert_eq!(&hello[..8], b"MPAUTH01");
    (stream, hello)
}

/// The client's proof for `hello` with `key`.
fn proof(key: &[u8], hello: &[u8; 40]) -> Vec<u8> {
    let client_nonce = [7u8; 32];
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(b"multiproc-auth-v1 client");
    mac.update(&hello[8..]);
    mac.update(&client_nonce);
    [
        &b"MPAUTH01"[..],
        &client_nonce,
        &mac.finalize().into_bytes(),
    ]
    .concat()
}

/// Everything the server sends until it closes the connection (or the deadline).
fn rest_of(stream: &mut UnixStream) -> Vec<u8> {
    let mut rest = Vec::new();
    stream
        .read_to_end(&mut rest)
        .expect("closed within the deadline");
    rest
}

/// A client speaking the protocol by hand, as docs/manager-protocol.md describes it.
struct RawClient(UnixStream);

impl RawClient {
    fn connect(manager: &Manager) -> RawClient {
        let (mut stream, hello) = unauthenticated(manager);
        stream.write_all(&proof(manager.authkey(), &hello)).unwrap();
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

    /// Whether the server closed the connection (within the deadline).
    fn closed(&mut self) -> bool {
        rest_of(&mut self.0).is_empty()
    }

    /// Sends `op` and returns the response.
    fn call(&mut self, id: u64, op: &str, object: u64, args: Vec<rmpv::Value>) -> rmpv::Value {
        self.send_raw(&request(id, op, object, args));
        self.response().expect("an answer")
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

/// Growth of the server's peak virtual memory (KiB) that is no allocation of a claimed size: a new
/// thread's stack and malloc arena. The claims are of gigabytes.
const LITTLE: u64 = 512 * 1024;

/// The server's peak of virtual memory, in KiB.
fn vm_peak(manager: &Manager) -> u64 {
    status_field(manager.pid().expect("started here"), "VmPeak")
}

#[test]
fn row_1_a_thousand_silent_connections_cost_no_thread_and_keep_nobody_out() {
    let manager = Manager::start().unwrap();
    let pid = manager.pid().unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    let threads_before = status_field(pid, "Threads");
    let silent: Vec<UnixStream> = (0..1000)
        .map(|_| UnixStream::connect(socket_path(&manager)).unwrap())
        .collect();
    // A real client, on a connection of its own, gets in and is served meanwhile.
    let other = Manager::connect(manager.address().clone(), manager.authkey()).unwrap();
    other
        .dict_named::<u32, u32>("late")
        .unwrap()
        .insert(1, 1)
        .unwrap();
    d.insert(2, 2).unwrap();
    let stats = manager.stats().unwrap();
    // A bounded list: at most 1024 in flight (the silent ones fit, and wait out their deadline).
    assert!(stats.handshakes <= 1024, "{stats:?}");
    // One thread more: the real client's.
    assert!(status_field(pid, "Threads") <= threads_before + 1);
    // Each silent one got the challenge, then was closed (its read ends, within its deadline):
    // at the 5 s handshake deadline, or to make room after a second of silence.
    for mut stream in silent {
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let rest = rest_of(&mut stream);
        assert!(
            rest.len() == 40 && rest.starts_with(b"MPAUTH01"),
            "{rest:?}"
        );
    }
    assert_eq!(d.get(2).unwrap(), Some(2));
}

#[test]
fn row_2_a_wrong_key_gets_the_fixed_refusal_then_a_close_and_is_counted() {
    let manager = Manager::start().unwrap();
    let (mut stream, hello) = unauthenticated(&manager);
    stream.write_all(&proof(b"not the key", &hello)).unwrap();
    assert_eq!(
        rest_of(&mut stream),
        b"MPAUTHNO",
        "the code, and nothing else"
    );
    assert!(matches!(
        Manager::connect(manager.address().clone(), b"not the key"),
        Err(ManagerError::Connect(ConnectError::AuthFailed))
    ));
    assert_eq!(manager.stats().unwrap().auth_failures, 2);
    assert!(manager.dict::<u8, u8>().is_ok(), "the server goes on");
}

#[test]
fn row_2_wrong_keys_are_tried_twenty_a_second_at_most() {
    let manager = Manager::start().unwrap();
    let started = Instant::now();
    let attempts: Vec<_> = (0..60)
        .map(|_| {
            let address = manager.address().clone();
            std::thread::spawn(move || Manager::connect(address, b"a guess").map(drop))
        })
        .collect();
    for attempt in attempts {
        assert!(matches!(
            attempt.join().unwrap(),
            Err(ManagerError::Connect(ConnectError::AuthFailed))
        ));
    }
    // 20 at once, then 20 a second: the last 40 take two seconds at least.
    assert!(started.elapsed() >= Duration::from_millis(1900));
    assert_eq!(manager.stats().unwrap().auth_failures, 60);
}

#[test]
fn a_right_key_gets_in_at_once_under_a_flood_of_wrong_ones() {
    let manager = Manager::start().unwrap();
    // 300 wrong proofs in flight: answered twenty a second, they would take 15 s.
    let wrong: Vec<UnixStream> = (0..300)
        .map(|_| {
            let (mut stream, hello) = unauthenticated(&manager);
            stream.write_all(&proof(b"a guess", &hello)).unwrap();
            stream
        })
        .collect();
    // Clients with the key, each with a handshake of its own (a lock proxy's connection), get
    // in: their proofs are not judged behind the wrong ones (they were, and reset or expired).
    for _ in 0..5 {
        let lock = manager
            .lock()
            .expect("a right key gets in during the flood");
        assert!(lock.try_acquire().is_ok());
    }
    // The wrong ones are refused, at their pace: the first answers are the refusal code.
    let mut first = wrong.into_iter().next().unwrap();
    assert_eq!(rest_of(&mut first), b"MPAUTHNO");
    assert!(manager.stats().unwrap().auth_failures >= 1);
}

#[test]
fn a_burst_of_a_thousand_right_key_clients_all_get_in_and_so_do_those_that_wait_for_a_stopped_manager()
 {
    let manager = Manager::start().unwrap();
    // A thousand connect before any proves itself (they were pushed out beyond 128 in flight).
    let mut clients: Vec<(UnixStream, [u8; 40])> =
        (0..1000).map(|_| unauthenticated(&manager)).collect();
    for (stream, hello) in &mut clients {
        stream.write_all(&proof(manager.authkey(), hello)).unwrap();
    }
    for (stream, _) in &mut clients {
        let mut reply = [0u8; 40];
        stream.read_exact(&mut reply).unwrap();
        assert_eq!(&reply[..8], b"MPAUTHOK");
    }
    let stats = manager.stats().unwrap();
    assert_eq!((stats.refused, stats.auth_failures), (0, 0), "{stats:?}");
    // Each is served.
    let mut one = RawClient(clients.pop().unwrap().0);
    assert_eq!(
        one.call(1, "ping", 0, vec![]).to_string(),
        "[1, {\"Ok\": \"pong\"}]"
    );
    drop(clients);
    // 300 that connect while the manager is stopped wait in its backlog, and all get in when it
    // resumes (beyond 128, they were reset).
    let pid = manager.pid().unwrap();
    common::pause(pid, true);
    let waiting: Vec<UnixStream> = (0..300)
        .map(|_| UnixStream::connect(socket_path(&manager)).unwrap())
        .collect();
    common::pause(pid, false);
    for mut stream in waiting {
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut hello = [0u8; 40];
        stream.read_exact(&mut hello).unwrap();
        stream.write_all(&proof(manager.authkey(), &hello)).unwrap();
        let mut reply = [0u8; 40];
        stream.read_exact(&mut reply).unwrap();
        assert_eq!(&reply[..8], b"MPAUTHOK");
    }
    assert_eq!(manager.stats().unwrap().refused, 0);
}

#[test]
fn row_3_legacy_md5_replies_are_refused_without_a_downgrade() {
    let manager = Manager::start().unwrap();
    // Python's reply: a bare 16-byte HMAC-MD5 digest, or one prefixed with {md5}.
    for reply in [
        [0x5a_u8; 16].to_vec(),
        [&b"{md5}"[..], &[0x5a; 16]].concat(),
    ] {
        let (mut stream, _) = unauthenticated(&manager);
        stream.write_all(&reply).unwrap();
        assert_eq!(rest_of(&mut stream), b"", "closed, without an answer");
    }
    assert_eq!(manager.stats().unwrap().connections, 1, "only ours got in");
}

#[test]
fn row_4_a_huge_length_before_authentication_closes_the_connection_before_any_allocation() {
    let manager = Manager::start().unwrap();
    manager.dict::<u8, u8>().unwrap();
    let peak = vm_peak(&manager);
    let claims = [
        [&b"MPM1"[..], &(1u32 << 30).to_be_bytes()].concat(), // 1 GiB
        [&b"MPM1"[..], &(-1i32).to_be_bytes()].concat(),      // negative
        vec![0xff; 8],                                        // 8-byte -1
    ];
    for claim in claims {
        let (mut stream, _) = unauthenticated(&manager);
        stream.write_all(&claim).unwrap();
        assert_eq!(rest_of(&mut stream), b"", "closed, without an answer");
    }
    assert!(
        vm_peak(&manager) < peak + LITTLE,
        "no allocation of the claimed size"
    );
}

#[test]
fn row_5_a_huge_frame_after_authentication_is_refused_without_allocating() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    let peak = vm_peak(&manager);
    for claim in [2u32 << 30, u32::MAX] {
        let mut raw = RawClient::connect(&manager);
        raw.send_raw(&[&b"MPM1"[..], &claim.to_be_bytes()].concat());
        assert_eq!(
            error_code(&raw.response().unwrap()).as_deref(),
            Some("FrameTooLarge")
        );
        assert!(raw.closed());
    }
    assert!(
        vm_peak(&manager) < peak + LITTLE,
        "no allocation of the claimed size"
    );
    d.insert(1, 1).unwrap();
}

#[test]
fn rows_6_and_7_a_truncated_frame_is_dropped_with_its_connection_and_applies_nothing() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    // Row 6: a set request cut short, then the end of the stream.
    let mut raw = RawClient::connect(&manager);
    let whole = request(1, "dict.set", 1, vec![5.into(), 5.into()]);
    raw.send_raw(&whole[..whole.len() - 3]);
    raw.0.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(raw.response().is_none(), "no answer, the connection closed");
    assert_eq!(d.get(5).unwrap(), None, "nothing applied");
    // Row 7: a frame cut short, then silence: closed after the frame timeout (10 s).
    let mut silent = RawClient::connect(&manager);
    silent.send_raw(&whole[..10]);
    assert!(silent.closed(), "closed, not answered");
    // Everyone else is served all along.
    assert_eq!(d.len().unwrap(), 0);
}

/// A small deterministic generator (xorshift), so that a failure can be replayed.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn row_8_random_payloads_and_desync_seeds_get_errors_and_the_server_goes_on() {
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut raw = RawClient::connect(&manager);
    let seeds: [&[u8]; 5] = [b"\x00", b"*\x00", b"$\x00", b"", b"\x94\x01"];
    for (i, payload) in seeds
        .iter()
        .map(|seed| seed.to_vec())
        .chain((0..500).map(|i| noise.bytes(i % 300)))
        .enumerate()
    {
        raw.send_raw(&RawClient::frame(&payload));
        let response = raw
            .response()
            .unwrap_or_else(|| panic!("payload {i} got no answer"));
        assert!(error_code(&response).is_some(), "payload {i}: {response}");
    }
    // Bytes that are not even a frame: the connection closes, and only it.
    raw.send_raw(b"\x00*\x00$\x00 garbage");
    assert!(raw.closed());
    d.insert(1, 1).unwrap();
    assert_eq!(d.get(1).unwrap(), Some(1));
}

#[test]
fn row_9_unknown_objects_and_operations_are_typed_errors_on_a_usable_connection() {
    let manager = Manager::start().unwrap();
    // Object 1, alive while this proxy is.
    let _dict = manager.dict::<u32, u32>().unwrap();
    let mut raw = RawClient::connect(&manager);
    let pong = raw.call(1, "ping", 0, vec![]);
    assert_eq!(pong.as_array().unwrap()[0].as_u64(), Some(1));
    let cases = [
        ("dict.get", 999, "UnknownObject"),
        ("dict.exec", 1, "NotExposed"),
        ("lock.acquire", 1, "NotExposed"),
        ("subprocess.run", 0, "NotExposed"),
    ];
    for (id, (op, object, code)) in (2..).zip(cases) {
        let response = raw.call(id, op, object, vec![1.into()]);
        assert_eq!(error_code(&response).as_deref(), Some(code), "{op}");
    }
    let pong = raw.call(9, "ping", 0, vec![]);
    assert_eq!(pong.as_array().unwrap()[0].as_u64(), Some(9));
}

#[test]
fn a_client_of_another_protocol_version_is_told_which_and_closed() {
    let manager = Manager::start().unwrap();
    let mut old = RawClient::connect(&manager);
    let refused = old.call(1, "hello", 0, vec![1.into(), 42.into()]);
    assert_eq!(
        error_code(&refused).as_deref(),
        Some("VersionMismatch"),
        "{refused}"
    );
    assert!(refused.to_string().contains("version 2"), "{refused}");
    assert!(old.closed(), "the connection ends after the refusal");
    let mut current = RawClient::connect(&manager);
    let welcomed = current.call(1, "hello", 0, vec![2.into(), 42.into()]);
    assert_eq!(error_code(&welcomed), None, "{welcomed}");
    let pong = current.call(2, "ping", 0, vec![]);
    assert_eq!(error_code(&pong), None);
}

#[test]
fn a_struct_a_proxy_stores_is_a_map_by_field_name_for_a_client_of_the_raw_protocol() {
    // What a client in another language, written from docs/manager-protocol.md, reads.
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Employee {
        name: String,
        salary: u32,
        badge: Vec<u8>,
    }
    let manager = Manager::start().unwrap();
    let staff = manager.dict_named::<String, Employee>("staff").unwrap();
    let ann = Employee {
        name: "Ann".into(),
        salary: 100,
        badge: vec![1, 2],
    };
    staff.insert("ann", &ann).unwrap();
    let mut raw = RawClient::connect(&manager);
    let named = raw.call(1, "named", 0, vec!["staff".into(), "dict".into()]);
    let id = named.as_array().unwrap()[1].as_map().unwrap()[0].1.clone();
    let got = raw.call(2, "dict.getitem", id.as_u64().unwrap(), vec!["ann".into()]);
    let value = &got.as_array().unwrap()[1].as_map().unwrap()[0].1;
    assert_eq!(
        value,
        &rmpv::Value::Map(vec![
            ("name".into(), "Ann".into()),
            ("salary".into(), 100.into()),
            ("badge".into(), rmpv::Value::Binary(vec![1, 2])),
        ])
    );
    // And what such a client stores, by field name in any order, reads back as the struct.
    let bob = rmpv::Value::Map(vec![
        ("salary".into(), 90.into()),
        ("badge".into(), rmpv::Value::Binary(vec![3])),
        ("name".into(), "Bob".into()),
    ]);
    let set = raw.call(3, "dict.set", id.as_u64().unwrap(), vec!["bob".into(), bob]);
    assert_eq!(error_code(&set), None);
    assert_eq!(
        staff.get("bob").unwrap(),
        Some(Employee {
            name: "Bob".into(),
            salary: 90,
            badge: vec![3]
        })
    );
    assert_eq!(staff.get("ann").unwrap(), Some(ann));
}

#[test]
fn row_10_an_http_request_is_closed_at_once_before_or_after_the_handshake() {
    let manager = Manager::start().unwrap();
    let (mut before, _) = unauthenticated(&manager);
    before
        .write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert_eq!(rest_of(&mut before), b"");
    let mut after = RawClient::connect(&manager);
    after.send_raw(b"POST / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(after.closed());
    assert!(manager.dict::<u8, u8>().is_ok());
}

#[test]
fn row_11_deep_nesting_and_huge_counts_are_decode_errors() {
    let manager = Manager::start().unwrap();
    let mut raw = RawClient::connect(&manager);
    let peak = vm_peak(&manager);
    let mut deep = vec![0x91u8; 100_000];
    deep.push(0xc0);
    let huge_count = [0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0];
    // A request whose argument claims 2^32 - 1 items: the count is checked, not believed.
    let mut lying_args = vec![0x94, 0x01, 0xa4];
    lying_args.extend_from_slice(b"ping");
    lying_args.extend_from_slice(&[0x00, 0xdd, 0xff, 0xff, 0xff, 0xff]);
    // Too deep is refused with its own code (a limit, not a malformed request).
    for (payload, code) in [
        (deep, "NestingTooDeep"),
        (huge_count.to_vec(), "DecodeError"),
        (lying_args, "DecodeError"),
    ] {
        raw.send_raw(&RawClient::frame(&payload));
        assert_eq!(error_code(&raw.response().unwrap()).as_deref(), Some(code));
    }
    let pong = raw.call(5, "ping", 0, vec![]);
    assert_eq!(pong.as_array().unwrap()[0].as_u64(), Some(5));
    assert!(vm_peak(&manager) < peak + LITTLE);
}

#[test]
fn row_12_all_interfaces_are_refused_without_the_opt_in() {
    assert!(matches!(
        Manager::builder().address("0.0.0.0:0").start(),
        Err(ManagerError::Connect(ConnectError::NotLoopback { .. }))
    ));
    let opted_in = Manager::builder()
        .address("0.0.0.0:0")
        .allow_remote()
        .start()
        .unwrap();
    assert!(opted_in.dict::<u8, u8>().is_ok());
}

#[test]
fn row_13_another_users_process_is_refused_even_with_the_key() {
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
    assert_eq!(manager.stats().unwrap().refused, 1);
    drop(manager);
    let _ = std::fs::remove_dir_all(dir);
}

/// What a child saw when the manager died under it.
fn saw_gone(result: Result<(), ManagerError>) -> bool {
    matches!(result, Err(ManagerError::Gone { .. }))
}

#[test]
fn row_15_a_killed_manager_is_gone_for_a_blocked_get_a_write_and_a_creation() {
    let manager = Manager::start().unwrap();
    let q = manager.queue::<u32>().unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    let running = multiproc::Queue::<u8>::new().unwrap();
    // A getter blocked on an empty queue.
    type Running = multiproc::Queue<u8>;
    let getter = Process::spawn(
        (q.clone(), running.clone()),
        |(q, running): (QueueProxy<u32>, Running)| {
            running.put(1).unwrap();
            saw_gone(q.get().map(drop))
        },
    )
    .unwrap();
    // A writer, `d[k] = v` in a loop.
    let writer = Process::spawn(
        (d.clone(), running.clone()),
        |(d, running): (DictProxy<u32, u32>, Running)| {
            running.put(2).unwrap();
            saw_gone((0..).try_for_each(|i| d.insert(i % 100, i)))
        },
    )
    .unwrap();
    // A process that connects and creates proxies in a loop.
    let address = (manager.address().clone(), manager.authkey().to_vec());
    let creator = Process::spawn(
        (address, running.clone()),
        |((address, key), running): ((Address, Vec<u8>), Running)| {
            running.put(3).unwrap();
            saw_gone((0..).try_for_each(|_: u64| {
                let manager = Manager::connect(address.clone(), &key)?;
                manager.dict::<u8, u8>().map(drop)
            }))
        },
    )
    .unwrap();
    for _ in 0..3 {
        running.get_timeout(DEADLINE).unwrap();
    }
    sigkill(manager.pid().unwrap());
    // Each within its deadline (`join`'s): nobody hangs on a dead manager.
    assert!(join(getter), "the blocked get saw ManagerError::Gone");
    assert!(join(writer), "the writer saw ManagerError::Gone");
    assert!(join(creator), "the creator saw ManagerError::Gone");
    assert!(matches!(d.get(1), Err(ManagerError::Gone { .. })));
    assert!(matches!(q.try_get(), Err(ManagerError::Gone { .. })));
}

#[test]
fn row_15_the_socket_directory_of_a_killed_starter_is_swept_and_a_live_one_kept() {
    let live = Manager::start().unwrap();
    let dirs = multiproc::Queue::<(PathBuf, u32)>::new().unwrap();
    let mut starter = Process::spawn(
        dirs.clone(),
        |dirs: multiproc::Queue<(PathBuf, u32)>| -> () {
            let manager = Manager::start().unwrap();
            let dir = socket_path(&manager).parent().unwrap().to_owned();
            dirs.put(&(dir, manager.pid().unwrap())).unwrap();
            park_forever()
        },
    )
    .unwrap();
    let (dead_dir, server) = dirs.get_timeout(DEADLINE).unwrap();
    let server = watch(server);
    assert!(dead_dir.exists());
    sigkill(starter.pid());
    let _ = starter.join_timeout(DEADLINE);
    server.assert_dies("the manager of a killed starter");
    // Removed by this sweep, or already by the one of a manager another test started meanwhile.
    let removed = Manager::clean_dead().unwrap();
    assert!(!dead_dir.exists(), "{removed:?}");
    let live_dir = socket_path(&live).parent().unwrap().to_owned();
    assert!(live_dir.exists(), "a live manager's directory is kept");
    assert!(live.dict::<u8, u8>().is_ok());
}

#[test]
fn a_watcher_blocked_on_an_object_that_is_freed_ends_with_unknown_object() {
    // A proxy keeps what it watches alive; a client of the raw protocol may watch an id it does
    // not hold. Its creator's connection ends, the dict is freed, and the wait ends with it.
    let manager = Manager::start().unwrap();
    let mut creator = RawClient::connect(&manager);
    let created = creator.call(1, "dict", 0, Vec::new());
    let id = created.as_array().unwrap()[1].as_map().unwrap()[0]
        .1
        .as_u64()
        .unwrap();
    let mut watcher = RawClient::connect(&manager);
    // Since "never", without waiting: the current version.
    let now = watcher.call(1, "watch", id, vec![u64::MAX.into(), 0.into()]);
    assert_eq!(error_code(&now), None, "{now}");
    // A watch without deadline: it waits (or, read after the dict is freed, fails at once).
    watcher.send_raw(&request(2, "watch", id, vec![0.into(), rmpv::Value::Nil]));
    let objects = || manager.stats().unwrap().objects;
    assert_eq!(objects(), 1);
    drop(creator);
    assert!(
        common::wait_until(|| objects() == 0),
        "the creator's connection ended and its dict stayed"
    );
    let ended = watcher.response().expect("the blocked watch was answered");
    assert_eq!(
        error_code(&ended).as_deref(),
        Some("UnknownObject"),
        "{ended}"
    );
}

#[test]
fn an_oversized_request_or_answer_fails_that_call_only() {
    // Issue "Thirteen ways to break it", item 1.
    let manager = Manager::start().unwrap();
    let big = manager.dict::<u32, String>().unwrap();
    let other = manager.dict::<u32, u32>().unwrap();
    let too_large = "x".repeat(70 << 20);
    let refused = big.insert(0, &too_large).unwrap_err();
    assert!(
        matches!(refused, ManagerError::FrameTooLarge { .. }),
        "{refused}"
    );
    other.insert(1, 1).unwrap();
    // Under the cap one by one, over it together: the answer is refused, in step.
    for key in 0..4 {
        big.insert(key, key.to_string().repeat(20 << 20)).unwrap();
    }
    let refused = big.values().unwrap_err();
    assert!(refused.is_frame_too_large(), "{refused}");
    assert_eq!(
        other.get(1).unwrap(),
        Some(1),
        "the shared connection is fine"
    );
    assert_eq!(big.len().unwrap(), 4);
    manager.dict::<u8, u8>().unwrap();
}

#[test]
fn an_undecodable_request_is_a_typed_refusal_for_that_call_only() {
    // Issue "Thirteen ways to break it", item 2.
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u32, Deep>().unwrap();
    let deep = (0..100).fold(Deep::End, |inner, _| Deep::More(Box::new(inner)));
    assert!(matches!(
        d.insert(1, &deep),
        Err(ManagerError::Remote {
            code: ErrorCode::NestingTooDeep,
            ..
        })
    ));
    let numbers = manager.dict::<u32, Vec<u32>>().unwrap();
    assert!(matches!(
        numbers.insert(1, vec![1; 5_000_000]),
        Err(ManagerError::Remote {
            code: ErrorCode::DecodeError,
            ..
        })
    ));
    d.insert(2, &Deep::End).unwrap();
    assert_eq!(d.len().unwrap(), 1, "the connection is in step");
    // Bytes travel as bytes, one value: 5 MB of them fit the budget.
    let blobs = manager.dict::<u32, Vec<u8>>().unwrap();
    let blob: Vec<u8> = (0..5_000_000u32).map(|i| i as u8).collect();
    blobs.insert(1, &blob).unwrap();
    assert_eq!(blobs.get(1).unwrap(), Some(blob));
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Deep {
    End,
    More(Box<Deep>),
}

#[test]
fn a_broken_shared_connection_is_made_again_at_the_next_call() {
    // Issue "Thirteen ways to break it", item 1: a manager that went away and came back at the
    // same address is reached again by the same proxies.
    let first = Manager::builder()
        .address("127.0.0.1:0")
        .authkey(b"the key")
        .start()
        .unwrap();
    let address = first.address().clone();
    let client = Manager::connect(address.clone(), b"the key").unwrap();
    let d = client.dict_named::<u32, u32>("settings").unwrap();
    d.insert(1, 1).unwrap();
    first.shutdown().unwrap();
    assert!(d.get(1).unwrap_err().is_gone());
    let _second = Manager::builder()
        .address(address)
        .authkey(b"the key")
        .start()
        .unwrap();
    client.dict_named::<u32, u32>("settings").unwrap();
    assert_eq!(d.get(1).unwrap(), None, "a new manager, reached again");
    d.insert(2, 2).unwrap();
}

/// A user type whose methods use proxies of their own manager: to write a note in a dict, to call
/// other objects (`visit` along a path of names) and to meet another object's method halfway.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Relay {
    name: String,
    address: PathBuf,
    key: Vec<u8>,
}

impl Relay {
    fn manager(&self) -> Result<Manager, multiproc::CallError> {
        Manager::connect(self.address.clone(), &self.key)
            .map_err(|e| multiproc::CallError::Failed(e.to_string()))
    }

    /// The object named `name`, on this manager.
    fn other(&self, name: &str) -> Result<multiproc::ObjectProxy<Relay>, multiproc::CallError> {
        let relay = Relay {
            name: name.to_owned(),
            address: self.address.clone(),
            key: self.key.clone(),
        };
        self.manager()?
            .create_named(name, &relay)
            .map_err(|e| multiproc::CallError::Failed(e.to_string()))
    }

    /// What `name`'s visit along `path` answered, or the code that refused it.
    fn visit(&self, name: &str, path: &[String]) -> Result<String, multiproc::CallError> {
        Ok(
            match self.other(name)?.call::<_, String>("visit", &path.to_vec()) {
                Ok(answer) => answer,
                Err(e) => format!("refused: {}", e.code().expect("a refusal")),
            },
        )
    }
}

impl multiproc::Shared for Relay {
    const TYPE_NAME: &'static str = "Relay";

    fn call(
        &mut self,
        method: &str,
        args: multiproc::Args,
    ) -> Result<multiproc::Reply, multiproc::CallError> {
        let failed = |e: ManagerError| multiproc::CallError::Failed(e.to_string());
        match method {
            "note" => {
                let note: String = args.decode()?;
                let notes = self.manager()?.dict_named::<String, String>("notes");
                notes
                    .map_err(failed)?
                    .insert(&self.name, &note)
                    .map_err(failed)?;
                multiproc::Reply::of(&note)
            }
            "visit" => {
                let path: Vec<String> = args.decode()?;
                match path.split_first() {
                    None => multiproc::Reply::of(&format!("here from {}", self.name)),
                    Some((next, rest)) => multiproc::Reply::of(&self.visit(next, rest)?),
                }
            }
            "meet" => {
                // Both methods run (each holds its object) before either calls the other's.
                let other: String = args.decode()?;
                let manager = self.manager()?;
                let event = |name: &str| manager.event_named(name).map_err(failed);
                event(&format!("{}-in", self.name))?.set().map_err(failed)?;
                event(&format!("{other}-in"))?
                    .wait_timeout(DEADLINE)
                    .map_err(failed)?;
                multiproc::Reply::of(&self.visit(&other, &[])?)
            }
            _ => Err(multiproc::CallError::not_exposed(method)),
        }
    }
}

#[test]
fn a_method_may_use_its_own_manager_and_a_call_that_would_wait_for_itself_is_refused() {
    let manager = Manager::builder().register::<Relay>().start().unwrap();
    let relay = |name: &str| {
        let state = Relay {
            name: name.into(),
            address: socket_path(&manager),
            key: manager.authkey().to_vec(),
        };
        manager.create_named(name, &state).unwrap()
    };
    let (a, b) = (relay("a"), relay("b"));
    // From another process: the method writes to a dict of the same manager (it hung, every
    // client with it, while the server's table was locked around user code).
    let noted = join(
        Process::spawn(a.clone(), |a: multiproc::ObjectProxy<Relay>| {
            a.call::<_, String>("note", &"from a child").unwrap()
        })
        .unwrap(),
    );
    assert_eq!(noted, "from a child");
    let notes = manager.dict_named::<String, String>("notes").unwrap();
    assert_eq!(notes.get("a").unwrap().as_deref(), Some("from a child"));
    // Along a chain of calls: b is free, a is running the method that called it.
    let visit = |path: &[&str]| {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        a.call::<_, String>("visit", &path).unwrap()
    };
    assert_eq!(visit(&["b"]), "here from b");
    assert_eq!(visit(&["a"]), "refused: WouldDeadlock");
    assert_eq!(visit(&["b", "a"]), "refused: WouldDeadlock");
    assert_eq!(visit(&["b", "b"]), "refused: WouldDeadlock");
    // Two calls from two processes, each waiting for the other's object: the one that would
    // close the cycle is refused, and the other goes on.
    let meet = |from: &multiproc::ObjectProxy<Relay>, to: &'static str| {
        Process::spawn(
            (from.clone(), to.to_owned()),
            |(from, to): (multiproc::ObjectProxy<Relay>, String)| {
                from.call::<_, String>("meet", &to).unwrap()
            },
        )
        .unwrap()
    };
    let (ab, ba) = (meet(&a, "b"), meet(&b, "a"));
    let mut answers = [join(ab), join(ba)];
    answers.sort();
    assert!(
        answers == ["here from a", "refused: WouldDeadlock"]
            || answers == ["here from b", "refused: WouldDeadlock"],
        "{answers:?}"
    );
    // Nothing stayed running: both objects take calls, and the manager serves everyone.
    assert_eq!(visit(&["b"]), "here from b");
    assert_eq!(
        b.call::<_, String>("visit", &Vec::<String>::new()).unwrap(),
        "here from b"
    );
    assert_eq!(notes.len().unwrap(), 1);
}

#[test]
fn ten_thousand_lock_proxies_in_a_process_use_a_few_connections_and_lock_nobody_out() {
    let manager = Manager::start().unwrap();
    type Held = (usize, Vec<multiproc::LockProxy>);
    let holding = multiproc::Queue::<Held>::new().unwrap();
    let address = manager.address().clone();
    let key = manager.authkey().to_vec();
    // Another process, another client: ten thousand locks, each taken by a proxy of its own.
    let holder = Process::spawn(
        (address, key, holding.clone()),
        |(address, key, holding): (Address, Vec<u8>, multiproc::Queue<Held>)| -> () {
            let manager = Manager::connect(address, &key).unwrap();
            let locks: Vec<_> = (0..10_000).map(|_| manager.lock().unwrap()).collect();
            let guards: Vec<_> = locks.iter().map(|l| l.try_acquire().unwrap()).collect();
            holding.put(&(guards.len(), locks[..3].to_vec())).unwrap();
            park_forever()
        },
    )
    .unwrap();
    let (count, some) = holding.get_timeout(DEADLINE).unwrap();
    assert_eq!(count, 10_000);
    assert!(some.iter().all(|l| l.is_locked().unwrap()));
    // The holder uses one connection or two (they used one each, and the server's 1024 ran out).
    let stats = manager.stats().unwrap();
    assert!(stats.connections <= 4, "{stats:?}");
    assert_eq!(stats.objects, 10_000);
    // Every other process goes on, with locks and waits of its own.
    let d = manager.dict::<u32, u32>().unwrap();
    d.insert(1, 1).unwrap();
    let mine = manager.lock().unwrap();
    assert!(mine.acquire_timeout(DEADLINE).is_ok());
    // The holder's death releases its ten thousand, each telling its next taker.
    let pid = holder.pid();
    sigkill(pid);
    assert!(common::join_result(holder).is_err(), "the holder died");
    for lock in &some {
        let taken = lock.acquire_timeout(DEADLINE).unwrap();
        assert!(taken.owner_died(), "the next taker is told");
    }
    // This process's two (the shared one, and one kept for waits) are left.
    assert!(wait_for_connections(&manager, 2));
}

/// Whether the manager comes down to `n` connections within the deadline (a dead client's end
/// is read by the server soon after the death).
fn wait_for_connections(manager: &Manager, n: u64) -> bool {
    common::wait_until(|| manager.stats().is_ok_and(|s| s.connections <= n))
}

#[test]
fn a_client_over_its_connection_limit_gets_a_typed_error_and_others_go_on() {
    let manager = Manager::start().unwrap();
    let lock = manager.lock().unwrap();
    let held = lock.acquire().unwrap();
    let refused = multiproc::Queue::<u32>::new().unwrap();
    // 300 threads of one process wait for the lock at once: each wait needs a connection, and a
    // client has 256 (the shared one among them).
    let waiters = Process::spawn(
        (lock.clone(), refused.clone()),
        |(lock, refused): (multiproc::LockProxy, multiproc::Queue<u32>)| {
            let threads: Vec<_> = (0..300)
                .map(|_| {
                    let (lock, refused) = (lock.clone(), refused.clone());
                    std::thread::spawn(move || match lock.acquire_timeout(DEADLINE) {
                        Ok(_guard) => None,
                        Err(e) => {
                            refused.put(1).unwrap();
                            Some(e.code().map(|c| c.to_string()).unwrap_or(e.to_string()))
                        }
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect::<Vec<_>>()
        },
    )
    .unwrap();
    for _ in 0..300 - 255 {
        refused.get_timeout(DEADLINE).unwrap();
    }
    // Another client is served meanwhile, its own waits included.
    let other = Manager::connect(manager.address().clone(), manager.authkey()).unwrap();
    other.dict::<u8, u8>().unwrap().insert(1, 1).unwrap();
    assert!(other.lock().unwrap().try_acquire().is_ok());
    drop(held);
    let outcomes = join(waiters);
    let errors: Vec<_> = outcomes.iter().flatten().collect();
    assert_eq!(errors.len(), 300 - 255, "{errors:?}");
    assert!(
        errors.iter().all(|e| *e == "TooManyConnections"),
        "{errors:?}"
    );
}

#[test]
fn the_servers_connection_limit_is_a_typed_error_not_gone() {
    let manager = Manager::start().unwrap();
    // 1024 connections, each a client of its own (they say no hello), take every slot but the
    // starter's.
    let taken: Vec<RawClient> = (0..1023).map(|_| RawClient::connect(&manager)).collect();
    let refused = Manager::connect(manager.address().clone(), manager.authkey()).unwrap_err();
    assert_eq!(
        refused.code(),
        Some(&ErrorCode::TooManyConnections),
        "{refused}"
    );
    assert!(refused.to_string().contains("1024"), "{refused}");
    // The starter's proxies go on; and once a slot is free, a client gets in.
    manager.dict::<u8, u8>().unwrap().insert(1, 1).unwrap();
    drop(taken);
    assert!(wait_for_connections(&manager, 1));
    Manager::connect(manager.address().clone(), manager.authkey()).unwrap();
}
