//! `Queue` and `JoinableQueue` across processes: every item exactly once with many producers and
//! consumers (small items in the ring, large ones on the side channel, in order), bounds and
//! timeouts, close, 64 MiB items, handles inside items, exit right after put, and SIGKILL of
//! producers and consumers mid-operation.

multiproc::test_support!();

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{DEADLINE, Unserializable, join};
use multiproc::failpoint::Failpoint;
use multiproc::{
    Connection, GetError, GetTimeoutError, JoinError, JoinTimeoutError, JoinableQueue, Process,
    PutError, PutTimeoutError, Queue, RING_ITEM_MAX, TaskDoneError, TasksLost, Value, pipe,
};
use serde::{Deserialize, Serialize};

/// An item whose body is derived from its id, so a torn or mixed-up item is caught (bodies are
/// compared whole, with `==`, which stays fast in debug builds).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Item {
    producer: u32,
    seq: u32,
    #[serde(with = "serde_bytes")] // one copy, not a sequence of u8s
    body: Vec<u8>,
}

impl Item {
    fn new(producer: u32, seq: u32, len: usize) -> Item {
        // Never zero, and different for neighbours: a truncated, zeroed or mixed-up body shows.
        let seed = (producer.wrapping_mul(31).wrapping_add(seq) as u8) | 1;
        Item {
            producer,
            seq,
            body: vec![seed; len],
        }
    }

    fn is_whole(&self) -> bool {
        *self == Item::new(self.producer, self.seq, self.body.len())
    }
}

/// Every 50th item is large enough for the side channel; the others go in the ring.
fn item_len(seq: u32) -> usize {
    if seq % 50 == 7 {
        RING_ITEM_MAX + 1000
    } else {
        (seq % 200) as usize
    }
}

#[test]
fn four_producers_and_four_consumers_see_every_item_exactly_once_in_order() {
    const PER_PRODUCER: u32 = 3_000;
    let queue = Queue::<Option<Item>>::bounded(100).unwrap();
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            Process::spawn(queue.clone(), |q: Queue<Option<Item>>| {
                let mut got = Vec::new();
                while let Some(item) = q.get().expect("an item or a stop") {
                    assert!(item.is_whole(), "item {}/{} torn", item.producer, item.seq);
                    got.push((item.producer, item.seq));
                }
                got
            })
            .unwrap()
        })
        .collect();
    let producers: Vec<_> = (0..4u32)
        .map(|p| {
            Process::spawn((queue.clone(), p), |(q, p): (Queue<Option<Item>>, u32)| {
                for seq in 0..PER_PRODUCER {
                    q.put(Some(Item::new(p, seq, item_len(seq)))).unwrap();
                }
            })
            .unwrap()
        })
        .collect();
    for producer in producers {
        join(producer);
    }
    for _ in 0..4 {
        queue.put(&None).unwrap(); // one stop per consumer
    }
    let mut all = Vec::new();
    for consumer in consumers {
        let got = join(consumer);
        // Each consumer sees any one producer's items in the order they were put.
        for p in 0..4 {
            let seqs: Vec<u32> = got.iter().filter(|g| g.0 == p).map(|g| g.1).collect();
            assert!(seqs.is_sorted(), "producer {p}'s items out of order");
        }
        all.extend(got);
    }
    let distinct: BTreeSet<(u32, u32)> = all.iter().copied().collect();
    assert_eq!(all.len(), 4 * PER_PRODUCER as usize, "no item twice");
    assert_eq!(distinct.len(), 4 * PER_PRODUCER as usize, "no item lost");
    assert!(queue.is_empty());
}

#[test]
fn a_bounded_queue_is_full_and_an_empty_one_is_empty_within_the_timeouts() {
    let queue = Queue::<u32>::bounded(2).unwrap();
    assert!(queue.try_get().unwrap_err().is_empty());
    let started = Instant::now();
    assert!(
        queue
            .get_timeout(Duration::from_millis(100))
            .unwrap_err()
            .is_empty()
    );
    assert!(started.elapsed() >= Duration::from_millis(100));
    queue.put(1).unwrap();
    queue.try_put(2).unwrap();
    assert_eq!(queue.len(), 2);
    assert!(queue.is_full());
    assert!(matches!(queue.try_put(3), Err(PutTimeoutError::Full)));
    let started = Instant::now();
    assert!(
        queue
            .put_timeout(3, Duration::from_millis(100))
            .unwrap_err()
            .is_full()
    );
    assert!(started.elapsed() >= Duration::from_millis(100));
    // A getter in another process makes room for a blocked put.
    let getter = Process::spawn(queue.clone(), |q: Queue<u32>| q.get().unwrap()).unwrap();
    queue.put_timeout(3, DEADLINE).unwrap();
    assert_eq!(join(getter), 1);
    assert_eq!(
        [queue.get().unwrap(), queue.try_get().unwrap()],
        [2, 3],
        "in order"
    );
    assert!(Queue::<u32>::bounded(0).is_err());
}

#[test]
fn close_wakes_a_blocked_getter_after_the_items_left() {
    let queue = Queue::<u32>::new().unwrap();
    let getter = Process::spawn(queue.clone(), |q: Queue<u32>| {
        let mut got = Vec::new();
        loop {
            match q.get() {
                Ok(item) => got.push(item),
                Err(GetError::Closed) => return got,
                Err(e) => panic!("{e}"),
            }
        }
    })
    .unwrap();
    queue.put(1).unwrap();
    queue.put(2).unwrap();
    let closer = Process::spawn(queue.clone(), |q: Queue<u32>| q.close()).unwrap();
    join(closer);
    assert_eq!(join(getter), [1, 2]);
    assert!(queue.is_closed());
    assert!(matches!(queue.put(3), Err(PutError::Closed)));
    assert!(matches!(
        queue.get_timeout(DEADLINE),
        Err(GetTimeoutError::Get(GetError::Closed))
    ));
}

#[test]
fn a_64_mib_item_crosses_and_an_unserializable_one_fails_at_put() {
    let queue = Queue::<Item>::new().unwrap();
    let producer = Process::spawn(queue.clone(), |q: Queue<Item>| {
        q.put(Item::new(1, 2, 64 << 20)).unwrap();
    })
    .unwrap();
    let item = queue.get_timeout(DEADLINE).unwrap();
    join(producer);
    assert_eq!(item.body.len(), 64 << 20);
    assert!(item.is_whole());

    let queue = Queue::<Unserializable>::new().unwrap();
    assert!(matches!(
        queue.put(&Unserializable),
        Err(PutError::Encode(_))
    ));
    assert!(queue.is_empty());
}

#[test]
fn items_put_just_before_exit_are_not_lost_and_join_does_not_wait_for_them() {
    let queue = Queue::<Vec<u8>>::new().unwrap();
    // 1 MiB and many small ones: Python's Queue deadlocks joining a child whose feeder holds them.
    join(
        Process::spawn(queue.clone(), |q: Queue<Vec<u8>>| {
            q.put(vec![7; 1 << 20]).unwrap();
            for i in 0..1000u32 {
                q.put(i.to_le_bytes().to_vec()).unwrap();
            }
        })
        .unwrap(),
    );
    assert_eq!(queue.len(), 1001);
    assert_eq!(queue.get().unwrap(), vec![7; 1 << 20]);
    for i in 0..1000u32 {
        assert_eq!(queue.try_get().unwrap(), i.to_le_bytes());
    }
}

#[test]
fn handles_travel_inside_items_and_a_queue_travels_through_a_pipe() {
    #[derive(Serialize, Deserialize)]
    struct Handles {
        counter: Value<u64>,
        reply: Connection<String>,
        jobs: Queue<u32>,
    }
    let (parent_end, child_end) = pipe::<Queue<Handles>>().unwrap();
    let mailbox = Queue::<Handles>::new().unwrap();
    let jobs = Queue::<u32>::new().unwrap();
    let counter = Value::new(0u64).unwrap();
    let (reply_here, reply_there) = pipe::<String>().unwrap();
    let child = Process::spawn(child_end, |end: Connection<Queue<Handles>>| {
        let mailbox = end.recv().unwrap();
        let handles = mailbox.get().unwrap();
        handles.counter.fetch_add(5);
        let job = handles.jobs.get().unwrap();
        handles.reply.send(format!("job {job} done")).unwrap();
    })
    .unwrap();
    parent_end.send(&mailbox).unwrap();
    mailbox
        .put(&Handles {
            counter: counter.clone(),
            reply: reply_there,
            jobs: jobs.clone(),
        })
        .unwrap();
    jobs.put(42).unwrap();
    assert_eq!(reply_here.recv_timeout(DEADLINE).unwrap(), "job 42 done");
    join(child);
    assert_eq!(counter.get(), 5);
}

#[test]
fn producers_killed_mid_put_leave_whole_items_and_a_working_queue() {
    // Each round a producer puts ring and side items flat out and is killed wherever it is.
    let queue = Queue::<Item>::bounded(50).unwrap();
    for round in 0..6u32 {
        let mut producer = Process::spawn((queue.clone(), round), |(q, p): (Queue<Item>, u32)| {
            for seq in 0.. {
                let len = if seq % 3 == 0 { 4 << 20 } else { item_len(seq) };
                q.put(Item::new(p, seq, len)).unwrap();
            }
        })
        .unwrap();
        // Take a few, then kill it mid-stream (the queue is full, so it is inside put).
        for _ in 0..(round * 7) % 20 + 1 {
            assert!(queue.get_timeout(DEADLINE).unwrap().is_whole());
        }
        producer.kill().unwrap();
        assert!(matches!(
            producer.join_timeout(DEADLINE),
            Err(JoinError::Signaled { signal: 9 })
        ));
        let mut last = None;
        while let Ok(item) = queue.try_get() {
            assert!(item.is_whole(), "a torn item");
            assert!(last < Some(item.seq), "in order");
            last = Some(item.seq);
        }
    }
    // The queue goes on working, for small and side items, across processes.
    join(
        Process::spawn(queue.clone(), |q: Queue<Item>| {
            q.put(Item::new(9, 0, 10)).unwrap();
            q.put(Item::new(9, 1, 4 << 20)).unwrap();
        })
        .unwrap(),
    );
    assert_eq!(queue.get_timeout(DEADLINE).unwrap(), Item::new(9, 0, 10));
    assert_eq!(
        queue.get_timeout(DEADLINE).unwrap(),
        Item::new(9, 1, 4 << 20)
    );
    assert!(queue.is_empty());
}

#[test]
fn consumers_killed_mid_get_leave_the_queue_working() {
    let queue = Queue::<Item>::new().unwrap();
    for round in 0..4u32 {
        let mut consumer = Process::spawn(queue.clone(), |q: Queue<Item>| -> () {
            loop {
                assert!(q.get().unwrap().is_whole());
            }
        })
        .unwrap();
        for seq in 0..200 {
            let len = if seq % 4 == 0 { 1 << 20 } else { item_len(seq) };
            queue.put(Item::new(round, seq, len)).unwrap();
        }
        consumer.kill().unwrap();
        assert!(matches!(
            consumer.join_timeout(DEADLINE),
            Err(JoinError::Signaled { signal: 9 })
        ));
    }
    // Whatever is left is whole, in order, and puts and gets still work.
    let mut last = None;
    while let Ok(item) = queue.try_get() {
        assert!(item.is_whole());
        assert!(last < Some((item.producer, item.seq)), "in order");
        last = Some((item.producer, item.seq));
    }
    queue.put(Item::new(7, 7, RING_ITEM_MAX * 2)).unwrap();
    queue.put(Item::new(7, 8, 3)).unwrap();
    let getter = Process::spawn(queue.clone(), |q: Queue<Item>| {
        [q.get().unwrap(), q.get().unwrap()]
    })
    .unwrap();
    assert_eq!(
        join(getter),
        [Item::new(7, 7, RING_ITEM_MAX * 2), Item::new(7, 8, 3)]
    );
}

#[test]
fn joinable_queue_join_waits_for_task_done_and_one_too_many_is_an_error() {
    let jobs = JoinableQueue::<u32>::new().unwrap();
    let results = Queue::<u32>::new().unwrap();
    for job in 0..20 {
        jobs.put(job).unwrap();
    }
    assert_eq!(jobs.unfinished(), 20);
    assert_eq!(
        jobs.join_timeout(Duration::from_millis(50)),
        Err(JoinTimeoutError::Timeout)
    );
    let workers: Vec<_> = (0..2)
        .map(|_| {
            Process::spawn(
                (jobs.clone(), results.clone()),
                |(jobs, results): (JoinableQueue<u32>, Queue<u32>)| {
                    while let Ok(job) = jobs.get() {
                        results.put(job * 2).unwrap();
                        jobs.task_done().unwrap();
                    }
                },
            )
            .unwrap()
        })
        .collect();
    jobs.join_timeout(DEADLINE).expect("every job done");
    assert_eq!(jobs.unfinished(), 0);
    let mut doubled: Vec<u32> = (0..20).map(|_| results.try_get().unwrap()).collect();
    doubled.sort();
    assert_eq!(doubled, (0..20).map(|j| j * 2).collect::<Vec<_>>());
    assert_eq!(jobs.task_done(), Err(TaskDoneError));
    assert_eq!(
        jobs.unfinished(),
        0,
        "the refused task_done changed nothing"
    );
    jobs.close();
    for worker in workers {
        join(worker);
    }
}

/// Joins a child that a failpoint killed.
fn killed_at_failpoint<R: serde::de::DeserializeOwned + std::fmt::Debug>(mut p: Process<R>) {
    let outcome = p.join_timeout(DEADLINE);
    assert!(
        matches!(outcome, Err(JoinError::Signaled { signal: 9 })),
        "the failpoint killed it: {outcome:?}"
    );
}

#[test]
fn a_putter_killed_after_writing_before_committing_leaves_nothing() {
    let queue = Queue::<Item>::new().unwrap();
    killed_at_failpoint(
        Process::spawn(queue.clone(), |q: Queue<Item>| {
            multiproc::failpoint::arm(Failpoint::QueueRingWritten);
            q.put(Item::new(1, 1, 100)).unwrap();
        })
        .unwrap(),
    );
    assert!(queue.is_empty());
    queue.put(Item::new(2, 2, 100)).unwrap();
    assert_eq!(queue.get_timeout(DEADLINE).unwrap(), Item::new(2, 2, 100));
}

#[test]
fn a_putter_killed_after_committing_before_notifying_still_wakes_the_getter() {
    let queue = Queue::<Item>::new().unwrap();
    let ready = Queue::<()>::new().unwrap();
    let getter = Process::spawn(
        (queue.clone(), ready.clone()),
        |(q, ready): (Queue<Item>, Queue<()>)| {
            ready.put(()).unwrap();
            q.get().unwrap()
        },
    )
    .unwrap();
    ready.get_timeout(DEADLINE).unwrap();
    killed_at_failpoint(
        Process::spawn(queue.clone(), |q: Queue<Item>| {
            multiproc::failpoint::arm(Failpoint::QueueCommitted);
            q.put(Item::new(1, 1, 100)).unwrap();
        })
        .unwrap(),
    );
    // The item was committed; the getter is woken by its own periodic look or by taking the dead
    // holder's lock, and gets it.
    assert_eq!(join(getter), Item::new(1, 1, 100));
}

#[test]
fn a_side_putter_killed_after_sending_leaves_an_orphan_that_nobody_gets() {
    let queue = Queue::<Item>::new().unwrap();
    killed_at_failpoint(
        Process::spawn(queue.clone(), |q: Queue<Item>| {
            multiproc::failpoint::arm(Failpoint::QueueSideSent);
            q.put(Item::new(1, 1, RING_ITEM_MAX * 2)).unwrap();
        })
        .unwrap(),
    );
    assert!(queue.is_empty(), "the record was never committed");
    queue.put(Item::new(2, 2, RING_ITEM_MAX * 2)).unwrap();
    queue.put(Item::new(2, 3, 10)).unwrap();
    assert_eq!(
        queue.get_timeout(DEADLINE).unwrap(),
        Item::new(2, 2, RING_ITEM_MAX * 2)
    );
    assert_eq!(queue.get_timeout(DEADLINE).unwrap(), Item::new(2, 3, 10));
}

#[test]
fn a_side_getter_killed_after_taking_the_record_loses_only_its_own_item() {
    let queue = Queue::<Item>::new().unwrap();
    for seq in 0..3 {
        queue.put(Item::new(1, seq, RING_ITEM_MAX * 2)).unwrap();
    }
    killed_at_failpoint(
        Process::spawn(queue.clone(), |q: Queue<Item>| {
            multiproc::failpoint::arm(Failpoint::QueueSideTaken);
            q.get().unwrap();
        })
        .unwrap(),
    );
    // Item 0 died with its getter; the others come whole and in order.
    assert_eq!(queue.len(), 2);
    assert_eq!(
        queue.get_timeout(DEADLINE).unwrap(),
        Item::new(1, 1, RING_ITEM_MAX * 2)
    );
    assert_eq!(
        queue.get_timeout(DEADLINE).unwrap(),
        Item::new(1, 2, RING_ITEM_MAX * 2)
    );
    assert!(queue.is_empty());
}

#[test]
fn a_consumer_killed_holding_items_makes_join_report_them_instead_of_hanging() {
    let jobs = JoinableQueue::<u32>::new().unwrap();
    for job in 0..5 {
        jobs.put(job).unwrap();
    }
    // A consumer takes two, says so, and is killed before declaring them done.
    let holding = Queue::<()>::new().unwrap();
    let victim = Process::spawn(
        (jobs.clone(), holding.clone()),
        |(jobs, holding): (JoinableQueue<u32>, Queue<()>)| {
            jobs.get().unwrap();
            jobs.get().unwrap();
            holding.put(()).unwrap();
            common::park_forever()
        },
    )
    .unwrap();
    holding.get_timeout(DEADLINE).unwrap();
    common::sigkill(victim.pid());
    assert!(victim_died(victim));
    // Another one does the rest, declaring each done.
    join(
        Process::spawn(jobs.clone(), |jobs: JoinableQueue<u32>| {
            for _ in 0..3 {
                jobs.get().unwrap();
                jobs.task_done().unwrap();
            }
        })
        .unwrap(),
    );
    // The join ends (Python's waits forever), and says what was lost, once.
    assert_eq!(
        jobs.join_timeout(DEADLINE),
        Err(JoinTimeoutError::Lost(TasksLost { items: 2 }))
    );
    assert_eq!(jobs.unfinished(), 0);
    assert_eq!(jobs.join(), Ok(()));
    // The queue goes on: new items are counted and joined as before.
    jobs.put(9).unwrap();
    assert_eq!(jobs.get().unwrap(), 9);
    jobs.task_done().unwrap();
    assert_eq!(jobs.try_join(), Ok(()));
}

#[test]
fn a_consumer_killed_between_its_commit_and_its_slot_still_has_its_item_counted_lost() {
    let jobs = JoinableQueue::<u32>::new().unwrap();
    jobs.put(1).unwrap();
    jobs.put(2).unwrap();
    killed_at_failpoint(
        Process::spawn(jobs.clone(), |jobs: JoinableQueue<u32>| {
            multiproc::failpoint::arm(Failpoint::QueueHoldersBehind);
            jobs.get().unwrap();
        })
        .unwrap(),
    );
    // The next getter repairs what the dead one left behind its commit.
    assert_eq!(jobs.get_timeout(DEADLINE).unwrap(), 2);
    jobs.task_done().unwrap();
    assert_eq!(
        jobs.join_timeout(DEADLINE),
        Err(JoinTimeoutError::Lost(TasksLost { items: 1 }))
    );
    // And one killed between declaring an item done and its slot: nothing is lost, the join ends.
    jobs.put(3).unwrap();
    let holding = Queue::<()>::new().unwrap();
    killed_at_failpoint(
        Process::spawn(
            (jobs.clone(), holding.clone()),
            |(jobs, holding): (JoinableQueue<u32>, Queue<()>)| {
                jobs.get().unwrap();
                holding.put(()).unwrap();
                multiproc::failpoint::arm(Failpoint::QueueHoldersBehind);
                jobs.task_done().unwrap();
            },
        )
        .unwrap(),
    );
    holding.get_timeout(DEADLINE).unwrap();
    assert_eq!(jobs.join_timeout(DEADLINE), Ok(()));
}

/// Whether a child that was killed is reaped as killed.
fn victim_died(victim: Process<()>) -> bool {
    matches!(
        common::join_result(victim),
        Err(JoinError::Signaled { signal: 9 })
    )
}
