//! The Python package's tests, run by `cargo test --workspace`: a virtual environment with
//! maturin and pytest (made once, under the target directory), the package built and installed
//! into it by `maturin develop`, then pytest over `tests/` in a real CPython importing it. A
//! missing `python3`, a failed install or build, or no test collected fails this test; each
//! step has a deadline.

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

#[test]
fn the_python_package_passes_its_tests_in_a_real_cpython() {
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let venv = environment(&scratch);
    let bin = venv.join("bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run(
        "maturin develop",
        Command::new(bin.join("maturin"))
            .args(["develop", "--quiet"])
            .current_dir(package_dir())
            .env("VIRTUAL_ENV", &venv)
            .env("PATH", &path)
            // Its own target directory: the one of this `cargo test` is locked while it runs.
            .env("CARGO_TARGET_DIR", scratch.join("python-build")),
        Duration::from_secs(1200),
    );
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
