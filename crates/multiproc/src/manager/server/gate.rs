//! The gate: one thread that accepts connections and runs all their handshakes at once, without
//! blocking on any.
//!
//! - A connection that does not finish its handshake within [`HANDSHAKE_TIMEOUT`] is closed.
//! - At most [`MAX_PENDING`] handshakes are in flight; a new connection beyond that pushes out the
//!   oldest. A flood of silent connections (slowloris) costs a bounded list and no thread, and a
//!   real client, whose handshake takes microseconds, gets through.
//! - Wrong keys are counted and rate-limited: at most [`FAILURES_PER_SECOND`] (after a burst of
//!   as many), checked in arrival order. While that budget is spent, proofs wait unchecked, so
//!   guessing a key goes no faster than that, whatever the number of connections.
//! - Bytes that do not start a proof (an HTTP request, say) close the connection at once.
//! - On a Unix socket, a peer of another user is closed before anything is sent.
//!
//! Refusals are logged to standard error, at most a few lines a second.

use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Server;
use crate::channel::HANDSHAKE_TIMEOUT;
use crate::channel::auth::{self, NONCE, PROOF};
use crate::sys::{self, Stream, StreamListener};

/// Handshakes in flight, at most.
pub(crate) const MAX_PENDING: usize = 128;

/// Wrong keys answered per second, at most, after a burst of as many.
pub(crate) const FAILURES_PER_SECOND: f64 = 20.0;

/// A connection in its handshake: the nonce it was sent, and its proof so far.
struct Pending {
    stream: Stream,
    nonce: [u8; NONCE],
    proof: [u8; PROOF],
    filled: usize,
    deadline: Instant,
    /// Closed, refused, or handed over: to be removed.
    done: bool,
}

/// The budget of wrong keys: a token bucket.
struct Failures {
    tokens: f64,
    at: Instant,
}

impl Failures {
    fn new() -> Failures {
        Failures {
            tokens: FAILURES_PER_SECOND,
            at: Instant::now(),
        }
    }

    fn available(&mut self) -> bool {
        let now = Instant::now();
        let earned = now.duration_since(self.at).as_secs_f64() * FAILURES_PER_SECOND;
        self.tokens = (self.tokens + earned).min(FAILURES_PER_SECOND);
        self.at = now;
        self.tokens >= 1.0
    }

    fn spend(&mut self) {
        self.tokens -= 1.0;
    }

    /// How long until a token is there.
    fn next(&self) -> Duration {
        Duration::from_secs_f64(((1.0 - self.tokens) / FAILURES_PER_SECOND).max(0.0))
    }
}

/// Accepts and authenticates connections until the server stops.
pub(crate) fn run(server: &Arc<Server>, listener: &StreamListener, wake: &Stream) {
    if let Err(e) = listener.set_nonblocking(true) {
        log(format_args!("cannot serve: {e}"));
        return;
    }
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut failures = Failures::new();
    while !server.stopping.load(Ordering::SeqCst) {
        server
            .counters
            .handshakes
            .store(pending.len(), Ordering::Relaxed);
        // Poll the wake-up socket, the listener, and the handshakes still reading.
        let reading: Vec<usize> = (0..pending.len())
            .filter(|&i| pending[i].filled < PROOF)
            .collect();
        let mut fds = vec![wake.as_fd(), listener.as_fd()];
        fds.extend(reading.iter().map(|&i| pending[i].stream.as_fd()));
        let mut deadline = pending.iter().map(|p| p.deadline).min();
        if pending.iter().any(|p| p.filled == PROOF) {
            let judged = Instant::now() + failures.next();
            deadline = Some(deadline.map_or(judged, |d| d.min(judged)));
        }
        let Ok(ready) = sys::wait_any_readable(&fds, deadline) else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        drop(fds);
        if ready[0] {
            let _ = (&*wake).read(&mut [0u8; 64]);
        }
        for (slot, &i) in reading.iter().enumerate() {
            if ready[2 + slot] {
                read_proof(&mut pending[i]);
            }
        }
        for p in pending.iter_mut().filter(|p| !p.done && p.filled == PROOF) {
            if !failures.available() {
                break; // the others wait, in arrival order
            }
            if let Some(stream) = judge(server, p, &mut failures) {
                server.start_connection(stream);
            }
        }
        let now = Instant::now();
        pending.retain(|p| !p.done && p.deadline > now);
        if ready[1] {
            accept_all(server, listener, &mut pending);
        }
    }
}

/// Reads what came of `p`'s proof; a peer that closed or sent something else is done.
fn read_proof(p: &mut Pending) {
    match sys::recv_now(p.stream.as_fd(), &mut p.proof[p.filled..]) {
        Ok(None) => {}
        Ok(Some(0)) | Err(_) => p.done = true,
        Ok(Some(n)) => {
            p.filled += n;
            if !auth::proof_may_start_with(&p.proof[..p.filled]) {
                log(format_args!(
                    "closed a connection: not a multiproc client (bad magic)"
                ));
                p.done = true;
            }
        }
    }
}

/// Checks `p`'s whole proof: the stream, answered, if the key is right.
fn judge(server: &Server, p: &mut Pending, failures: &mut Failures) -> Option<Stream> {
    p.done = true;
    match auth::server_verdict(&server.authkey, &p.nonce, &p.proof) {
        Ok(accepted) => {
            let sent = sys::send_now(p.stream.as_fd(), &accepted).ok()?;
            let stream = p.stream.try_clone().ok()?;
            (sent == accepted.len()).then_some(stream)
        }
        Err((answer, error)) => {
            if !answer.is_empty() {
                failures.spend();
                server
                    .counters
                    .auth_failures
                    .fetch_add(1, Ordering::Relaxed);
                let _ = sys::send_now(p.stream.as_fd(), answer);
            }
            log(format_args!("refused a connection: {error}"));
            None
        }
    }
}

/// Accepts every waiting connection and sends each its challenge.
fn accept_all(server: &Server, listener: &StreamListener, pending: &mut VecDeque<Pending>) {
    loop {
        let stream = match listener.accept() {
            Ok(stream) => stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) => {
                // Out of descriptors, say: the next round tries again.
                log(format_args!("cannot accept: {e}"));
                return;
            }
        };
        // On a Unix socket, the same user only, whatever key the peer holds.
        if stream.is_unix() {
            match sys::peer_uid(stream.as_fd()) {
                Ok(uid) if uid == sys::own_uid() => {}
                Ok(uid) => {
                    server.counters.refused.fetch_add(1, Ordering::Relaxed);
                    log(format_args!(
                        "refused a connection from user {uid}: not this server's user"
                    ));
                    continue;
                }
                Err(_) => continue,
            }
        }
        let Ok((hello, nonce)) = auth::server_hello() else {
            continue;
        };
        if !sys::send_now(stream.as_fd(), &hello).is_ok_and(|n| n == hello.len()) {
            continue;
        }
        pending.push_back(Pending {
            stream,
            nonce,
            proof: [0; PROOF],
            filled: 0,
            deadline: Instant::now() + HANDSHAKE_TIMEOUT,
            done: false,
        });
        if pending.len() > MAX_PENDING {
            pending.pop_front();
            server.counters.refused.fetch_add(1, Ordering::Relaxed);
            log(format_args!(
                "closed the oldest unfinished handshake: {MAX_PENDING} in flight"
            ));
        }
    }
}

/// Lines logged per second, at most; the others are counted and reported with the next.
const LOG_LINES_PER_SECOND: u32 = 5;

/// Lines waiting for the logging thread, at most; more are dropped.
const LOG_BACKLOG: usize = 64;

static LOGGER: Mutex<Option<Logger>> = Mutex::new(None);

fn logger() -> std::sync::MutexGuard<'static, Option<Logger>> {
    LOGGER.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the logging thread (before the server counts its threads, say).
pub(crate) fn start_logging() {
    logger().get_or_insert_with(Logger::start);
}

/// Writes the lines still waiting, for at most a second (standard error may be a pipe that
/// nobody reads), and stops the logging thread.
pub(crate) fn stop_logging() {
    let Some(logger) = logger().take() else {
        return;
    };
    drop(logger.lines_out); // the thread ends after the last line
    if let Some(done) = logger.done {
        let _ = done.recv_timeout(Duration::from_secs(1));
    }
}

/// Logs a line to standard error, rate-limited. It never blocks: a thread of its own writes the
/// lines, so a standard error that nobody reads (a full pipe) cannot stop the gate.
pub(crate) fn log(line: std::fmt::Arguments<'_>) {
    let mut state = logger();
    let logger = state.get_or_insert_with(Logger::start);
    let now = Instant::now();
    if now.duration_since(logger.since) >= Duration::from_secs(1) {
        logger.since = now;
        logger.lines = 0;
    }
    if logger.lines >= LOG_LINES_PER_SECOND {
        logger.suppressed += 1;
        return;
    }
    logger.lines += 1;
    let pid = std::process::id();
    let text = match std::mem::take(&mut logger.suppressed) {
        0 => format!("multiproc manager [{pid}]: {line}\n"),
        n => format!("multiproc manager [{pid}]: {line} (and {n} more not shown)\n"),
    };
    if let Some(lines) = &logger.lines_out
        && lines.try_send(text).is_err()
    {
        logger.suppressed += 1;
    }
}

/// The rate limit's state, and the way to the logging thread.
struct Logger {
    since: Instant,
    lines: u32,
    suppressed: u64,
    /// `None` if the thread could not start: then nothing is logged.
    lines_out: Option<std::sync::mpsc::SyncSender<String>>,
    /// Says when the thread has written every line.
    done: Option<std::sync::mpsc::Receiver<()>>,
}

impl Logger {
    fn start() -> Logger {
        let (lines_out, lines_in) = std::sync::mpsc::sync_channel::<String>(LOG_BACKLOG);
        let (done_out, done) = std::sync::mpsc::channel();
        let started = std::thread::Builder::new()
            .name("multiproc-manager-log".into())
            .spawn(move || {
                use std::io::Write;
                for text in lines_in {
                    let _ = std::io::stderr().write_all(text.as_bytes());
                }
                let _ = done_out.send(());
            });
        let started = started.is_ok();
        Logger {
            since: Instant::now(),
            lines: 0,
            suppressed: 0,
            lines_out: started.then_some(lines_out),
            done: started.then_some(done),
        }
    }
}
