//! The Python package's tests, run by `cargo test --workspace`: a virtual environment with
//! maturin and pytest (made once, under the target directory), the package built and installed
//! into it by `maturin develop`, then pytest over `tests/` in a real CPython importing it. A
//! missing `python3`, a failed install or build, or no test collected fails this test; each
//! step has a deadline. And a Rust process and a Python process share one dict.

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
        .args(["-c", "import maturin, pytest"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_tools {
        run(
            "pip install maturin pytest",
            Command::new(&python).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--timeout",
                "60",
                "maturin>=1.5,<2",
                "pytest",
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
print("python was here", flush=True)
"#;

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Employee {
    name: String,
    salary: u32,
    badge: Vec<u8>,
}

#[test]
fn a_rust_process_and_a_python_process_share_one_dict() {
    let venv = ready();
    let manager = multiproc::Manager::builder()
        .authkey(b"both languages")
        .start()
        .unwrap();
    let typed = manager.dict_named::<String, Employee>("staff").unwrap();
    typed
        .insert(
            &"ann".to_string(),
            &Employee {
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
        typed.get(&"bob".to_string()).unwrap(),
        Some(Employee {
            name: "Bob".into(),
            salary: 90,
            badge: vec![3]
        })
    );
    let counts = manager.dict_named::<String, i64>("staff").unwrap();
    assert_eq!(counts.get(&"raises".to_string()).unwrap(), Some(2));
}
