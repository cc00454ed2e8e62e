//! `multiproc ls` and `multiproc stats`: what a user reaches for when something is stuck, read by
//! people or (`--json`) by scripts.

multiproc::test_support!();

mod common;

use std::process::Command;

use common::{abandoned_block, dir_with_key, multiproc};
use multiproc::{Manager, SharedMemory};

#[test]
fn ls_lists_blocks_and_manager_sockets_with_their_owners() {
    let me = std::process::id();
    let live_name = format!("cli-ls-live-{me}");
    let dead_name = format!("cli-ls-dead-{me}");
    let live = SharedMemory::create_named(&live_name, 4096).unwrap();
    abandoned_block(&dead_name);
    let manager = Manager::start().unwrap();
    let multiproc::Address::Unix(socket) = manager.address().clone() else {
        panic!("a Unix socket")
    };

    let table = multiproc(&["ls"]);
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} not listed:\n{table}"))
            .to_owned()
    };
    assert!(
        row(&live_name).contains(&format!("held by {me}")),
        "{table}"
    );
    assert!(row(&dead_name).contains("abandoned"), "{table}");
    let dir = socket
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    assert!(row(dir).starts_with("manager-socket"), "{table}");
    assert!(row(dir).contains(&format!("held by {me}")), "{table}");

    // The same, for scripts: one JSON object a line.
    let objects: Vec<serde_json::Value> = multiproc(&["ls", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let find = |name: &str| {
        objects
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {objects:?}"))
    };
    let listed = find(&live_name);
    assert_eq!(listed["kind"], "shared-memory");
    assert!(listed["size"].as_u64().unwrap() >= 4096);
    assert_eq!(listed["owners"], serde_json::json!([me]));
    assert_eq!(listed["held"], true);
    assert_eq!(find(&dead_name)["held"], false);
    assert_eq!(find(&dead_name)["owners"], serde_json::json!([]));
    let listed = find(dir);
    assert_eq!(listed["kind"], "manager-socket");
    assert_eq!(listed["path"], socket.display().to_string());
    assert!(listed["size"].is_null());

    live.unlink().unwrap();
    drop(manager);
    multiproc(&["clean"]);
    assert!(!multiproc(&["ls"]).contains(&dead_name));
}

#[test]
fn stats_prints_a_managers_counters() {
    let (dir, key_file) = dir_with_key("stats", b"stats key");
    let manager = Manager::builder().authkey(b"stats key").start().unwrap();
    let _d = manager.dict::<String, u32>().unwrap();
    let _l = manager.list::<u32>().unwrap();
    assert!(Manager::connect(manager.address().clone(), b"wrong key").is_err());
    let address = manager.address().to_string();
    let key = key_file.to_str().unwrap();

    let printed = multiproc(&["stats", &address, "--authkey-file", key]);
    assert!(
        printed.starts_with(&format!("manager at {address}")),
        "{printed}"
    );
    assert!(
        printed.lines().any(|l| l.trim() == "objects        2"),
        "{printed}"
    );
    let json: serde_json::Value = serde_json::from_str(&multiproc(&[
        "stats",
        &address,
        "--authkey-file",
        key,
        "--json",
    ]))
    .unwrap();
    assert_eq!(json["address"], address);
    assert_eq!(json["objects"], 2);
    assert!(json["auth_failures"].as_u64().unwrap() >= 1);
    assert!(json["connections"].as_u64().unwrap() >= 2); // ours and the command's

    // A wrong key is an error that says where.
    std::fs::write(&key_file, b"not it").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_multiproc"))
        .args(["stats", &address, "--authkey-file", key])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&address) && said.contains("authentication"),
        "{said}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
