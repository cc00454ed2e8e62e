//! The manager's server.
//!
//! # Implementation notes
//!
//! One thread, the gate (`gate`), accepts connections and runs every handshake at once without
//! blocking, so that connections which never authenticate cost a slot in a bounded list, not a
//! thread. An authenticated connection gets a thread of its own (at most [`MAX_CONNECTIONS`]),
//! which reads requests, runs them on the table of objects (`table`, `dispatch`) and answers,
//! in order. Between requests it polls for the next one for a moment, while that pays for its
//! connection (`crate::spin`), and otherwise sleeps in the kernel until the client sends.
//!
//! The table sits behind one mutex, so every operation is atomic. An operation that waits (a
//! lock, a queue, a barrier: `waits`) releases the table while it sleeps on one condition
//! variable, notified on every change that may end a wait. A user type's method runs outside the
//! table, one call at a time per object (`hosted`): user code may call the manager itself.
//!
//! Objects hold MessagePack values: the server never runs code that came over the wire; it stores,
//! compares and adds values, and calls the methods of user types compiled into it.

pub(crate) mod data;
mod dict;
mod dispatch;
mod gate;
mod hosted;
mod lifetime;
mod refs;
mod table;
mod waits;

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rmpv::Value;

use super::ErrorCode;
use super::protocol::frame::{self, FrameError};
use super::protocol::wire::{self, Response, WireError};
use super::protocol::{Op, VERSION};
use super::proxy::FreeHook;
use crate::colocate::Follower;
use crate::spin::Spinner;
use crate::sys::{self, Stream, StreamListener};
pub(crate) use hosted::Methods;
pub(crate) use lifetime::DEFAULT_LOAN_GRACE;
use table::Table;
use waits::Owner;

/// Authenticated connections served at once, at most; more are refused after their handshake
/// (`TooManyConnections`, then closed).
pub(crate) const MAX_CONNECTIONS: usize = 1024;

/// Connections of one client at once, at most (a process's session: its shared connection and
/// one per call waiting at once), so that no client takes every connection.
pub(crate) const MAX_CONNECTIONS_PER_CLIENT: usize = 256;

/// How often a waiting operation checks that its caller is still connected.
const CALLER_CHECK: Duration = Duration::from_millis(100);

/// What the server counts, for the `stats` operation.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicUsize,
    pub(crate) handshakes: AtomicUsize,
    pub(crate) auth_failures: AtomicU64,
    pub(crate) refused: AtomicU64,
}

pub(crate) struct Server {
    table: Mutex<Table>,
    /// Notified on every change that may end a wait.
    changed: Condvar,
    authkey: Vec<u8>,
    /// The registered user types, by name.
    types: HashMap<String, Methods>,
    /// What runs when an object of a user type is freed, by type name.
    free_hooks: HashMap<String, FreeHook>,
    /// The table's: whether objects of hooked types were freed since the hooks last ran.
    any_freed: Arc<AtomicBool>,
    counters: Counters,
    next_connection: AtomicU64,
    /// The connections of each client, by client id.
    clients: Mutex<HashMap<u64, usize>>,
    /// The next call chain of a method call that came from outside a method (`hosted`).
    next_chain: AtomicU64,
    /// A clone of each open connection's stream, to close them all at shutdown.
    open: Mutex<HashMap<u64, Stream>>,
    /// Set by a `shutdown` request; the gate ends when woken.
    stopping: AtomicBool,
    /// Wakes the gate.
    wake: Stream,
}

/// Who runs an operation: its client, the owner within the client that the request names, and its
/// connection's socket, to check that it is still there.
pub(crate) struct Caller<'a> {
    pub(crate) client: u64,
    pub(crate) handle: u64,
    socket: BorrowedFd<'a>,
}

impl Caller<'_> {
    /// Whether the caller hung up.
    pub(crate) fn gone(&self) -> bool {
        sys::peer_hung_up(self.socket)
    }

    /// The owner of what the request takes.
    pub(crate) fn owner(&self) -> Owner {
        Owner {
            client: self.client,
            handle: self.handle,
        }
    }
}

/// The client of a connection that has not said `hello`: itself alone, an id no session draws
/// (theirs are random; this one has the top bit set and counts connections).
fn lone_client(connection: u64) -> u64 {
    connection | 1 << 63
}

/// How a wait ended.
pub(crate) enum Waited<T> {
    Done(T),
    TimedOut,
    /// The caller hung up while it waited.
    CallerGone,
}

/// Serves on `listener` until a `shutdown` request; then closes every connection and returns.
/// A loan (a proxy in flight) lasts `loan_grace` unless claimed first.
pub(crate) fn serve(
    listener: StreamListener,
    authkey: Vec<u8>,
    types: Vec<(String, Methods)>,
    free_hooks: Vec<(String, FreeHook)>,
    loan_grace: Duration,
) {
    gate::start_logging();
    sys::raise_descriptor_limit();
    let Ok((wake_here, wake)) = Stream::pair() else {
        gate::log(format_args!("cannot start: no socket pair for the gate"));
        gate::stop_logging();
        return;
    };
    let table = Table::new(
        loan_grace,
        free_hooks.iter().map(|(name, _)| name.clone()).collect(),
    );
    let server = Arc::new(Server {
        any_freed: table.any_freed.clone(),
        table: Mutex::new(table),
        free_hooks: free_hooks.into_iter().collect(),
        changed: Condvar::new(),
        authkey,
        types: types.into_iter().collect(),
        counters: Counters::default(),
        next_connection: AtomicU64::new(1),
        clients: Mutex::new(HashMap::new()),
        next_chain: AtomicU64::new(hosted::first_chain()),
        open: Mutex::new(HashMap::new()),
        stopping: AtomicBool::new(false),
        wake,
    });
    gate::run(&server, &listener, &wake_here);
    // Close every connection: their threads end at their next read.
    for (_, stream) in server.lock_open().drain() {
        stream.shut_down();
    }
    gate::stop_logging();
}

impl Server {
    fn lock_table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_open(&self) -> MutexGuard<'_, HashMap<u64, Stream>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = (&self.wake).write_all(&[1]);
    }

    fn lock_clients(&self) -> MutexGuard<'_, HashMap<u64, usize>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves an authenticated connection on a thread of its own; gives it back, told why, if it
    /// is over the limit (to be closed once the client has read that).
    fn start_connection(self: &Arc<Self>, mut stream: Stream) -> Option<Stream> {
        if self.counters.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            self.counters.connections.fetch_sub(1, Ordering::SeqCst);
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            gate::log(format_args!(
                "refused a connection: {MAX_CONNECTIONS} are open"
            ));
            let refusal = WireError::new(
                ErrorCode::TooManyConnections,
                format!("the server serves {MAX_CONNECTIONS} connections at most, and has as many"),
            );
            // Told before its first request is read: a fresh socket takes this frame at once.
            let _ = reply(&mut stream, 0, Err(refusal));
            return Some(stream);
        }
        let connection = self.next_connection.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            self.lock_open().insert(connection, clone);
        }
        let server = self.clone();
        let spawned = std::thread::Builder::new()
            .name("multiproc-manager-conn".into())
            .spawn(move || {
                let client = server.connection(connection, stream);
                server.lock_open().remove(&connection);
                server.leave(client);
                server.counters.connections.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            // The stream went with the closure, and is closed.
            self.lock_open().remove(&connection);
            self.counters.connections.fetch_sub(1, Ordering::SeqCst);
        }
        None
    }

    /// A connection of `client` ended: when it was its last, what the client held is released.
    fn leave(&self, client: u64) {
        let mut clients = self.lock_clients();
        let last = match clients.get_mut(&client) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            _ => {
                clients.remove(&client);
                true
            }
        };
        drop(clients);
        if last {
            self.release_client(client);
            self.run_free_hooks();
        }
    }

    /// Runs the free hooks of the user objects freed since the last time, outside the table's
    /// lock (a hook may take its host's own locks, or call this manager).
    fn run_free_hooks(&self) {
        // One atomic load per request; the table's lock only when an object of a hooked type
        // was freed.
        if !self.any_freed.swap(false, Ordering::Acquire) {
            return;
        }
        let freed = std::mem::take(&mut self.lock_table().freed_users);
        for (type_name, state) in freed {
            if let Some(hook) = self.free_hooks.get(&type_name) {
                // A panicking hook loses that object's clean-up, not the connection.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(state)));
            }
        }
    }

    /// Makes `connection`, so far of client `from`, one of client `to` (its `hello`), within the
    /// limit of connections per client.
    fn join_client(&self, from: u64, to: u64) -> Result<(), WireError> {
        let mut clients = self.lock_clients();
        if clients.get(&to).copied().unwrap_or(0) >= MAX_CONNECTIONS_PER_CLIENT {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return Err(WireError::new(
                ErrorCode::TooManyConnections,
                format!(
                    "a client has {MAX_CONNECTIONS_PER_CLIENT} connections at most (one per call \
                     waiting at once, and one more), and this one has as many"
                ),
            ));
        }
        *clients.entry(to).or_default() += 1;
        if let Some(count) = clients.get_mut(&from) {
            *count -= 1;
            if *count == 0 {
                clients.remove(&from);
            }
        }
        Ok(())
    }

    /// `hello [version, client id]`, the first request of a connection: whose it is.
    fn hello(&self, client: u64, args: &[Value]) -> Result<u64, WireError> {
        let version = args.first().and_then(Value::as_u64);
        if version != Some(VERSION) {
            return Err(WireError::new(
                ErrorCode::VersionMismatch,
                format!(
                    "this server speaks version {VERSION} of the protocol, not {}",
                    args.first().map_or("none".to_owned(), Value::to_string)
                ),
            ));
        }
        let id = args
            .get(1)
            .and_then(Value::as_u64)
            .ok_or_else(|| data::bad("hello takes [version, client id]"))?;
        self.join_client(client, id)?;
        Ok(id)
    }

    /// Reads requests and answers them, in order, until the client goes or breaks the protocol.
    /// Returns the connection's client at the end.
    fn connection(&self, connection: u64, stream: Stream) -> u64 {
        let mut client = lone_client(connection);
        self.lock_clients().insert(client, 1);
        let Ok(mut writer) = stream.try_clone() else {
            return client;
        };
        let mut reader = BufReader::new(stream);
        let spinner = Spinner::round_trips();
        let mut follower = Follower::new();
        let mut first = true;
        loop {
            let read = frame::read_frame_soon(&mut reader, frame::DEFAULT_MAX_FRAME, &spinner);
            let payload = match read {
                Ok(payload) => payload,
                Err(FrameError::TooLarge { len, max }) => {
                    let error = WireError::new(
                        ErrorCode::FrameTooLarge,
                        format!("a frame of {len} bytes is over the limit of {max}"),
                    );
                    let _ = reply(&mut writer, 0, Err(error));
                    return client;
                }
                Err(FrameError::BadMagic) => {
                    gate::log(format_args!("closed a connection: not a manager frame"));
                    return client;
                }
                Err(_) => return client, // closed, or a broken stream
            };
            let decoded = wire::decode_request(&payload);
            let client_cpu = decoded.as_ref().ok().and_then(|r| r.context.cpu);
            follower.follow(client_cpu);
            spinner.peer_ran_on(client_cpu);
            let caller = Caller {
                client,
                handle: decoded.as_ref().map_or(0, |r| r.context.owner),
                socket: writer.as_fd(),
            };
            let hello = decoded
                .as_ref()
                .is_ok_and(|r| r.object == 0 && r.op == Op::Hello.name());
            let (id, result) = match decoded {
                Ok(request) if request.object == 0 && request.op == Op::Shutdown.name() => {
                    let _ = reply(&mut writer, request.id, Ok(Value::Nil));
                    self.stop();
                    return client;
                }
                Ok(request) if hello && first => match self.hello(client, &request.args) {
                    Ok(id) => {
                        client = id;
                        (request.id, Ok(Value::from(VERSION)))
                    }
                    Err(refused) => {
                        // Over a limit, or another version: said, and the connection ends.
                        let _ = reply(&mut writer, request.id, Err(refused));
                        return client;
                    }
                },
                Ok(request) if hello => (
                    request.id,
                    Err(data::bad(
                        "hello is the first request of a connection, once",
                    )),
                ),
                Ok(request) => {
                    let id = request.id;
                    let result = self.run(&caller, request);
                    self.run_free_hooks();
                    (id, result)
                }
                // Refused undecoded: answered with its id when it has one, so that the client
                // stays in step and this call alone fails.
                Err(error) => (wire::request_id(&payload).unwrap_or(0), Err(error)),
            };
            first = false;
            if result.as_ref().is_err_and(waits::is_caller_gone) {
                return client; // a wait abandoned by its caller: nobody to answer
            }
            if reply(&mut writer, id, result).is_err() {
                return client;
            }
        }
    }

    /// Runs `step` on the table until it gives a value, sleeping (the table released) between
    /// changes, until `deadline`. A caller that hung up gets nothing: before the first attempt
    /// (its request may have waited in the socket after it died), after every sleep, and at least
    /// every [`CALLER_CHECK`], the wait checks that it is still there, before `step` can take a
    /// lock, a permit or an item for it. Returns the table, locked, with the outcome.
    fn wait_for<'a, T>(
        &'a self,
        mut table: MutexGuard<'a, Table>,
        caller: &Caller<'_>,
        deadline: Option<Instant>,
        mut step: impl FnMut(&mut Table) -> Result<Option<T>, WireError>,
    ) -> (MutexGuard<'a, Table>, Result<Waited<T>, WireError>) {
        if caller.gone() {
            return (table, Ok(Waited::CallerGone));
        }
        loop {
            match step(&mut table) {
                Ok(Some(value)) => return (table, Ok(Waited::Done(value))),
                Ok(None) => {}
                Err(e) => return (table, Err(e)),
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return (table, Ok(Waited::TimedOut));
            }
            let nap = deadline.map_or(CALLER_CHECK, |d| (d - now).min(CALLER_CHECK));
            table = self
                .changed
                .wait_timeout(table, nap)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            if caller.gone() {
                return (table, Ok(Waited::CallerGone));
            }
        }
    }
}

impl Server {
    /// [`wait_for`](Self::wait_for), releasing the table at the end.
    fn wait<T>(
        &self,
        table: MutexGuard<'_, Table>,
        caller: &Caller<'_>,
        deadline: Option<Instant>,
        step: impl FnMut(&mut Table) -> Result<Option<T>, WireError>,
    ) -> Result<Waited<T>, WireError> {
        let (table, waited) = self.wait_for(table, caller, deadline, step);
        drop(table);
        waited
    }
}

/// Answers request `id`. An answer over the frame cap is replaced by `FrameTooLarge`: the client
/// stays in step, and only that call fails.
fn reply(out: &mut impl Write, id: u64, result: Result<Value, WireError>) -> std::io::Result<()> {
    let mut frame = wire::framed(&Response { id, result });
    if frame.payload_len() > frame::DEFAULT_MAX_FRAME {
        let error = WireError::new(
            ErrorCode::FrameTooLarge,
            format!(
                "an answer of {} bytes is over the limit of {}",
                frame.payload_len(),
                frame::DEFAULT_MAX_FRAME
            ),
        );
        frame = wire::framed(&Response {
            id,
            result: Err(error),
        });
    }
    frame.write_to(out)
}
