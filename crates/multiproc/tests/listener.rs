//! `Listener` and `Client` between processes that share nothing but an address and a key: over a
//! Unix socket path (handles travel) and TCP (loopback), mutual HMAC authentication, a wrong key
//! on either side, garbage, legacy (MD5) and silent peers, another user's connection, and the
//! loopback rule.

multiproc::test_support!();

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{DEADLINE, join};
use multiproc::{
    Address, Client, ConnectError, Connection, HANDSHAKE_TIMEOUT, Listener, Process, RecvError,
    SendError, Value,
};

const KEY: &[u8] = b"the right key";

/// A fresh socket path in a private directory.
fn socket_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("multiproc-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// In a child: connects, sends a greeting and a handle, echoes one message back.
fn client_side((address, key): (String, Vec<u8>)) -> Result<String, String> {
    let conn: Connection<(String, Option<Value<u64>>)> =
        Client::connect(address.as_str(), &key).map_err(|e| e.to_string())?;
    let counter = Value::new(7u64).unwrap();
    let handle = address.starts_with('/').then_some(counter);
    conn.send(&("hello".to_string(), handle))
        .map_err(|e| e.to_string())?;
    let (echo, _) = conn.recv().map_err(|e| e.to_string())?;
    Ok(echo)
}

#[test]
fn a_unix_socket_connection_carries_messages_and_handles_both_ways() {
    let path = socket_path("unix-ok");
    let listener = Listener::bind(path.as_path(), KEY).unwrap();
    assert_eq!(listener.address(), &Address::Unix(path.clone()));
    let client = Process::spawn(
        (path.to_str().unwrap().to_string(), KEY.to_vec()),
        client_side,
    )
    .unwrap();
    let conn: Connection<(String, Option<Value<u64>>)> = listener.accept_timeout(DEADLINE).unwrap();
    let (greeting, handle) = conn.recv_timeout(DEADLINE).unwrap();
    assert_eq!(greeting, "hello");
    assert_eq!(handle.expect("a handle crossed").get(), 7);
    // A large message too.
    conn.send(&("x".repeat(10 << 20), None)).unwrap();
    assert_eq!(join(client).unwrap().len(), 10 << 20);
    drop(listener);
    assert!(!path.exists(), "the listener removes its path");
}

#[test]
fn a_tcp_connection_carries_messages_but_refuses_handles() {
    let listener = Listener::bind("127.0.0.1:0", KEY).unwrap();
    let Address::Tcp(address) = listener.address().clone() else {
        panic!("a TCP address")
    };
    assert_ne!(address.port(), 0, "the chosen port is reported");
    let client = Process::spawn((address.to_string(), KEY.to_vec()), client_side).unwrap();
    let conn: Connection<(String, Option<Value<u64>>)> = listener.accept_timeout(DEADLINE).unwrap();
    let (greeting, handle) = conn.recv_timeout(DEADLINE).unwrap();
    assert_eq!(greeting, "hello");
    assert!(handle.is_none());
    let handle = Value::new(1u64).unwrap();
    assert!(matches!(
        conn.send(&("no".into(), Some(handle))),
        Err(SendError::Encode(_))
    ));
    conn.send(&("y".repeat(10 << 20), None)).unwrap();
    assert_eq!(join(client).unwrap(), "y".repeat(10 << 20));
}

/// In a child: connects with `key`, returns the error it got, if any.
fn connect_with((address, key): (String, Vec<u8>)) -> Option<String> {
    match Client::connect::<u32>(address.as_str(), &key) {
        Ok(_) => None,
        Err(ConnectError::AuthFailed) => Some("AuthFailed".into()),
        Err(e) => Some(format!("other: {e}")),
    }
}

#[test]
fn a_wrong_key_fails_on_both_sides_and_nothing_crosses() {
    let path = socket_path("unix-wrong");
    for address in [
        path.to_str().unwrap().to_string(),
        "127.0.0.1:0".to_string(),
    ] {
        let listener = Listener::bind(address.as_str(), KEY).unwrap();
        let address = listener.address().to_string();
        let client =
            Process::spawn((address.clone(), b"a wrong key".to_vec()), connect_with).unwrap();
        assert!(
            matches!(
                listener.accept_timeout::<u32>(DEADLINE),
                Err(ConnectError::AuthFailed)
            ),
            "{address}: the listener refuses"
        );
        assert_eq!(join(client).as_deref(), Some("AuthFailed"), "{address}");
        // The listener goes on: the next client, with the right key, gets in.
        let client = Process::spawn((address.clone(), KEY.to_vec()), connect_with).unwrap();
        listener.accept_timeout::<u32>(DEADLINE).unwrap();
        assert_eq!(join(client), None, "{address}");
    }
}

#[test]
fn a_listener_without_the_key_is_refused_by_the_client() {
    // A fake listener: it says hello, ignores the proof, and claims success with a made-up MAC.
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = fake.local_addr().unwrap().to_string();
    let client = Process::spawn((address, KEY.to_vec()), connect_with).unwrap();
    let (mut stream, _) = fake.accept().unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(b"MPAUTH01").unwrap();
    stream.write_all(&[1; 32]).unwrap();
    let mut proof = [0; 8 + 32 + 32];
    stream.read_exact(&mut proof).unwrap();
    stream.write_all(b"MPAUTHOK").unwrap();
    stream.write_all(&[2; 32]).unwrap();
    assert_eq!(join(client).as_deref(), Some("AuthFailed"));
}

#[test]
fn garbage_and_silence_are_handshake_errors_and_the_listener_goes_on() {
    let listener = Listener::bind("127.0.0.1:0", KEY).unwrap();
    let Address::Tcp(address) = listener.address().clone() else {
        panic!("a TCP address")
    };
    // An HTTP request where the proof should be.
    let mut http = TcpStream::connect(address).unwrap();
    http.write_all(&[b'P'; 72]).unwrap();
    assert!(matches!(
        listener.accept_timeout::<u32>(DEADLINE),
        Err(ConnectError::Protocol(_))
    ));
    // Python 3.12's legacy reply: a 16-byte HMAC-MD5 digest behind `{md5}`, then nothing more.
    let mut legacy = TcpStream::connect(address).unwrap();
    legacy.write_all(b"{md5}0123456789abcdef").unwrap();
    legacy.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(matches!(
        listener.accept_timeout::<u32>(DEADLINE),
        Err(ConnectError::Protocol(_))
    ));
    // A peer that connects and says nothing is dropped at the handshake deadline.
    let _silent = TcpStream::connect(address).unwrap();
    let started = Instant::now();
    assert!(matches!(
        listener.accept_timeout::<u32>(DEADLINE),
        Err(ConnectError::HandshakeTimeout)
    ));
    assert!(started.elapsed() >= HANDSHAKE_TIMEOUT - Duration::from_millis(100));
    // And a real client still gets in.
    let client = Process::spawn((address.to_string(), KEY.to_vec()), connect_with).unwrap();
    listener.accept_timeout::<u32>(DEADLINE).unwrap();
    assert_eq!(join(client), None);
}

#[test]
fn tcp_listens_on_loopback_unless_told_otherwise() {
    assert!(matches!(
        Listener::bind("0.0.0.0:0", KEY),
        Err(ConnectError::NotLoopback { .. })
    ));
    assert!(Listener::bind_remote("0.0.0.0:0", KEY).is_ok());
    assert!(matches!(
        Listener::bind("127.0.0.1:0", b""),
        Err(ConnectError::Os(_))
    ));
}

#[test]
fn an_oversized_tcp_message_is_refused_and_ends_the_connection() {
    let listener = Listener::bind("127.0.0.1:0", KEY).unwrap();
    let address = listener.address().to_string();
    let client = Process::spawn(
        (address, KEY.to_vec()),
        |(address, key): (String, Vec<u8>)| {
            let conn: Connection<Vec<u8>> = Client::connect(address.as_str(), &key).unwrap();
            let _ = conn.send(vec![0; 4096]);
            // The server shuts the connection down: the client sees it closed.
            matches!(conn.recv(), Err(RecvError::Disconnected))
        },
    )
    .unwrap();
    let mut conn: Connection<Vec<u8>> = listener.accept_timeout(DEADLINE).unwrap();
    conn.set_max_message_size(1024);
    assert!(matches!(
        conn.recv_timeout(DEADLINE),
        Err(multiproc::RecvTimeoutError::Recv(
            RecvError::TooLarge { .. }
        ))
    ));
    assert!(join(client), "the client saw the connection end");
}

#[test]
fn another_users_process_is_refused_on_a_unix_socket() {
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("not root: cannot run a process as another user; check not run");
        return;
    }
    let path = socket_path("unix-foreign");
    let listener = Listener::bind(path.as_path(), KEY).unwrap();
    // Let any user connect to the path, so that only the credential check stands in the way.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let client = Process::spawn(
        (path.to_str().unwrap().to_string(), KEY.to_vec()),
        |args: (String, Vec<u8>)| {
            rustix::thread::set_thread_uid(rustix::process::Uid::from_raw(65534)).unwrap();
            connect_with(args)
        },
    )
    .unwrap();
    assert!(matches!(
        listener.accept_timeout::<u32>(DEADLINE),
        Err(ConnectError::ForeignUser { uid: 65534 })
    ));
    assert!(join(client).is_some(), "the client did not get in");
}

/// In a child: connects and sends `n`; the connection's error otherwise.
fn send_number((address, key, n): (String, Vec<u8>, u32)) -> Result<(), String> {
    let conn = Client::connect::<u32>(address.as_str(), &key).map_err(|e| e.to_string())?;
    conn.send(n).map_err(|e| e.to_string())
}

#[test]
fn silent_peers_cost_a_real_client_nothing() {
    let path = socket_path("unix-silent");
    let unix = Listener::bind(path.as_path(), KEY).unwrap();
    let tcp = Listener::bind("127.0.0.1:0", KEY).unwrap();
    // Two peers connect to each first and say nothing (each would hold a one-at-a-time handshake
    // for its whole deadline, and the real client's would expire behind them).
    let mut silent: Vec<Box<dyn std::any::Any>> = Vec::new();
    for listener in [&unix, &tcp] {
        for _ in 0..2 {
            silent.push(match listener.address() {
                Address::Unix(path) => {
                    let socket = rustix::net::socket(
                        rustix::net::AddressFamily::UNIX,
                        rustix::net::SocketType::SEQPACKET,
                        None,
                    )
                    .unwrap();
                    let to = rustix::net::SocketAddrUnix::new(path.as_path()).unwrap();
                    rustix::net::connect(&socket, &to).unwrap();
                    Box::new(socket)
                }
                Address::Tcp(address) => Box::new(TcpStream::connect(address).unwrap()),
            });
        }
    }
    for listener in [&unix, &tcp] {
        let address = listener.address().to_string();
        let client = Process::spawn((address, KEY.to_vec(), 42), send_number).unwrap();
        // The first thing accept gives is the real client, whatever the silent ones do.
        let conn: Connection<u32> = listener.accept_timeout(DEADLINE).unwrap();
        assert_eq!(conn.recv_timeout(DEADLINE).unwrap(), 42);
        assert_eq!(
            join(client),
            Ok(()),
            "the client's handshake did not expire"
        );
    }
    // The silent ones end at their deadline, each as its own error.
    for listener in [&unix, &tcp] {
        for _ in 0..2 {
            assert!(matches!(
                listener.accept_timeout::<u32>(DEADLINE),
                Err(ConnectError::HandshakeTimeout)
            ));
        }
    }
    drop(silent);
}
