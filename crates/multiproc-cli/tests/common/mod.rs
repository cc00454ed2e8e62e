//! What the command's tests share.

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
