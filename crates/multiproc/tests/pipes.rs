//! Pipes between processes: typed and raw messages, timeouts, a closed or dead peer reported as
//! `Disconnected` (never a hang), size limits, and ends that travel inside messages. Cases follow
//! CPython's `_TestConnection`.

multiproc::test_support!();

mod common;

use std::time::{Duration, Instant};

use common::{DEADLINE, Unserializable, join, park_forever};
use multiproc::{Connection, JoinError, Pipe, Process, RecvError, SendError, pipe};

#[test]
fn requests_and_replies_cross_a_duplex_pipe() {
    let (here, there) = pipe::<(u32, String)>().unwrap();
    let echo = Process::spawn(there, |conn: Connection<(u32, String)>| {
        let mut served = 0;
        while let Ok((n, text)) = conn.recv() {
            conn.send(&(n * 2, text.to_uppercase())).unwrap();
            served += 1;
        }
        served // the loop ends when the parent's end is dropped
    })
    .unwrap();
    for n in 0..100 {
        here.send(&(n, format!("message {n}"))).unwrap();
        assert_eq!(
            here.recv_timeout(DEADLINE).unwrap(),
            (n * 2, format!("MESSAGE {n}"))
        );
    }
    drop(here);
    assert_eq!(
        join(echo),
        100,
        "the child saw Disconnected after the last message"
    );
}

#[test]
fn raw_bytes_and_large_messages_arrive_whole() {
    let (here, there) = pipe::<Vec<u8>>().unwrap();
    let big: Vec<u8> = (0..16 << 20).map(|i: u32| (i % 251) as u8).collect();
    let child = Process::spawn(there, |conn: Connection<Vec<u8>>| {
        let raw = conn.recv_bytes().unwrap();
        let typed = conn.recv().unwrap();
        conn.send_bytes(&raw).unwrap();
        conn.send(&typed).unwrap();
    })
    .unwrap();
    here.send_bytes(b"raw bytes").unwrap();
    here.send(&big).unwrap();
    assert_eq!(here.recv_bytes_timeout(DEADLINE).unwrap(), b"raw bytes");
    assert!(
        here.recv_timeout(DEADLINE).unwrap() == big,
        "16 MiB came back whole"
    );
    join(child);
}

#[test]
fn a_closed_or_dead_peer_is_disconnected_not_a_hang() {
    // Dropped by a child that exits.
    let (here, there) = pipe::<u8>().unwrap();
    join(Process::spawn(there, |conn: Connection<u8>| drop(conn)).unwrap());
    assert!(matches!(here.recv(), Err(RecvError::Disconnected)));
    assert!(matches!(here.send(1), Err(SendError::Disconnected)));

    // Held by a child that is SIGKILLed while the parent waits in recv.
    let (here, there) = pipe::<u8>().unwrap();
    let (ready_rx, ready_tx) = Pipe::one_way::<()>().unwrap();
    let mut holder = Process::spawn(
        (there, ready_tx),
        |(conn, ready): (Connection<u8>, multiproc::Sender<()>)| -> () {
            ready.send(()).unwrap();
            let _kept = conn;
            park_forever()
        },
    )
    .unwrap();
    ready_rx.recv_timeout(DEADLINE).unwrap();
    // Bounded by DEADLINE: a missed disconnection fails as a timeout instead of hanging.
    let waiter = std::thread::spawn(move || here.recv_timeout(DEADLINE));
    holder.kill().unwrap();
    assert!(matches!(
        holder.join_timeout(DEADLINE),
        Err(JoinError::Signaled { signal: 9 })
    ));
    assert!(waiter.join().unwrap().unwrap_err().is_disconnected());
}

#[test]
fn timeouts_and_poll() {
    let (a, b) = pipe::<u32>().unwrap();
    assert!(!a.poll(Duration::ZERO).unwrap());
    let t0 = Instant::now();
    assert!(
        a.recv_timeout(Duration::from_millis(50))
            .unwrap_err()
            .is_timeout()
    );
    assert!(t0.elapsed() >= Duration::from_millis(50));
    b.send(7).unwrap();
    assert!(a.poll(DEADLINE).unwrap());
    assert_eq!(a.recv().unwrap(), 7);
    drop(b);
    assert!(
        a.poll(DEADLINE).unwrap(),
        "a closed peer polls ready, like Python"
    );
    assert!(a.recv_timeout(DEADLINE).unwrap_err().is_disconnected());
}

#[test]
fn messages_over_the_maximum_are_refused_and_the_pipe_goes_on() {
    let (mut a, mut b) = pipe::<Vec<u8>>().unwrap();
    a.set_max_message_size(1000);
    assert!(matches!(
        a.send(vec![0; 2000]),
        Err(SendError::TooLarge { max: 1000, .. })
    ));
    b.set_max_message_size(100_000);
    b.send(vec![1; 5000]).unwrap(); // fine for b, too large for a
    b.send(vec![2; 10]).unwrap();
    assert!(matches!(
        a.recv(),
        Err(RecvError::TooLarge { max: 1000, .. })
    ));
    assert_eq!(
        a.recv().unwrap(),
        vec![2; 10],
        "the next message still arrives"
    );
}

#[test]
fn a_value_that_does_not_serialize_fails_at_send() {
    let (a, b) = pipe::<Unserializable>().unwrap();
    assert!(matches!(a.send(&Unserializable), Err(SendError::Encode(_))));
    assert!(!b.poll(Duration::ZERO).unwrap(), "nothing was sent");
}

#[test]
fn a_connection_travels_through_a_pipe() {
    // The parent sends one end of a second pipe through the first; the child answers on it.
    let (control_here, control_there) = pipe::<Connection<String>>().unwrap();
    let (reply_here, reply_there) = pipe::<String>().unwrap();
    let child = Process::spawn(control_there, |control: Connection<Connection<String>>| {
        let reply = control.recv().unwrap();
        reply.send("answered on a received connection").unwrap();
    })
    .unwrap();
    control_here.send(&reply_there).unwrap();
    drop(reply_there);
    assert_eq!(
        reply_here.recv_timeout(DEADLINE).unwrap(),
        "answered on a received connection"
    );
    join(child);
}

#[test]
fn a_one_way_pipe_carries_messages_from_a_child() {
    let (rx, tx) = Pipe::one_way::<u64>().unwrap();
    let child = Process::spawn(tx, |tx: multiproc::Sender<u64>| {
        for i in 0..10 {
            tx.send(i).unwrap();
        }
    })
    .unwrap();
    let got: Vec<u64> = (0..10)
        .map(|_| rx.recv_timeout(DEADLINE).unwrap())
        .collect();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    join(child);
    assert!(matches!(rx.recv(), Err(RecvError::Disconnected)));
}

#[test]
fn pipes_and_queues_take_items_owned_borrowed_or_as_what_they_borrow_as() {
    let (here, there) = multiproc::pipe::<String>().unwrap();
    let queue = multiproc::Queue::<String>::new().unwrap();
    let simple = multiproc::SimpleQueue::<Vec<u8>>::new().unwrap();
    let child = multiproc::Process::spawn(
        (there, queue.clone(), simple.clone()),
        |(there, queue, simple): (
            multiproc::Connection<String>,
            multiproc::Queue<String>,
            multiproc::SimpleQueue<Vec<u8>>,
        )| {
            there.send("from the pipe").unwrap(); // &str for String
            there.send(String::from("owned")).unwrap();
            queue.put("from the queue").unwrap();
            queue.put(format!("owned {}", 1)).unwrap();
            simple.put(&b"bytes"[..]).unwrap(); // &[u8] for Vec<u8>
            simple.put(*b"array").unwrap(); // an array for Vec<u8>
        },
    )
    .unwrap();
    assert_eq!(here.recv().unwrap(), "from the pipe");
    assert_eq!(here.recv().unwrap(), "owned");
    assert_eq!(queue.get().unwrap(), "from the queue");
    assert_eq!(queue.get().unwrap(), "owned 1");
    assert_eq!(simple.get().unwrap(), b"bytes");
    assert_eq!(simple.get().unwrap(), b"array");
    common::join(child);
}
