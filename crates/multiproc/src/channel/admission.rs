//! [`Admission`]: the accepting side of many handshakes at once, none blocking another. The
//! manager's gate and [`Listener`](super::Listener) both admit connections through it.
//!
//! - Each connection is sent its challenge when it is started, and has [`HANDSHAKE_TIMEOUT`] to
//!   prove it holds the key; then it is dropped.
//! - A whole proof is judged as soon as it is read. A right one is answered at once: no wait,
//!   whatever else is in flight.
//! - A wrong one is answered later: at most [`FAILURES_PER_SECOND`] refusals a second (after a
//!   burst of as many), in the order they failed, so that guessing a key goes no faster than that
//!   and a flood of wrong keys costs a bounded list, not CPU. The refusal is the fixed code of
//!   `auth`, then the connection closes.
//! - Bytes that cannot begin a proof (an HTTP request, say) drop the connection at once.
//! - At most [`MAX_IN_FLIGHT`] connections are in flight. When it is full, room is made for a new
//!   one by dropping a connection that failed (waiting for its refusal), else the one that has
//!   been silent longest, if that is over [`SILENT_FOR`]; else [`Admission::has_room`] says no and
//!   the caller leaves the newcomers in the kernel's backlog until there is room. So a burst of
//!   right-key clients all get in, and silent connections (slowloris) can delay a client by about
//!   [`SILENT_FOR`] per thousand, never keep it out.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use super::ConnectError;
use super::auth::{self, HANDSHAKE_TIMEOUT, NONCE, PROOF};
use crate::sys;

/// Connections in their handshake at once, at most (proving, or waiting for their refusal).
pub(crate) const MAX_IN_FLIGHT: usize = 1024;

/// Wrong keys answered per second, at most, after a burst of as many.
pub(crate) const FAILURES_PER_SECOND: f64 = 20.0;

/// A connection silent this long may be dropped to make room for a new one.
pub(crate) const SILENT_FOR: Duration = Duration::from_secs(1);

/// What came of a connection in its handshake.
#[derive(Debug)]
pub(crate) enum Admitted<S> {
    /// It proved the key, and was answered: ready for use.
    In(S),
    /// It was refused unanswered: a wrong key whose client gave up waiting for its refusal,
    /// bytes that are no proof, or silence until the handshake deadline
    /// ([`ConnectError::HandshakeTimeout`]).
    Refused(ConnectError),
    /// A wrong key, whose refusal is the caller's to send ([`Refusal::send`]): after it has
    /// counted the failure, so that a client that reads its refusal and then asks for the count
    /// finds itself in it.
    Refusing(Refusal<S>),
    /// It was dropped unfinished, to make room.
    Evicted,
}

/// A refused connection and the refusal it is owed.
#[derive(Debug)]
pub(crate) struct Refusal<S> {
    socket: S,
    answer: &'static [u8],
    error: ConnectError,
}

impl<S: AsFd> Refusal<S> {
    /// Why it was refused.
    pub(crate) fn error(&self) -> &ConnectError {
        &self.error
    }

    /// Sends the refusal and closes the connection; gives why.
    pub(crate) fn send(self) -> ConnectError {
        let _ = sys::send_now(self.socket.as_fd(), self.answer);
        self.error
    }
}

/// A connection proving itself.
struct Proving<S> {
    socket: S,
    nonce: [u8; NONCE],
    proof: [u8; PROOF],
    filled: usize,
    started: Instant,
    /// When it last sent something (or was started).
    heard: Instant,
}

/// A connection that failed, waiting for its refusal.
struct Failed<S> {
    socket: S,
    answer: &'static [u8],
    error: ConnectError,
    started: Instant,
}

/// The handshakes in flight for one listening socket.
pub(crate) struct Admission<S> {
    authkey: Vec<u8>,
    /// [`MAX_IN_FLIGHT`], but for tests.
    capacity: usize,
    proving: VecDeque<Proving<S>>,
    failed: VecDeque<Failed<S>>,
    budget: Budget,
}

impl<S: AsFd> Admission<S> {
    pub(crate) fn new(authkey: &[u8]) -> Admission<S> {
        Admission::with_capacity(authkey, MAX_IN_FLIGHT)
    }

    fn with_capacity(authkey: &[u8], capacity: usize) -> Admission<S> {
        Admission {
            authkey: authkey.to_vec(),
            capacity,
            proving: VecDeque::new(),
            failed: VecDeque::new(),
            budget: Budget::new(),
        }
    }

    /// Connections in flight.
    pub(crate) fn len(&self) -> usize {
        self.proving.len() + self.failed.len()
    }

    /// When a new connection can be started: `now` (or earlier) if there is room or a connection
    /// may be dropped for it, else when the quietest will have been silent for [`SILENT_FOR`].
    pub(crate) fn room_at(&self, now: Instant) -> Instant {
        if self.len() < self.capacity || !self.failed.is_empty() {
            return now;
        }
        self.proving
            .iter()
            .map(|p| p.heard + SILENT_FOR)
            .min()
            .unwrap_or(now)
    }

    /// Whether a new connection can be started now, after dropping one if that is allowed (see
    /// the module's notes); what was dropped is in `out`.
    pub(crate) fn has_room(&mut self, now: Instant, out: &mut Vec<Admitted<S>>) -> bool {
        if self.len() < self.capacity {
            return true;
        }
        if self.failed.pop_front().is_some() {
            out.push(Admitted::Evicted);
            return true;
        }
        let quietest = (0..self.proving.len()).min_by_key(|&i| self.proving[i].heard);
        match quietest {
            Some(i) if now.duration_since(self.proving[i].heard) >= SILENT_FOR => {
                self.proving.remove(i);
                out.push(Admitted::Evicted);
                true
            }
            _ => false,
        }
    }

    /// Starts the handshake of `socket`: sends its challenge. (Call [`has_room`](Self::has_room)
    /// first.) A socket that cannot take the challenge now is dropped.
    pub(crate) fn start(&mut self, socket: S) {
        let Ok((hello, nonce)) = auth::server_hello() else {
            return;
        };
        if !sys::send_now(socket.as_fd(), &hello).is_ok_and(|n| n == hello.len()) {
            return;
        }
        let now = Instant::now();
        self.proving.push_back(Proving {
            socket,
            nonce,
            proof: [0; PROOF],
            filled: 0,
            started: now,
            heard: now,
        });
    }

    /// The sockets to wait on for their proofs, in the order [`progress`](Self::progress) takes
    /// their readiness.
    pub(crate) fn sockets(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.proving.iter().map(|p| p.socket.as_fd())
    }

    /// When [`progress`](Self::progress) has something to do even if no socket is ready: a
    /// handshake's deadline, or the next refusal the budget allows.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let expiry = self
            .proving
            .iter()
            .map(|p| p.started)
            .chain(self.failed.iter().map(|f| f.started))
            .min()
            .map(|started| started + HANDSHAKE_TIMEOUT);
        let refusal = (!self.failed.is_empty()).then(|| Instant::now() + self.budget.next());
        match (expiry, refusal) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether a connection started at `at` or before is still in flight.
    pub(crate) fn started_by(&self, at: Instant) -> bool {
        self.proving.iter().any(|p| p.started <= at) || self.failed.iter().any(|f| f.started <= at)
    }

    /// Reads the proofs of the sockets that are `ready` (in the order of
    /// [`sockets`](Self::sockets)), judges the whole ones, answers the refusals the budget
    /// allows, and drops the handshakes past their deadline; what came of each is in `out`.
    pub(crate) fn progress(&mut self, ready: &[bool], out: &mut Vec<Admitted<S>>) {
        let now = Instant::now();
        let mut i = 0;
        let mut index = 0;
        while i < self.proving.len() {
            let is_ready = ready.get(index).copied().unwrap_or(false);
            index += 1;
            let p = &mut self.proving[i];
            let keep = if is_ready {
                read_proof(p, now)
            } else {
                Read::Partial
            };
            match keep {
                Read::Partial if now.duration_since(p.started) < HANDSHAKE_TIMEOUT => i += 1,
                Read::Partial => {
                    self.proving.remove(i);
                    out.push(Admitted::Refused(ConnectError::HandshakeTimeout));
                }
                Read::Dropped(error) => {
                    self.proving.remove(i);
                    out.extend(error.map(Admitted::Refused));
                }
                Read::Whole => {
                    let p = self.proving.remove(i).expect("in bounds");
                    if let Some(judged) = self.judge(p) {
                        out.push(judged);
                    }
                }
            }
        }
        self.answer_refusals(now, out);
    }

    /// A whole proof's verdict: a right one is answered now; a wrong one waits for its refusal.
    fn judge(&mut self, p: Proving<S>) -> Option<Admitted<S>> {
        match auth::server_verdict(&self.authkey, &p.nonce, &p.proof) {
            Ok(accepted) => sys::send_now(p.socket.as_fd(), &accepted)
                .is_ok_and(|n| n == accepted.len())
                .then_some(Admitted::In(p.socket)),
            Err((&[], error)) => Some(Admitted::Refused(error)),
            Err((answer, error)) => {
                self.failed.push_back(Failed {
                    socket: p.socket,
                    answer,
                    error,
                    started: p.started,
                });
                None
            }
        }
    }

    /// Answers the failed connections as far as the budget allows, oldest first; those whose
    /// client gave up waiting (past the handshake deadline) are dropped unanswered.
    fn answer_refusals(&mut self, now: Instant, out: &mut Vec<Admitted<S>>) {
        while self
            .failed
            .front()
            .is_some_and(|f| now.duration_since(f.started) >= HANDSHAKE_TIMEOUT)
        {
            let f = self.failed.pop_front().expect("not empty");
            out.push(Admitted::Refused(f.error));
        }
        while !self.failed.is_empty() && self.budget.take() {
            let f = self.failed.pop_front().expect("not empty");
            out.push(Admitted::Refusing(Refusal {
                socket: f.socket,
                answer: f.answer,
                error: f.error,
            }));
        }
    }
}

/// What reading a proof came to.
enum Read {
    /// Not all of it yet.
    Partial,
    /// All of it.
    Whole,
    /// The peer closed, failed, or sent what is no proof (with the error to report, if any).
    Dropped(Option<ConnectError>),
}

fn read_proof<S: AsFd>(p: &mut Proving<S>, now: Instant) -> Read {
    match sys::recv_now(p.socket.as_fd(), &mut p.proof[p.filled..]) {
        Ok(None) => Read::Partial,
        Ok(Some(0)) | Err(_) => Read::Dropped(None),
        Ok(Some(n)) => {
            p.filled += n;
            p.heard = now;
            if !auth::proof_may_start_with(&p.proof[..p.filled]) {
                Read::Dropped(Some(ConnectError::Protocol(
                    "not a multiproc client (bad magic)",
                )))
            } else if p.filled == PROOF {
                Read::Whole
            } else {
                Read::Partial
            }
        }
    }
}

/// The refusals that may be answered: a token bucket of [`FAILURES_PER_SECOND`].
struct Budget {
    tokens: f64,
    at: Instant,
}

impl Budget {
    fn new() -> Budget {
        Budget {
            tokens: FAILURES_PER_SECOND,
            at: Instant::now(),
        }
    }

    /// Takes a token, if one is there.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let earned = now.duration_since(self.at).as_secs_f64() * FAILURES_PER_SECOND;
        self.tokens = (self.tokens + earned).min(FAILURES_PER_SECOND);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until a token is there.
    fn next(&self) -> Duration {
        let earned = self.at.elapsed().as_secs_f64() * FAILURES_PER_SECOND;
        Duration::from_secs_f64(((1.0 - self.tokens - earned) / FAILURES_PER_SECOND).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::channel::auth::HELLO;
    use crate::sys::Stream;

    /// A connection's two ends: the server's, started in `admission`, and the client's, which has
    /// read its challenge.
    fn connect(admission: &mut Admission<Stream>) -> (Stream, [u8; HELLO]) {
        let (server, mut client) = Stream::pair().unwrap();
        admission.start(server);
        let mut hello = [0u8; HELLO];
        client.read_exact(&mut hello).unwrap();
        (client, hello)
    }

    fn prove(client: &mut Stream, hello: &[u8; HELLO], key: &[u8]) {
        let (proof, _) = auth::client_proof(key, hello[8..].try_into().unwrap()).unwrap();
        client.write_all(&proof).unwrap();
    }

    /// Progress with every socket ready (a socket with nothing to read reads nothing).
    fn progress(admission: &mut Admission<Stream>) -> Vec<Admitted<Stream>> {
        let ready = vec![true; admission.sockets().count()];
        let mut out = Vec::new();
        admission.progress(&ready, &mut out);
        out
    }

    #[test]
    fn a_right_proof_is_let_in_at_once_and_a_wrong_one_waits_for_the_budget() {
        let mut admission = Admission::new(b"key");
        // Spend the burst of refusals.
        let mut wrong = Vec::new();
        for _ in 0..FAILURES_PER_SECOND as usize + 1 {
            let (mut client, hello) = connect(&mut admission);
            prove(&mut client, &hello, b"a guess");
            wrong.push(client);
        }
        let (mut right, hello) = connect(&mut admission);
        prove(&mut right, &hello, b"key");
        let out = progress(&mut admission);
        let refused = out
            .iter()
            .filter(|o| matches!(o, Admitted::Refusing(r) if matches!(r.error(), ConnectError::AuthFailed)))
            .count();
        assert_eq!(
            refused, FAILURES_PER_SECOND as usize,
            "the burst, then a wait"
        );
        assert_eq!(
            out.iter().filter(|o| matches!(o, Admitted::In(_))).count(),
            1
        );
        assert_eq!(admission.len(), 1, "one failure waits for its refusal");
        assert!(admission.next_deadline().is_some());
    }

    #[test]
    fn when_full_a_failure_then_a_long_silence_makes_room_and_nothing_else_does() {
        let mut admission = Admission::with_capacity(b"key", 2);
        let mut out = Vec::new();
        let now = Instant::now();
        // Two silent ones fill it: no room until one has been silent for SILENT_FOR.
        let (_a, _) = connect(&mut admission);
        let (_b, _) = connect(&mut admission);
        assert!(!admission.has_room(now, &mut out));
        assert!(admission.room_at(now) > now);
        let later = now + SILENT_FOR + Duration::from_millis(10);
        assert!(admission.has_room(later, &mut out));
        assert!(matches!(out.as_slice(), [Admitted::Evicted]));
        // A failure waiting for its refusal goes first, however recent.
        let (mut c, hello) = connect(&mut admission);
        prove(&mut c, &hello, b"a guess");
        admission.budget.tokens = -1000.0; // no refusal may be answered for a long while
        progress(&mut admission);
        assert_eq!(admission.len(), 2);
        out.clear();
        assert!(admission.has_room(Instant::now(), &mut out));
        assert!(matches!(out.as_slice(), [Admitted::Evicted]));
        assert_eq!(admission.failed.len(), 0);
    }
}
