//! The Python package's tests, run by `cargo test --workspace`: a virtual environment with
//! maturin, pytest and mypy (made once, under the target directory), the package built and
//! installed into it by `maturin develop`, then pytest over `tests/` in a real CPython importing
//! it (CPython's own manager tests among them). A missing `python3`, a failed install or build,
//! or no test collected fails this test; each step has a deadline. And a Rust process and a
//! Python process share a dict, a queue and a lock, each starting the manager in turn.

multiproc::test_support!();

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `command` to its end within `limit`, or kills it; panics unless it succeeded.
fn run(what: &str, command: &mut Command, limit: Duration) {
    let mut child = command
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}, killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{what}: {status}");
}

fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The virtual environment, with maturin and pytest: made if missing.
fn environment(scratch: &Path) -> PathBuf {
    let venv = scratch.join("python-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run(
            "python3 -m venv",
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
            Duration::from_secs(120),
        );
    }
    let has_tools = Command::new(&python)
        .args(["-c", "import maturin, pytest, mypy"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_tools {
        run(
            "pip install maturin pytest mypy",
            Command::new(&python).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--timeout",
                "60",
                "maturin>=1.5,<2",
                "pytest",
                "mypy",
            ]),
            Duration::from_secs(600),
        );
    }
    venv
}

fn scratch() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

fn path_with(bin: &Path) -> String {
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The environment with the package built and installed: made once for this test binary (its
/// tests run at once).
fn ready() -> PathBuf {
    static READY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    READY
        .get_or_init(|| {
            let venv = environment(&scratch());
            let bin = venv.join("bin");
            run(
                "maturin develop",
                Command::new(bin.join("maturin"))
                    .args(["develop", "--quiet"])
                    .current_dir(package_dir())
                    .env("VIRTUAL_ENV", &venv)
                    .env("PATH", path_with(&bin))
                    // Its own target directory: this `cargo test`'s is locked while it runs.
                    .env("CARGO_TARGET_DIR", scratch().join("python-build")),
                Duration::from_secs(1200),
            );
            venv
        })
        .clone()
}

#[test]
fn the_python_package_passes_its_tests_in_a_real_cpython() {
    let venv = ready();
    let bin = venv.join("bin");
    let path = path_with(&bin);
    let scratch = scratch();
    // pytest exits 5 when it collects nothing: a failure here, as any other.
    run(
        "pytest",
        Command::new(bin.join("python"))
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(package_dir().join("tests"))
            .current_dir(&scratch)
            .env("PATH", &path),
        Duration::from_secs(600),
    );
}

/// The script the Python process runs against the Rust process's manager.
const SHARES_WITH_RUST: &str = r#"
import sys
import multiproc
m = multiproc.connect(sys.argv[1], bytes.fromhex(sys.argv[2]))
staff = m.dict(name="staff")
ann = staff["ann"]
assert ann == {"name": "Ann", "salary": 100, "badge": b"\x01\x02"}, ann
staff["bob"] = {"name": "Bob", "salary": ann["salary"] - 10, "badge": b"\x03"}
staff.incr("raises", 2)
jobs = m.Queue(name="jobs")
for job in range(3):
    jobs.put({"job": job})
door = m.Lock(name="door")
assert door.acquire(False) is False  # the Rust process holds it
# A type compiled into the Rust server, called from Python.
emp = m.object("Employee", {"name": "zhangsan", "salary": 1000}, name="emp")
for _ in range(10):
    emp.call("increase")
assert emp.call("get_pay") == "zhangsan:2000", emp.state
print("python was here", flush=True)
"#;

/// The script of a Python process that starts the manager a Rust process then joins: it shares a
/// dict, a queue and a lock by name, prints its address, waits for the Rust side to say it is
/// done, and checks what it did.
const RUST_JOINS_PYTHON: &str = r#"
import sys
from multiproc import SyncManager
with SyncManager(authkey=b"python's key") as m:
    staff = m.dict(name="staff")
    staff["ann"] = {"name": "Ann", "salary": 100, "badge": b"\x01\x02"}
    jobs = m.Queue(name="jobs")
    door = m.Lock(name="door")
    door.acquire()
    print(m.address, flush=True)
    assert sys.stdin.readline() == "done\n"
    assert staff["bob"] == {"name": "Bob", "salary": 90, "badge": b"\x03"}, staff["bob"]
    assert [jobs.get(timeout=10) for _ in range(3)] == [0, 1, 2]
    door.release()
    print("python saw rust", flush=True)
    # The manager lives until Rust says it took the lock (leaving `with` shuts it down).
    assert sys.stdin.readline() == "taken\n"
"#;

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Staff {
    name: String,
    salary: u32,
    badge: Vec<u8>,
}

/// The reference's Employee, compiled into the Rust server, called from Python.
#[derive(serde::Serialize, serde::Deserialize)]
struct Employee {
    name: String,
    salary: i64,
}

impl multiproc::Shared for Employee {
    const TYPE_NAME: &'static str = "Employee";

    fn call(
        &mut self,
        method: &str,
        _args: multiproc::Args,
    ) -> Result<multiproc::Reply, multiproc::CallError> {
        match method {
            "increase" => {
                self.salary += 100;
                Ok(multiproc::Reply::unit())
            }
            "get_pay" => multiproc::Reply::of(&format!("{}:{}", self.name, self.salary)),
            _ => Err(multiproc::CallError::not_exposed(method)),
        }
    }
}

#[test]
fn a_python_process_joins_a_rust_managers_dict_queue_lock_and_rust_type() {
    let venv = ready();
    let manager = multiproc::Manager::builder()
        .authkey(b"both languages")
        .register::<Employee>()
        .start()
        .unwrap();
    let jobs = manager
        .queue_named::<std::collections::HashMap<String, u32>>("jobs")
        .unwrap();
    let door = manager.lock_named("door").unwrap();
    let held = door.acquire().unwrap();
    let typed = manager.dict_named::<String, Staff>("staff").unwrap();
    typed
        .insert(
            "ann".to_string(),
            &Staff {
                name: "Ann".into(),
                salary: 100,
                badge: vec![1, 2],
            },
        )
        .unwrap();
    let multiproc::Address::Unix(socket) = manager.address() else {
        panic!("a Unix socket")
    };
    let key: String = manager
        .authkey()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    ready();
    run(
        "python shares with rust",
        Command::new(venv.join("bin/python"))
            .args(["-c", SHARES_WITH_RUST])
            .arg(socket)
            .arg(&key),
        Duration::from_secs(120),
    );
    assert_eq!(
        typed.get("bob").unwrap(),
        Some(Staff {
            name: "Bob".into(),
            salary: 90,
            badge: vec![3]
        })
    );
    let counts = manager.dict_named::<String, i64>("staff").unwrap();
    assert_eq!(counts.get("raises").unwrap(), Some(2));
    for job in 0..3 {
        let item = jobs.get_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(item.get("job"), Some(&job));
    }
    drop(held);
    let emp = manager
        .create_named(
            "emp",
            &Employee {
                name: "nobody".into(),
                salary: 0,
            },
        )
        .unwrap();
    assert_eq!(
        emp.call::<_, String>("get_pay", &()).unwrap(),
        "zhangsan:2000"
    );
}

/// A child process killed when the test ends, passed or failed: none outlives it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_rust_process_joins_a_python_managers_dict_queue_and_lock() {
    use std::io::{BufRead, BufReader, Write};
    let venv = ready();
    let mut python = KillOnDrop(
        Command::new(venv.join("bin/python"))
            .args(["-c", RUST_JOINS_PYTHON])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Its lines come through a thread, so that each is awaited with a deadline.
    let (line_tx, lines) = std::sync::mpsc::channel();
    let stdout = python.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = line_tx.send(line.unwrap_or_default());
        }
    });
    let next_line = || {
        lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the Python process said nothing within 60 s, or ended")
    };
    let address = next_line();
    let manager = multiproc::Manager::connect(address.as_str(), b"python's key").unwrap();
    let staff = manager.dict_named::<String, Staff>("staff").unwrap();
    let ann = staff.get("ann").unwrap().unwrap();
    assert_eq!(ann.badge, vec![1, 2]);
    staff
        .insert(
            "bob".to_string(),
            &Staff {
                name: "Bob".into(),
                salary: ann.salary - 10,
                badge: vec![3],
            },
        )
        .unwrap();
    let jobs = manager.queue_named::<u32>("jobs").unwrap();
    for job in 0..3 {
        jobs.put(job).unwrap();
    }
    let door = manager.lock_named("door").unwrap();
    assert!(door.try_acquire().is_err(), "the Python process holds it");
    let mut stdin = python.0.stdin.take().unwrap();
    stdin.write_all(b"done\n").unwrap();
    stdin.flush().unwrap();
    // The Python process released the lock once it had checked: it is free for Rust now.
    let taken = door.acquire_timeout(Duration::from_secs(30)).unwrap();
    drop(taken);
    assert_eq!(next_line(), "python saw rust");
    stdin.write_all(b"taken\n").unwrap();
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = python.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the Python process did not end");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}
