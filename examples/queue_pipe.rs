//! Scenario S12, queue_pipe: a producer process puts five items on a Queue and a consumer process
//! gets them; a duplex Pipe carries a request and its reply; after one end is dropped, the other's
//! `recv` reports the disconnection instead of hanging.
//!
//! Python's version:
//!
//! ```python
//! def producer(q):
//!     for i in range(5):
//!         q.put(f"item {i}")
//!
//! def consumer(q):
//!     for _ in range(5):
//!         print("got", q.get())
//!
//! def server(conn):
//!     request = conn.recv()
//!     conn.send(request.upper())
//!     conn.close()
//! ```
//!
//! In Python, `recv` on a pipe whose other end is gone raises `EOFError` only if every copy of
//! that end is closed in every process, the parent's included; a forgotten copy makes it hang.
//!
//! Run it: `cargo run --release --example queue_pipe`.

use multiproc::{Connection, Process, Queue, RecvError, pipe};

fn producer(queue: Queue<String>) {
    for i in 0..5 {
        queue.put(format!("item {i}")).expect("the queue is open");
    }
}

fn consumer(queue: Queue<String>) {
    for _ in 0..5 {
        println!("got {}", queue.get().expect("five items come"));
    }
}

/// Answers one request, then ends (dropping its end of the pipe).
fn server(conn: Connection<String>) {
    let request = conn.recv().expect("a request");
    conn.send(request.to_uppercase()).expect("the client waits");
}

pub fn run() -> multiproc::Result<()> {
    let queue = Queue::<String>::new()?;
    let consumer = Process::spawn(queue.clone(), consumer)?;
    let producer = Process::spawn(queue, producer)?;
    producer.join()?;
    consumer.join()?;

    let (here, there) = pipe::<String>()?;
    let server = Process::spawn(there, server)?; // `there` moved into the child: no copy left here
    here.send("ping")?;
    println!("reply {}", here.recv()?);
    server.join()?;
    match here.recv() {
        Err(RecvError::Disconnected) => println!("recv after the server ended: Disconnected"),
        other => println!("unexpected: {other:?}"),
    }
    Ok(())
}

#[allow(dead_code)] // unused when the tour includes this file
fn main() -> multiproc::Result<()> {
    multiproc::init();
    run()
}
