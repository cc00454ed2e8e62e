//! The twin of `bench_queue.py`: a producer process puts 100k messages of 64 bytes, then 500 of
//! 1 MiB, on a `Queue` the main process gets them from; timed from the producer's release until
//! the last message is received. Messages are bytes (`ByteBuf`), as Python's are `bytes`.

use std::time::Instant;

use multiproc::{Event, Process, Queue};
use serde_bytes::ByteBuf;

const N_SMALL: u32 = 100_000;
const N_LARGE: u32 = 500;

fn produce((queue, n, size, go): (Queue<ByteBuf>, u32, usize, Event)) {
    let payload = ByteBuf::from(vec![b'x'; size]);
    go.wait();
    for _ in 0..n {
        queue.put(&payload).expect("queue open");
    }
}

/// Seconds from the producer's release to the last message received.
fn run_one(n: u32, size: usize) -> multiproc::Result<f64> {
    let queue = Queue::new()?;
    let go = Event::new()?;
    let producer = Process::spawn((queue.clone(), n, size, go.clone()), produce)?;
    std::thread::sleep(std::time::Duration::from_millis(200)); // as Python: let the child start
    let t0 = Instant::now();
    go.set();
    for _ in 0..n {
        let message = queue.get()?;
        debug_assert_eq!(message.len(), size);
    }
    let seconds = t0.elapsed().as_secs_f64();
    producer.join()?;
    Ok(seconds)
}

pub(crate) fn run() -> multiproc::Result<()> {
    let dt = run_one(N_SMALL, 64)?;
    crate::result("queue_64B_msgs_per_s", f64::from(N_SMALL) / dt, "msgs/s");
    crate::result(
        "queue_64B_100k_total_s",
        dt * 100_000.0 / f64::from(N_SMALL),
        "s",
    );
    let dt = run_one(N_LARGE, 1 << 20)?;
    crate::result("queue_1MiB_MiB_per_s", f64::from(N_LARGE) / dt, "MiB/s");
    crate::result("queue_1MiB_msgs_per_s", f64::from(N_LARGE) / dt, "msgs/s");
    Ok(())
}
