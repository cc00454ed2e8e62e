//! A client in another language, written from `docs/manager-protocol.md` alone: CPython with its
//! standard library only (`protocol_client.py`), against a real manager, sharing objects with
//! this Rust process. A missing `python3` fails the test.

multiproc::test_support!();

use std::process::Command;

use multiproc::{Address, DictProxy, Manager};

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Employee {
    name: String,
    salary: u32,
    badge: Vec<u8>,
}

#[test]
fn a_python_client_written_from_the_protocol_page_shares_objects_with_rust() {
    let manager = Manager::builder()
        .authkey(b"a key both languages hold")
        .start()
        .unwrap();
    let staff: DictProxy<String, Employee> = manager.dict_named("staff").unwrap();
    let ann = Employee {
        name: "Ann".into(),
        salary: 100,
        badge: vec![1, 2],
    };
    staff.insert("ann", &ann).unwrap();
    let Address::Unix(socket) = manager.address() else {
        panic!("a Unix socket")
    };
    let key: String = manager
        .authkey()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/protocol_client.py");
    let run = Command::new("python3")
        .arg(script)
        .arg(socket)
        .arg(&key)
        .output()
        .expect("python3 runs (the test needs it)");
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the Python client failed:\n{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let checks = [
        "hello",
        "struct-as-map",
        "key-identity",
        "release-frees",
        "references",
        "cycle",
        "loan",
        "lists",
        "lock",
        "version",
    ];
    for check in checks {
        assert!(
            out.lines().any(|l| l == format!("ok {check}")),
            "{check}: {out}"
        );
    }
    // What it stored by field name reads here as the struct.
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
