//! Named shared memory: exclusive creation, attach by name, unlink, and the clean-up of segments
//! whose owners died (CPython's `test_shared_memory_*` cases, plus the faults of faults.md rows 20
//! to 22: dead owners, squatted names, a full memory filesystem).

multiproc::test_support!();

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{DEADLINE, park_forever};
use multiproc::{Event, JoinError, Process, SharedMemory, ShmError};

/// A name no other test or concurrent run uses.
fn name(tag: &str) -> String {
    format!("t{}-{tag}", std::process::id())
}

#[test]
fn a_named_block_is_met_by_name_and_outlives_processes_that_only_attach() {
    let name = name("attach");
    let shm = SharedMemory::create_named(&name, 100).unwrap();
    assert_eq!((shm.name(), shm.len()), (Some(name.as_str()), 100));
    let mut child = Process::spawn(name.clone(), |name: String| {
        let same = SharedMemory::open(&name).unwrap();
        same.write_at(0, b"from the child").unwrap();
        same.len()
    })
    .unwrap();
    assert_eq!(
        child.join_timeout(DEADLINE).unwrap(),
        100,
        "the size on attach is the size asked"
    );
    let mut out = [0u8; 14];
    shm.read_at(0, &mut out).unwrap();
    assert_eq!(&out, b"from the child");
    // The child that attached and exited did not remove it.
    let again = SharedMemory::open(&name).unwrap();
    again.read_at(0, &mut out).unwrap();
    assert_eq!(&out, b"from the child");
    shm.unlink().unwrap();
    assert!(matches!(
        SharedMemory::open(&name),
        Err(ShmError::NotFound { .. })
    ));
    assert!(matches!(shm.unlink(), Err(ShmError::NotFound { .. })));
    // Those who have it keep it after the unlink.
    again.write_at(0, b"still mapped").unwrap();
}

#[test]
fn creation_is_exclusive_while_an_owner_lives() {
    let name = name("exclusive");
    let first = SharedMemory::create_named(&name, 8).unwrap();
    assert!(matches!(
        SharedMemory::create_named(&name, 8),
        Err(ShmError::AlreadyExists { .. })
    ));
    let mut child = Process::spawn(name.clone(), |name: String| {
        matches!(
            SharedMemory::create_named(&name, 8),
            Err(ShmError::AlreadyExists { .. })
        )
    })
    .unwrap();
    assert!(
        child.join_timeout(DEADLINE).unwrap(),
        "another process is refused too"
    );
    first.unlink().unwrap();
}

#[test]
fn bad_names_and_missing_names_are_errors() {
    for bad in ["", "a/b", "..", "with space", &"x".repeat(201)] {
        assert!(
            matches!(
                SharedMemory::create_named(bad, 8),
                Err(ShmError::InvalidName { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        SharedMemory::open(&name("never-made")),
        Err(ShmError::NotFound { .. })
    ));
}

/// A child creates `name` and is SIGKILLed while it holds it.
fn create_and_die(name: &str) {
    let created = Event::new().unwrap();
    let mut owner = Process::spawn(
        (name.to_owned(), created.clone()),
        |(name, created): (String, Event)| -> () {
            let shm = SharedMemory::create_named(&name, 32).unwrap();
            shm.write_at(0, b"left by the dead").unwrap();
            created.set();
            park_forever()
        },
    )
    .unwrap();
    created
        .wait_timeout(DEADLINE)
        .expect("the child created it");
    owner.kill().unwrap();
    assert!(matches!(
        owner.join_timeout(DEADLINE),
        Err(JoinError::Signaled { signal: 9 })
    ));
}

#[test]
fn a_dead_owners_segment_is_cleaned_and_a_live_ones_is_not() {
    let dead = name("dead");
    let live = name("live");
    create_and_die(&dead);
    // The segment outlived its SIGKILLed creator, as in Python...
    assert!(SharedMemory::open(&dead).is_ok());
    // ...until a sweep, which leaves live ones alone.
    let live_owned = SharedMemory::create_named(&live, 8).unwrap();
    // Removed by this sweep, or by one another test of this file runs at the same time.
    let removed = SharedMemory::clean_dead().unwrap();
    assert!(!removed.contains(&live), "{removed:?}");
    assert!(matches!(
        SharedMemory::open(&dead),
        Err(ShmError::NotFound { .. })
    ));
    assert!(SharedMemory::open(&live).is_ok());
    live_owned.unlink().unwrap();
}

#[test]
fn a_dead_owners_name_can_be_created_again() {
    let name = name("recreate");
    create_and_die(&name);
    let fresh = SharedMemory::create_named(&name, 32).unwrap();
    let mut out = [0u8; 16];
    fresh.read_at(0, &mut out).unwrap();
    assert_eq!(out, [0; 16], "a new segment, not the dead owner's");
    fresh.unlink().unwrap();
}

#[test]
fn a_squatted_name_is_never_attached_nor_removed() {
    // Someone made /dev/shm/multiproc.NAME open to everybody (mode 0666): refuse it.
    let name = name("squat");
    let path = format!("/dev/shm/multiproc.{name}");
    std::fs::write(&path, vec![0u8; 4096]).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(matches!(
        SharedMemory::open(&name),
        Err(ShmError::PermissionDenied { .. })
    ));
    assert!(matches!(
        SharedMemory::create_named(&name, 8),
        Err(ShmError::AlreadyExists { .. })
    ));
    assert!(!SharedMemory::clean_dead().unwrap().contains(&name));
    assert!(
        std::path::Path::new(&path).exists(),
        "the sweep left a file that is not ours alone"
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn more_than_the_memory_available_is_an_error_not_a_crash() {
    let huge = 1 << 40; // 1 TiB
    assert!(matches!(
        SharedMemory::create(huge),
        Err(ShmError::OutOfSpace { .. })
    ));
    let name = name("huge");
    assert!(matches!(
        SharedMemory::create_named(&name, huge),
        Err(ShmError::OutOfSpace { .. })
    ));
    assert!(
        matches!(SharedMemory::open(&name), Err(ShmError::NotFound { .. })),
        "nothing left behind"
    );
}

#[test]
fn anonymous_segments_leave_nothing_behind_when_their_holders_are_killed() {
    // Named segments of this test binary's other tests, and their transient creation files, come
    // and go meanwhile; anything else new in /dev/shm would be a leak.
    fn ours() -> Vec<String> {
        let this_binary = format!("multiproc.t{}-", std::process::id());
        let mut names: Vec<String> = std::fs::read_dir("/dev/shm")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("multiproc"))
            .filter(|n| !n.starts_with(&this_binary) && !n.starts_with("multiproc-creating."))
            .collect();
        names.sort();
        names
    }
    let before = ours();
    let made = Event::new().unwrap();
    let mut holder = Process::spawn(made.clone(), |made: Event| -> () {
        let _kept = (
            (0..10)
                .map(|_| SharedMemory::create(1 << 16).unwrap())
                .collect::<Vec<_>>(),
            multiproc::Value::new(1u64).unwrap(),
            multiproc::Lock::new().unwrap(),
        );
        made.set();
        park_forever()
    })
    .unwrap();
    made.wait_timeout(DEADLINE).expect("the child made it");
    holder.kill().unwrap();
    assert!(matches!(
        holder.join_timeout(DEADLINE),
        Err(JoinError::Signaled { signal: 9 })
    ));
    // Anonymous segments are memfds: no name exists to leak, and the kernel frees the memory with
    // the last descriptor.
    assert_eq!(ours(), before);
}

#[test]
fn a_sweep_removes_a_dead_creators_unfinished_file_but_not_a_live_ones() {
    // A file being created has no owner lock for a moment: only its creator's death (the pid in
    // its name) lets a sweep remove it.
    let mut child = Process::spawn((), |()| std::process::id()).unwrap();
    let dead_pid = child.join_timeout(DEADLINE).unwrap();
    let dead = format!("/dev/shm/multiproc-creating.{dead_pid}.900");
    let live = format!("/dev/shm/multiproc-creating.{}.901", std::process::id());
    for path in [&dead, &live] {
        std::fs::write(path, b"").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    SharedMemory::clean_dead().unwrap();
    let dead_left = std::path::Path::new(&dead).exists();
    let live_left = std::path::Path::new(&live).exists();
    let _ = std::fs::remove_file(&dead);
    let _ = std::fs::remove_file(&live);
    assert!(!dead_left, "a dead creator's file is swept");
    assert!(live_left, "a live creator's file is left alone");
}

#[test]
fn a_named_block_shrunk_by_another_process_is_an_error_not_a_crash() {
    let name = name("shrunk");
    let size = 3 * 4096;
    let shm = SharedMemory::create_named(&name, size).unwrap();
    shm.write_at(0, b"before").unwrap();
    let shrink = |to: u64| {
        let process = Process::spawn((name.clone(), to), |(name, to): (String, u64)| {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(format!("/dev/shm/multiproc.{name}"))
                .unwrap();
            file.set_len(to).unwrap();
        });
        common::join(process.unwrap());
    };
    // A child attached before the shrink reads after it: a SIGBUS would be its death, and this
    // test's failure.
    let (attached, shrunk) = (Event::new().unwrap(), Event::new().unwrap());
    let in_child = Process::spawn(
        (shm.clone(), attached.clone(), shrunk.clone()),
        |(shm, attached, shrunk): (SharedMemory, Event, Event)| {
            attached.set();
            shrunk.wait_timeout(DEADLINE).unwrap();
            let mut out = [0u8; 8];
            let read = shm.read_at(8192, &mut out);
            let write = shm.write_at(8192, b"after");
            let mut kept = [0u8; 6];
            shm.read_at(0, &mut kept).unwrap();
            (
                matches!(read, Err(ShmError::Shrunk { .. })),
                matches!(write, Err(ShmError::Shrunk { .. })),
                kept.to_vec(),
            )
        },
    )
    .unwrap();
    attached.wait_timeout(DEADLINE).unwrap();
    // Another process of the user cuts the file to its header and the first bytes.
    shrink(4096);
    shrunk.set();
    assert_eq!(
        common::join(in_child),
        (true, true, b"before".to_vec()),
        "past the end: errors; before it: the bytes"
    );
    let now = 4096 - 64; // the header takes 64 bytes
    let mut out = [0u8; 100];
    match shm.read_at(4000, &mut out) {
        Err(ShmError::Shrunk {
            offset: 4000,
            len: 100,
            size: s,
            now: n,
        }) => assert_eq!((s, n), (size, now)),
        other => panic!("a read across the new end: {other:?}"),
    }
    assert!(matches!(
        shm.write_at(size - 1, b"x"),
        Err(ShmError::Shrunk { .. })
    ));
    // Opening it now sees a file too short for what its header says.
    assert!(matches!(
        SharedMemory::open(&name),
        Err(ShmError::NotASegment { .. })
    ));
    // Cut to nothing, even the header is gone: still errors.
    shrink(0);
    assert!(matches!(
        shm.read_at(0, &mut out[..1]),
        Err(ShmError::Shrunk { now: 0, .. })
    ));
    assert!(matches!(
        SharedMemory::open(&name),
        Err(ShmError::NotASegment { .. })
    ));
    shm.unlink().unwrap();
}

#[test]
fn a_lazy_named_block_takes_pages_as_written_and_is_met_by_name() {
    let reserved_name = name("reserved");
    let name = name("lazy");
    let shm = SharedMemory::create_named_lazy(&name, 64 << 20).unwrap();
    let blocks = |path: &str| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).unwrap().blocks() * 512
    };
    let path = format!("/dev/shm/multiproc.{name}");
    assert!(
        blocks(&path) < 8 << 20, // at most two huge pages, where /dev/shm uses them
        "64 MiB asked, next to nothing taken"
    );
    let mut child = Process::spawn(name.clone(), |name: String| {
        let same = SharedMemory::open(&name).unwrap();
        same.write_at(32 << 20, b"from the child").unwrap();
        same.len()
    })
    .unwrap();
    assert_eq!(child.join_timeout(DEADLINE).unwrap(), 64 << 20);
    let mut out = [0u8; 14];
    shm.read_at(32 << 20, &mut out).unwrap();
    assert_eq!(&out, b"from the child");
    assert!(blocks(&path) < 8 << 20, "a page written, a page taken");
    // The reserved default takes them all at once.
    let reserved = SharedMemory::create_named(&reserved_name, 8 << 20).unwrap();
    assert!(blocks(&format!("/dev/shm/multiproc.{reserved_name}")) >= 8 << 20);
    reserved.unlink().unwrap();
    shm.unlink().unwrap();
}

/// The body of `a_full_memory_filesystem_is_an_error_at_a_lazy_write_and_at_a_reserved_creation`,
/// run by it in a mount namespace whose /dev/shm is a 1 MiB tmpfs.
#[test]
#[ignore = "run by a_full_memory_filesystem_is_an_error_at_a_lazy_write_and_at_a_reserved_creation"]
fn on_a_full_memory_filesystem() {
    let lazy = SharedMemory::create_named_lazy("full-lazy", 4 << 20).unwrap();
    let page = vec![7u8; 4096];
    let mut failed_at = None;
    for offset in (0..4 << 20).step_by(4096) {
        match lazy.write_at(offset, &page) {
            Ok(()) => {}
            Err(ShmError::NoSpaceToWrite { offset, len }) => {
                assert_eq!(len, 4096);
                failed_at = Some(offset);
                break;
            }
            Err(e) => panic!("a write on a full filesystem: {e}"),
        }
    }
    let failed_at = failed_at.expect("4 MiB do not fit in 1 MiB");
    assert!(
        failed_at > 0 && failed_at <= 1 << 20,
        "failed at {failed_at}"
    );
    // What was written is there; the segment works on where its pages exist.
    let mut out = [0u8; 4];
    lazy.read_at(0, &mut out).unwrap();
    assert_eq!(out, [7; 4]);
    lazy.unlink().unwrap();
    assert!(matches!(
        SharedMemory::create_named("full-reserved", 2 << 20),
        Err(ShmError::OutOfSpace { .. })
    ));
    println!("full filesystem: as expected");
}

#[test]
fn a_full_memory_filesystem_is_an_error_at_a_lazy_write_and_at_a_reserved_creation() {
    // A private mount namespace (as an unprivileged user too: a user namespace maps us to root)
    // whose /dev/shm is a 1 MiB tmpfs; in it, this test binary runs the body above.
    let exe = std::env::current_exe().unwrap();
    let script = r#"mount -t tmpfs -o size=1m,mode=1777 tmpfs /dev/shm && exec "$0" "$@""#;
    let mut child = std::process::Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--mount",
            "--propagation",
            "private",
        ])
        .args(["sh", "-c", script])
        .arg(exe)
        .args([
            "--ignored",
            "--exact",
            "on_a_full_memory_filesystem",
            "--nocapture",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("unshare (util-linux) runs");
    let deadline = std::time::Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the body did not end within {DEADLINE:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{status}: {out}");
    assert!(out.contains("full filesystem: as expected"), "{out}");
    assert!(out.contains("1 passed"), "{out}");
}
