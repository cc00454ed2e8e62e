//! The gate: one thread that accepts connections and runs all their handshakes at once, without
//! blocking on any, through [`Admission`] (whose notes say what a connection may cost and when it
//! is dropped): a right key gets in at once whatever else is in flight, wrong keys are answered
//! twenty a second at most, a burst of clients waits in the kernel's backlog (4096 deep) while
//! the in-flight list is full.
//!
//! On a Unix socket, a peer of another user is closed before anything is sent. Refusals are
//! logged to standard error, at most a few lines a second.

use std::collections::VecDeque;
use std::io::Read;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Server;
use crate::channel::ConnectError;
use crate::channel::admission::{Admission, Admitted, MAX_IN_FLIGHT};
use crate::sys::{self, Stream, StreamListener};

/// How long the gate stops accepting after `accept` fails (out of descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// How long a refused connection is kept open, its input read and dropped, so that the client
/// reads the refusal (a close with its request unread would reset the connection over TCP, and
/// the refusal with it).
const LINGER: Duration = Duration::from_secs(1);

/// Refused connections lingering at once, at most; more are closed at once.
const LINGERING_MAX: usize = 256;

/// Accepts and authenticates connections until the server stops.
pub(crate) fn run(server: &Arc<Server>, listener: &StreamListener, wake: &Stream) {
    if let Err(e) = listener.set_nonblocking(true) {
        log(format_args!("cannot serve: {e}"));
        return;
    }
    let mut admission: Admission<Stream> = Admission::new(&server.authkey);
    let mut outcomes = Vec::new();
    let mut paused_until: Option<Instant> = None;
    let mut lingering: VecDeque<(Stream, Instant)> = VecDeque::new();
    while !server.stopping.load(Ordering::SeqCst) {
        server
            .counters
            .handshakes
            .store(admission.len(), Ordering::Relaxed);
        // Poll the wake-up socket, the listener (when a connection can be taken), and the
        // handshakes still proving.
        let now = Instant::now();
        let room_at = admission.room_at(now);
        let accepting = room_at <= now && paused_until.is_none_or(|until| until <= now);
        let mut fds = vec![wake.as_fd()];
        if accepting {
            fds.push(listener.as_fd());
        }
        let first_lingering = fds.len();
        fds.extend(lingering.iter().map(|(stream, _)| stream.as_fd()));
        let first_socket = fds.len();
        fds.extend(admission.sockets());
        let deadline = [
            admission.next_deadline(),
            (!accepting).then_some(room_at.max(paused_until.unwrap_or(room_at))),
            lingering.front().map(|(_, until)| *until),
        ]
        .into_iter()
        .flatten()
        .min();
        let Ok(ready) = sys::wait_any_readable(&fds, deadline) else {
            std::thread::sleep(ACCEPT_BACKOFF);
            continue;
        };
        drop(fds);
        if ready[0] {
            let _ = (&*wake).read(&mut [0u8; 64]);
        }
        linger(&mut lingering, &ready[first_lingering..first_socket]);
        admission.progress(&ready[first_socket..], &mut outcomes);
        if accepting && ready[1] && !accept_all(server, listener, &mut admission, &mut outcomes) {
            paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
        }
        for outcome in outcomes.drain(..) {
            if let Some(refused) = settle(server, outcome)
                && lingering.len() < LINGERING_MAX
            {
                lingering.push_back((refused, Instant::now() + LINGER));
            }
        }
    }
}

/// Reads and drops what the lingering connections sent (`ready` in their order); closes those
/// that ended or whose time is up.
fn linger(lingering: &mut VecDeque<(Stream, Instant)>, ready: &[bool]) {
    let now = Instant::now();
    let mut index = 0;
    lingering.retain(|(stream, until)| {
        let is_ready = ready.get(index).copied().unwrap_or(false);
        index += 1;
        // The end of its input, or a failure: the client has gone.
        let ended = is_ready
            && matches!(
                sys::recv_now(stream.as_fd(), &mut [0u8; 4096]),
                Ok(Some(0)) | Err(_)
            );
        !ended && *until > now
    });
}

/// Hands over, counts and logs what came of a handshake; a connection the server refused (over
/// its limit) comes back, to linger.
fn settle(server: &Arc<Server>, outcome: Admitted<Stream>) -> Option<Stream> {
    match outcome {
        Admitted::In(stream) => return server.start_connection(stream),
        // Silent until the deadline: a slow client's loss, or a slowloris; not worth a line.
        Admitted::Refused(ConnectError::HandshakeTimeout) => {}
        Admitted::Refused(error) => {
            count_failure(server, &error);
            log(format_args!("refused a connection: {error}"));
        }
        Admitted::Refusing(refusal) => {
            // Counted before the client can read its refusal (and ask for the count).
            count_failure(server, refusal.error());
            let error = refusal.send();
            log(format_args!("refused a connection: {error}"));
        }
        Admitted::Evicted => {
            server.counters.refused.fetch_add(1, Ordering::Relaxed);
            log(format_args!(
                "closed an unfinished handshake to make room: {MAX_IN_FLIGHT} in flight"
            ));
        }
    }
    None
}

/// Counts a refusal for a wrong key.
fn count_failure(server: &Server, error: &ConnectError) {
    if matches!(error, ConnectError::AuthFailed) {
        server
            .counters
            .auth_failures
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// Accepts the waiting connections while there is room, and sends each its challenge; false if
/// `accept` failed (out of descriptors, say: the gate then pauses).
fn accept_all(
    server: &Server,
    listener: &StreamListener,
    admission: &mut Admission<Stream>,
    outcomes: &mut Vec<Admitted<Stream>>,
) -> bool {
    while admission.has_room(Instant::now(), outcomes) {
        let stream = match listener.accept() {
            Ok(stream) => stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(e) => {
                log(format_args!("cannot accept: {e}"));
                return false;
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
        admission.start(stream);
    }
    true
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
