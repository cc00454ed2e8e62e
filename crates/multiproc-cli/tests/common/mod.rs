//! What the command's tests share (each test binary uses some of it).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use multiproc::{Event, JoinError, Process, SharedMemory};

/// Makes the named block `name` in a child that is then SIGKILLed: a block nobody holds any
/// more, as a crashed program leaves one.
pub fn abandoned_block(name: &str) {
    let created = Event::new().unwrap();
    let mut owner = Process::spawn(
        (name.to_owned(), created.clone()),
        |(name, created): (String, Event)| -> () {
            let _shm = SharedMemory::create_named(&name, 16).unwrap();
            created.set();
            loop {
                std::thread::park();
            }
        },
    )
    .unwrap();
    created
        .wait_timeout(Duration::from_secs(30))
        .expect("the child created its block");
    owner.kill().unwrap();
    assert!(matches!(
        owner.join_timeout(Duration::from_secs(30)),
        Err(JoinError::Signaled { signal: 9 })
    ));
}

/// Runs `multiproc ARGS...`, which must succeed; its standard output.
pub fn multiproc(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_multiproc"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A fresh directory of this run (`multiproc-cli-TAG-PID` in the temporary directory) holding a
/// key file of `key`: the directory and the key file's path.
pub fn dir_with_key(tag: &str, key: &[u8]) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("multiproc-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("key");
    std::fs::write(&key_file, key).unwrap();
    (dir, key_file)
}
