//! `SimpleQueue` across processes: every item received exactly once with many producers and
//! consumers, items survive a producer that exits right after `put`, and a producer SIGKILLed
//! mid-put leaves only whole items and a working queue.

multiproc::test_support!();

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{DEADLINE, Unserializable, join};
use multiproc::{JoinError, Process, PutError, SimpleQueue};

#[test]
fn four_producers_and_four_consumers_see_every_item_exactly_once() {
    const PER_PRODUCER: u32 = 2_000;
    let queue = SimpleQueue::<Option<u32>>::new().unwrap();
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            Process::spawn(queue.clone(), |q: SimpleQueue<Option<u32>>| {
                let mut got = Vec::new();
                while let Some(item) = q
                    .get_timeout(Duration::from_secs(30))
                    .expect("an item or a stop")
                {
                    got.push(item);
                }
                got
            })
            .unwrap()
        })
        .collect();
    let producers: Vec<_> = (0..4u32)
        .map(|p| {
            Process::spawn(
                (queue.clone(), p),
                |(q, p): (SimpleQueue<Option<u32>>, u32)| {
                    for i in 0..PER_PRODUCER {
                        q.put(Some(p * PER_PRODUCER + i)).unwrap();
                    }
                },
            )
            .unwrap()
        })
        .collect();
    for producer in producers {
        join(producer);
    }
    for _ in 0..4 {
        queue.put(None).unwrap(); // one stop per consumer
    }
    let mut all = Vec::new();
    for consumer in consumers {
        all.extend(join(consumer));
    }
    let distinct: BTreeSet<u32> = all.iter().copied().collect();
    assert_eq!(all.len(), (4 * PER_PRODUCER) as usize, "no item twice");
    assert_eq!(distinct, (0..4 * PER_PRODUCER).collect(), "no item lost");
    assert!(queue.is_empty());
}

#[test]
fn an_item_put_just_before_exit_is_not_lost_and_join_does_not_wait_for_it() {
    let queue = SimpleQueue::<Vec<u8>>::new().unwrap();
    // 1 MiB: Python's Queue deadlocks joining a child whose feeder still holds this.
    join(
        Process::spawn(queue.clone(), |q: SimpleQueue<Vec<u8>>| {
            q.put(vec![7; 1 << 20]).unwrap()
        })
        .unwrap(),
    );
    assert_eq!(queue.get_timeout(DEADLINE).unwrap(), vec![7; 1 << 20]);
}

#[test]
fn a_value_that_does_not_serialize_fails_at_put() {
    let queue = SimpleQueue::<Unserializable>::new().unwrap();
    assert!(matches!(
        queue.put(&Unserializable),
        Err(PutError::Encode(_))
    ));
    assert!(queue.is_empty());
    assert!(
        queue
            .get_timeout(Duration::from_millis(10))
            .unwrap_err()
            .is_timeout()
    );
}

#[test]
fn a_producer_killed_mid_put_leaves_whole_items_and_a_working_queue() {
    // Items of 4 MiB travel through a memory file, so a put takes long enough to be cut short.
    let queue = SimpleQueue::<Vec<u8>>::new().unwrap();
    let mut producer = Process::spawn(queue.clone(), |q: SimpleQueue<Vec<u8>>| -> () {
        for i in 0u8.. {
            q.put(vec![i; 4 << 20]).unwrap();
        }
    })
    .unwrap();
    // Let it put a few, then kill it wherever it is.
    let first = queue.get_timeout(DEADLINE).unwrap();
    assert!(first.iter().all(|&b| b == first[0]));
    producer.kill().unwrap();
    assert!(matches!(
        producer.join_timeout(DEADLINE),
        Err(JoinError::Signaled { signal: 9 })
    ));
    // Whatever it queued is whole.
    while let Ok(item) = queue.get_timeout(Duration::from_millis(100)) {
        assert_eq!(item.len(), 4 << 20);
        assert!(item.iter().all(|&b| b == item[0]), "a torn item");
    }
    // And the queue goes on working for everyone else.
    join(
        Process::spawn(queue.clone(), |q: SimpleQueue<Vec<u8>>| {
            q.put(vec![42; 10]).unwrap()
        })
        .unwrap(),
    );
    assert_eq!(queue.get_timeout(DEADLINE).unwrap(), vec![42; 10]);
}
