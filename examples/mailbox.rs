//! Scenario S2, mailbox: a manager list; process A appends 100..=104, one every 100 ms; process
//! B appends 300..=308, one every 60 ms. First the parent polls, printing the list every 100 ms
//! for 600 ms; then the same producers run again and the parent watches instead, printing each
//! append as it happens.
//!
//! Python has no watch: its parent can only poll, and sees some states twice and others never.
//!
//! Run it: `cargo run --release --example mailbox`.

use std::time::{Duration, Instant};

use multiproc::{ListChange, ListProxy, Manager, Process};

fn producer((list, first, count, every_ms): (ListProxy<u32>, u32, u32, u64)) {
    for item in first..first + count {
        std::thread::sleep(Duration::from_millis(every_ms));
        list.push(item).expect("the manager runs");
    }
}

fn start(list: &ListProxy<u32>) -> multiproc::Result<[Process<()>; 2]> {
    Ok([
        Process::spawn((list.clone(), 100, 5, 100), producer)?,
        Process::spawn((list.clone(), 300, 9, 60), producer)?,
    ])
}

pub fn run() -> multiproc::Result<()> {
    let manager = Manager::from_env()?; // on Redis if MULTIPROC_REDIS_URL says where

    let polled = manager.list::<u32>()?;
    let producers = start(&polled)?;
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(100));
        println!("poll {:?}", polled.to_vec()?);
    }
    for p in producers {
        p.join()?;
    }
    println!("final {:?}", polled.to_vec()?);

    let watched = manager.list::<u32>()?;
    let mut watcher = watched.watch()?;
    let producers = start(&watched)?;
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen < 14 && Instant::now() < deadline {
        match watcher.next_timeout(Duration::from_secs(1)) {
            Ok(ListChange::Appended(item)) => {
                println!("appended {item}");
                seen += 1;
            }
            Ok(_) => {}
            Err(e) if e.is_timeout() => {}
            Err(e) => return Err(e.into()),
        }
    }
    for p in producers {
        p.join()?;
    }
    println!("watched {seen} appends");
    Ok(())
}

#[allow(dead_code)] // unused when the tour includes this file
fn main() -> multiproc::Result<()> {
    multiproc::init();
    run()
}
