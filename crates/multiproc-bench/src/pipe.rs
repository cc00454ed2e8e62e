//! The twin of `bench_pipe.py`: round trips of a 64-byte message on a duplex pipe whose other end
//! a child echoes; 20k after 200 warm-up ones. Typed (`send`/`recv`) and raw (`send_bytes`/`recv_bytes`).

use std::time::Instant;

use multiproc::{Connection, Process, pipe};

const N: u32 = 20_000;
const WARM_UP: u32 = 200;

fn echo_typed(conn: Connection<Option<Vec<u8>>>) {
    while let Ok(Some(message)) = conn.recv() {
        conn.send(Some(message)).expect("parent alive");
    }
}

fn echo_bytes(conn: Connection<Option<Vec<u8>>>) {
    while let Ok(message) = conn.recv_bytes() {
        if message.is_empty() {
            break;
        }
        conn.send_bytes(&message).expect("parent alive");
    }
}

/// Mean round trip in microseconds, through `round_trip` against a child running `echo`.
fn bench(
    echo: fn(Connection<Option<Vec<u8>>>),
    round_trip: fn(&Connection<Option<Vec<u8>>>, &[u8]),
    stop: fn(&Connection<Option<Vec<u8>>>),
) -> multiproc::Result<f64> {
    let (here, there) = pipe()?;
    let child = Process::spawn(there, echo)?;
    let message = vec![b'x'; 64];
    for _ in 0..WARM_UP {
        round_trip(&here, &message);
    }
    let t0 = Instant::now();
    for _ in 0..N {
        round_trip(&here, &message);
    }
    let us = t0.elapsed().as_secs_f64() * 1e6 / f64::from(N);
    stop(&here);
    child.join()?;
    Ok(us)
}

pub(crate) fn run() -> multiproc::Result<()> {
    let typed = bench(
        echo_typed,
        |conn, message| {
            conn.send(Some(message.to_vec())).expect("child alive");
            conn.recv().expect("child alive");
        },
        |conn| conn.send(&None).expect("child alive"),
    )?;
    crate::result("pipe_pingpong_send_recv_64B_rtt_us", typed, "us");
    let raw = bench(
        echo_bytes,
        |conn, message| {
            conn.send_bytes(message).expect("child alive");
            conn.recv_bytes().expect("child alive");
        },
        |conn| conn.send_bytes(&[]).expect("child alive"),
    )?;
    crate::result("pipe_pingpong_send_bytes_64B_rtt_us", raw, "us");
    Ok(())
}
