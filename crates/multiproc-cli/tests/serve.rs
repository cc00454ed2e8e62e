//! `multiproc serve`: a standalone manager that another program reaches with the address and
//! the key, and that a client can shut down.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use multiproc::Manager;

const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn serve_runs_a_manager_until_a_client_shuts_it_down() {
    let dir = std::env::temp_dir().join(format!("multiproc-cli-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("key");
    std::fs::write(&key_file, b"a key from a file").unwrap();
    let socket = dir.join("manager.sock");
    let _ = std::fs::remove_file(&socket);
    let mut server = Command::new(env!("CARGO_BIN_EXE_multiproc"))
        .arg("serve")
        .arg("--address")
        .arg(&socket)
        .arg("--authkey-file")
        .arg(&key_file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + DEADLINE;
    let manager = loop {
        match Manager::connect(socket.as_path(), b"a key from a file") {
            Ok(manager) => break manager,
            Err(e) if Instant::now() > deadline => {
                let _ = server.kill();
                panic!("multiproc serve never answered: {e}");
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let d = manager.dict_named::<String, i64>("cli").unwrap();
    assert_eq!(d.incr(&"n".to_string(), 3).unwrap(), 3);
    assert!(Manager::connect(socket.as_path(), b"not the key").is_err());
    // An HTTP request: closed at once, and logged (faults.md row 10).
    let mut http = UnixStream::connect(&socket).unwrap();
    http.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    http.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut answer = Vec::new();
    http.read_to_end(&mut answer).unwrap();
    assert!(
        answer.starts_with(b"MPAUTH01") && answer.len() == 40,
        "only the challenge"
    );
    manager.shutdown().unwrap();
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            panic!("multiproc serve did not exit after shutdown");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "{status:?}");
    let mut log = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        log.contains("refused a connection: authentication failed"),
        "{log}"
    );
    assert!(log.contains("not a multiproc client (bad magic)"), "{log}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn serve_refuses_an_open_interface_without_the_opt_in() {
    let dir = std::env::temp_dir().join(format!("multiproc-cli-open-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("key");
    std::fs::write(&key_file, b"k").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_multiproc"))
        .args(["serve", "--address", "0.0.0.0:0", "--authkey-file"])
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a loopback address"),
        "{out:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
