//! `multiproc serve`: a standalone manager that another program reaches with the address and
//! the key, and that a client can shut down.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use multiproc::Manager;

mod common;

const DEADLINE: Duration = Duration::from_secs(30);

/// A `multiproc serve` process, killed however the test ends: a survivor would hold the test's
/// output open and stall the run.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    /// Runs `multiproc serve` on the Unix socket `socket`, with the key in `key_file` and its
    /// standard error on `stderr`.
    fn start(socket: &std::path::Path, key_file: &std::path::Path, stderr: Stdio) -> Server {
        Server(
            Command::new(env!("CARGO_BIN_EXE_multiproc"))
                .arg("serve")
                .arg("--address")
                .arg(socket)
                .arg("--authkey-file")
                .arg(key_file)
                .stderr(stderr)
                .spawn()
                .unwrap(),
        )
    }

    /// Waits (at most the deadline) for the server to exit by itself.
    fn exits(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "multiproc serve did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Connects to the server at `socket` as soon as it listens.
fn connect(socket: &std::path::Path, key: &[u8]) -> Manager {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match Manager::connect(socket, key) {
            Ok(manager) => return manager,
            Err(e) => assert!(
                Instant::now() < deadline,
                "multiproc serve never answered: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn serve_runs_a_manager_until_a_client_shuts_it_down() {
    let (dir, key_file) = common::dir_with_key("serve", b"a key from a file");
    let socket = dir.join("manager.sock");
    let _ = std::fs::remove_file(&socket);
    let mut server = Server::start(&socket, &key_file, Stdio::piped());
    let manager = connect(&socket, b"a key from a file");
    let d = manager.dict_named::<String, i64>("cli").unwrap();
    assert_eq!(d.incr("n", 3).unwrap(), 3);
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
    let status = server.exits();
    assert!(status.success(), "{status:?}");
    let mut log = String::new();
    server
        .0
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
    let (dir, key_file) = common::dir_with_key("open", b"k");
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

#[test]
fn a_standard_error_that_nobody_reads_does_not_stop_the_server() {
    let (dir, key_file) = common::dir_with_key("stuck", b"stuck key");
    let socket = dir.join("manager.sock");
    let _ = std::fs::remove_file(&socket);
    // A small pipe for the server's standard error, never read.
    let (_never_read, stderr) = rustix::pipe::pipe().unwrap();
    rustix::pipe::fcntl_setpipe_size(&stderr, 4096).unwrap();
    let ours = stderr.try_clone().unwrap();
    let mut server = Server::start(&socket, &key_file, Stdio::from(stderr));
    let manager = connect(&socket, b"stuck key");
    // Fill the pipe: from now on, any write to the server's standard error would block.
    // (A write of up to 4096 bytes to a pipe is all or nothing: fill down to the last byte.)
    rustix::io::ioctl_fionbio(&ours, true).unwrap();
    for chunk in [4096, 512, 64, 1] {
        while rustix::io::write(&ours, &vec![b'x'; chunk]).is_ok() {}
    }
    rustix::io::ioctl_fionbio(&ours, false).unwrap();
    // Refusals the server logs: wrong keys and HTTP requests.
    for _ in 0..10 {
        assert!(Manager::connect(socket.as_path(), b"wrong").is_err());
        let mut http = UnixStream::connect(&socket).unwrap();
        http.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        http.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut answer = Vec::new();
        assert!(
            http.read_to_end(&mut answer).is_ok(),
            "closed by the server"
        );
    }
    // A real client still gets in and is served, and shutdown still ends the server.
    let late = Manager::connect(socket.as_path(), b"stuck key").unwrap();
    let d = late.dict_named::<String, u32>("late").unwrap();
    assert_eq!(d.incr("n", 1).unwrap(), 1);
    manager.shutdown().unwrap();
    let status = server.exits();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Whether process `pid` has ended (gone, or a zombie nobody reaped yet).
fn has_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

#[test]
fn a_server_started_by_another_program_serves_the_socket_it_was_given_and_dies_with_it() {
    use std::io::BufRead;
    use std::os::fd::AsRawFd;
    // The starter is bash, not a multiproc program: it passes the socket as descriptor 3
    // (socket activation) and its own pid, and is then killed.
    let (dir, key_file) = common::dir_with_key("activated", b"the starter's key");
    let socket = dir.join("manager.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    rustix::io::fcntl_setfd(&listener, rustix::io::FdFlags::empty()).unwrap();
    let n = listener.as_raw_fd();
    // Descriptor n becomes 3 in the server (bash: n may be above 9), and is closed there.
    let moved = if n == 3 {
        String::new()
    } else {
        format!("3<&{n} {n}<&-")
    };
    let script = format!(
        "{cli} serve --socket-activated --authkey-file {key} --parent-pid $$ {moved} & \
         echo $!; wait",
        cli = env!("CARGO_BIN_EXE_multiproc"),
        key = key_file.display(),
    );
    let mut starter = Server(
        Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("LISTEN_FDS", "1")
            .env_remove("LISTEN_PID")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufReader::new(starter.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server: u32 = line.trim().parse().expect("the server's pid");
    drop(listener);
    let manager = connect(&socket, b"the starter's key");
    let d = manager.dict_named::<String, u32>("given").unwrap();
    d.insert("n", 1).unwrap();
    assert_eq!(d.get("n").unwrap(), Some(1));
    starter.0.kill().unwrap();
    starter.0.wait().unwrap();
    let deadline = Instant::now() + DEADLINE;
    while !has_ended(server) {
        assert!(
            Instant::now() < deadline,
            "the server outlived the program that started it"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(d.len().is_err(), "the server is gone");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_without_a_passed_socket_or_with_a_parent_already_gone_fails_at_once() {
    let (dir, key_file) = common::dir_with_key("refused", b"k");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_multiproc"))
            .arg("serve")
            .args(args)
            .arg("--authkey-file")
            .arg(&key_file)
            .env_remove("LISTEN_FDS")
            .output()
            .unwrap()
    };
    let none = run(&["--socket-activated"]);
    assert!(!none.status.success());
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("descriptor 3"),
        "{none:?}"
    );
    let socket = dir.join("s.sock");
    // A pid that is not this server's parent (pid 1 is no one's parent here but init's).
    let orphan = run(&["--address", socket.to_str().unwrap(), "--parent-pid", "1"]);
    assert!(!orphan.status.success());
    assert!(
        String::from_utf8_lossy(&orphan.stderr).contains("already gone"),
        "{orphan:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The lines a server writes on its standard error, each awaited with the deadline.
struct Said(std::sync::mpsc::Receiver<String>);

impl Said {
    fn of(server: &mut Server) -> Said {
        use std::io::BufRead;
        let stderr = server.0.stderr.take().expect("stderr piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Said(rx)
    }

    /// The first line containing `what`, within the deadline.
    fn until(&self, what: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => {}
                Err(e) => panic!("multiproc serve never said {what:?}: {e}"),
            }
        }
    }
}

fn signal(server: &Server, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(server.0.id() as i32).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
}

#[test]
fn serve_says_it_serves_once_it_listens_and_removes_its_socket_when_stopped() {
    // Written as `echo` would: the newline is part of the key, and the server says so.
    let (dir, key_file) = common::dir_with_key("stop", b"a key\n");
    let socket = dir.join("manager.sock");
    for stop in [rustix::process::Signal::TERM, rustix::process::Signal::INT] {
        let mut server = Server::start(&socket, &key_file, Stdio::piped());
        let said = Said::of(&mut server);
        assert!(said.until("note:").contains("trailing newline included"));
        said.until("serving on");
        // Listening already: the first attempt connects, with the file's bytes as the key.
        let manager = Manager::connect(socket.as_path(), b"a key\n").unwrap();
        manager.dict_named::<String, u8>("d").unwrap();
        drop(manager);
        signal(&server, stop);
        let status = server.exits();
        assert!(status.success(), "{stop:?}: {status:?}");
        // Nothing left behind: the next server on the same path starts (the loop's second turn).
        assert!(!socket.exists(), "{stop:?}: the socket file is still there");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_socket_a_killed_server_left_is_replaced_and_a_live_servers_is_refused() {
    let (dir, key_file) = common::dir_with_key("stale", b"stale key");
    let socket = dir.join("manager.sock");
    let mut first = Server::start(&socket, &key_file, Stdio::piped());
    Said::of(&mut first).until("serving on");
    // A second server on a live server's socket fails at once, saying why.
    let mut second = Server::start(&socket, &key_file, Stdio::piped());
    let said = Said::of(&mut second);
    assert!(said.until("multiproc serve:").contains("already listens"));
    assert!(!second.exits().success());
    // Killed, the first leaves its socket file; the next server replaces it.
    signal(&first, rustix::process::Signal::KILL);
    first.exits();
    assert!(socket.exists());
    let mut third = Server::start(&socket, &key_file, Stdio::piped());
    Said::of(&mut third).until("serving on");
    let manager = Manager::connect(socket.as_path(), b"stale key").unwrap();
    manager.shutdown().unwrap();
    assert!(third.exits().success());
    assert!(!socket.exists());
    let _ = std::fs::remove_dir_all(dir);
}
