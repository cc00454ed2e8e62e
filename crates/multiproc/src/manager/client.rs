//! [`Session`]: a process's connections to one manager, as one client; and [`Client`], one of
//! those connections, one request at a time.
//!
//! A session is one client to the server (it says so with `hello`, under a random id): what its
//! proxies take (a lock) belongs to the proxy's handle within the client, not to a connection, and
//! is released when the last of the client's connections ends (its process died, say). Calls that
//! do not wait share one connection, made again if it breaks. A call that may wait (a lock's
//! acquire, a queue's get) takes a connection of the session's pool for its duration, made if none
//! is idle: a process holding ten thousand lock proxies uses as many connections as it has calls
//! waiting at once, not one per proxy. A forked child never uses the sessions it inherited: each
//! session knows its process, and refuses calls from another
//! ([`ManagerError::InheritedThroughFork`]).
//!
//! The session also keeps the server's count of what this process holds (`Hold`, in `handle`):
//! every object id a reply gives is one hold of this client's, given up with `release` when the
//! last handle sharing it is dropped; a proxy that is serialized takes a `lend`, and one that
//! arrives claims it with `hold`.

use std::fmt;
use std::io::{BufReader, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use rmpv::Value;

use super::chain;
use super::protocol::frame::FrameError;
use super::protocol::wire::{self, Context, Request, Response};
use super::protocol::{self, Op, frame, value};
use super::{ErrorCode, ManagerError};
use crate::address::Address;
use crate::channel::auth::{self, Framing};
use crate::channel::{ConnectError, HANDSHAKE_TIMEOUT};
use crate::colocate;
use crate::spin::Spinner;
use crate::sys::{self, ProcessId, Stream};

/// Idle connections a session keeps for calls that wait, at most; more are closed.
const IDLE_MAX: usize = 8;

/// Where a session's objects live: what a proxy leaving for another process carries (with the
/// key, apart), and what its session there connects to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Endpoint {
    /// A manager process.
    Manager(Address),
    /// A Redis server and namespace (the key is the URL's password).
    #[cfg(feature = "redis")]
    Redis(super::redis::Target),
}

impl Endpoint {
    /// Where clients connect: the manager's address, or the Redis server's.
    pub(crate) fn address(&self) -> Address {
        match self {
            Endpoint::Manager(address) => address.clone(),
            #[cfg(feature = "redis")]
            Endpoint::Redis(target) => target.address(),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Manager(address) => write!(f, "{address}"),
            #[cfg(feature = "redis")]
            Endpoint::Redis(target) => write!(f, "{target}"),
        }
    }
}

/// Who a call is for: an owner within the client (a handle), and the fencing token its view
/// carries, if any.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Who {
    pub(crate) owner: u64,
    pub(crate) fence: Option<u64>,
}

/// A process's connections to one manager, as one client (see the module's notes).
pub(crate) struct Session {
    pub(crate) endpoint: Endpoint,
    /// Where clients connect ([`Endpoint::address`], kept).
    pub(crate) address: Address,
    /// The manager's key, or Redis's password.
    pub(crate) authkey: Vec<u8>,
    link: Link,
    next_owner: AtomicU64,
    /// The process whose session it is.
    pid: u32,
    /// Tells this manager's references from another's (a hash of its endpoint).
    pub(crate) fingerprint: u64,
}

/// What a session's calls go through.
enum Link {
    /// A manager process's connections.
    Manager {
        /// The id this client gives the server.
        id: u64,
        /// For the calls that do not wait.
        shared: Client,
        /// For the calls that wait, each taken for one call.
        idle: Mutex<Vec<Client>>,
    },
    /// A Redis server's.
    #[cfg(feature = "redis")]
    Redis(Box<super::redis::Store>),
}

impl Session {
    /// A new client of the manager at `endpoint`: connects and authenticates with `authkey`.
    pub(crate) fn open(endpoint: &Endpoint, authkey: &[u8]) -> Result<Arc<Session>, ManagerError> {
        let link = match endpoint {
            Endpoint::Manager(address) => {
                let mut id = [0u8; 8];
                getrandom::fill(&mut id)
                    .map_err(|e| ManagerError::Os(std::io::Error::other(e.to_string())))?;
                let id = u64::from_ne_bytes(id);
                Link::Manager {
                    id,
                    shared: Client::connect(address, authkey, id, true)?,
                    idle: Mutex::new(Vec::new()),
                }
            }
            #[cfg(feature = "redis")]
            Endpoint::Redis(target) => {
                Link::Redis(Box::new(super::redis::Store::open(target, authkey)?))
            }
        };
        Ok(Arc::new(Session {
            endpoint: endpoint.clone(),
            address: endpoint.address(),
            authkey: authkey.to_vec(),
            link,
            next_owner: AtomicU64::new(1),
            pid: this_pid(),
            fingerprint: fingerprint(endpoint),
        }))
    }

    /// Whether its objects are on Redis.
    pub(crate) fn is_redis(&self) -> bool {
        !matches!(self.link, Link::Manager { .. })
    }

    /// Checks that the references in `args` are of this manager, and cuts their fingerprint
    /// (what travels is the object's id).
    fn own_references(&self, args: &mut [Value]) -> Result<(), ManagerError> {
        for arg in args {
            match arg {
                Value::Ext(value::REFERENCE_TYPE, bytes) if bytes.len() == 16 => {
                    if bytes[8..] != self.fingerprint.to_be_bytes() {
                        return Err(ManagerError::Value(format!(
                            "a proxy of another manager cannot be stored in the one at {}: a \
                             reference is to an object of the same manager",
                            self.endpoint
                        )));
                    }
                    bytes.truncate(8);
                }
                Value::Array(items) => self.own_references(items)?,
                Value::Map(entries) => {
                    for (key, value) in entries {
                        self.own_references(std::slice::from_mut(key))?;
                        self.own_references(std::slice::from_mut(value))?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether this process is the session's (not a forked child that inherited it).
    pub(crate) fn is_this_process(&self) -> bool {
        this_pid() == self.pid
    }

    /// [`is_this_process`](Self::is_this_process), as the error a call from another gets.
    fn is_ours(&self) -> Result<(), ManagerError> {
        let this = this_pid();
        match this == self.pid {
            true => Ok(()),
            false => Err(ManagerError::InheritedThroughFork {
                owner: self.pid,
                this,
            }),
        }
    }

    /// Gives up one of this client's holds of `object` (a handle's last clone was dropped),
    /// without waiting for the answer: a drop never blocks on the server. Nothing is sent from a
    /// forked child (the hold is its parent's), nor on a broken connection (the server gave up
    /// the client's holds when its connections ended).
    /// On Redis, nothing holds an object (it lives until removed): a queue's consumers of this
    /// process are told that what they got was delivered.
    pub(crate) fn release(&self, object: u64) {
        if self.is_ours().is_err() {
            return;
        }
        match &self.link {
            Link::Manager { shared, .. } => shared.send(Op::Release, 0, vec![Value::from(object)]),
            #[cfg(feature = "redis")]
            Link::Redis(store) => store.release(object),
        }
    }

    /// Removes every object of the namespace on Redis: how many ([`Manager::drop_namespace`]).
    #[cfg(feature = "redis")]
    pub(crate) fn drop_namespace(&self) -> Result<u64, ManagerError> {
        self.is_ours()?;
        match &self.link {
            Link::Redis(store) => store.drop_namespace(),
            Link::Manager { .. } => Err(ManagerError::Value(
                "drop_namespace is for Redis: a manager process frees each object when nothing \
                 holds it, and all of them when it stops"
                    .to_owned(),
            )),
        }
    }

    /// A loan of `object` for a proxy in flight to another process: the server holds the object
    /// until the proxy arrives (and claims it) or the loan's grace period ends. (On Redis, none:
    /// 0.)
    pub(crate) fn lend(&self, object: u64) -> Result<u64, ManagerError> {
        if self.is_redis() {
            return Ok(0);
        }
        let loan = self.call(Op::Lend, 0, vec![Value::from(object)], 0)?;
        loan.as_u64()
            .ok_or_else(|| ManagerError::Protocol(format!("expected a loan, got {loan}")))
    }

    /// Takes a hold of `object` for this client, claiming `loan` (0: none).
    pub(crate) fn hold(&self, object: u64, loan: u64) -> Result<(), ManagerError> {
        if self.is_redis() {
            return Ok(());
        }
        let args = vec![Value::from(object), Value::from(loan)];
        self.call(Op::Hold, 0, args, 0).map(drop)
    }

    /// An owner of its own, for a new handle (a lock it takes is its own).
    pub(crate) fn new_owner(&self) -> u64 {
        self.next_owner.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs `op` on `object` (0: the manager itself) for `owner` on the shared connection.
    pub(crate) fn call(
        &self,
        op: Op,
        object: u64,
        args: Vec<Value>,
        owner: u64,
    ) -> Result<Value, ManagerError> {
        self.call_as(op, object, args, Who { owner, fence: None }, false, None)
    }

    /// [`call`](Self::call), for `who`; if `waits` (the operation may wait: a lock's acquire, a
    /// queue's get), on a connection of the pool, taken for this call. `interrupted`, if any, is
    /// asked every 25 ms while the call waits: see [`Client::call`].
    pub(crate) fn call_as(
        &self,
        op: Op,
        object: u64,
        mut args: Vec<Value>,
        who: Who,
        waits: bool,
        interrupted: Option<&dyn Fn() -> bool>,
    ) -> Result<Value, ManagerError> {
        self.outgoing(&mut args)?;
        let (id, idle) = match &self.link {
            Link::Manager { shared, .. } if !waits => {
                return shared.call(op, object, args, who, None);
            }
            Link::Manager { id, idle, .. } => (*id, idle),
            #[cfg(feature = "redis")]
            Link::Redis(store) => return store.call(op, object, args, who, waits),
        };
        let lock_idle = || idle.lock().unwrap_or_else(|e| e.into_inner());
        let taken = lock_idle().pop();
        let client = match taken {
            Some(client) => client,
            None => Client::connect(&self.address, &self.authkey, id, false)?,
        };
        let result = client.call(op, object, args, who, interrupted);
        if !client.is_broken() {
            let mut idle = lock_idle();
            if idle.len() < IDLE_MAX {
                idle.push(client);
            }
        }
        result
    }

    /// What every call checks before it sends: that this process is the session's, and that
    /// the references in `args` (if any were encoded) are of this manager.
    fn outgoing(&self, args: &mut [Value]) -> Result<(), ManagerError> {
        self.is_ours()?;
        if value::took_references() {
            self.own_references(args)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// A connection to a manager: one request at a time.
pub(crate) struct Client {
    address: Address,
    authkey: Vec<u8>,
    /// The session's id, said again in `hello` when the connection is made again.
    session: u64,
    stream: Mutex<(BufReader<Stream>, Stream)>,
    /// Whether answers tend to come while the caller polls.
    spinner: Spinner,
    next_id: AtomicU64,
    /// The connection failed: the manager is gone, or the stream is out of step.
    broken: AtomicBool,
    /// Whether a broken connection is made again at the next call (the shared one); a pool's is
    /// dropped instead.
    remakes: bool,
    /// Answers to requests sent without waiting for them ([`send`](Self::send)), still to read
    /// and drop. Changed with the stream locked.
    unread: AtomicU64,
}

/// Answers a connection leaves unread, at most: the next send reads them first, so that the
/// server never blocks writing answers nobody reads.
const UNREAD_MAX: u64 = 64;

impl Client {
    /// Connects to the manager at `address`, authenticates with `authkey`, and says it is of
    /// session `session`.
    fn connect(
        address: &Address,
        authkey: &[u8],
        session: u64,
        remakes: bool,
    ) -> Result<Client, ManagerError> {
        let client = Client {
            address: address.clone(),
            authkey: authkey.to_vec(),
            session,
            stream: Mutex::new(open(address, authkey)?),
            spinner: Spinner::round_trips(),
            next_id: AtomicU64::new(1),
            broken: AtomicBool::new(false),
            remakes,
            unread: AtomicU64::new(0),
        };
        let mut stream = client.lock_stream();
        client.hello(&mut stream)?;
        drop(stream);
        Ok(client)
    }

    /// Whether a call failed for the connection (not for the operation): it is of no more use.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    /// Runs `op` on `object` (0: the manager itself) for `owner` and waits for the answer.
    ///
    /// While it waits, `interrupted` (if any) is asked every 25 ms; when it says
    /// so, this side of the connection stops writing. The server, which checks that its caller
    /// is there before a wait takes anything, then either answers (it had taken it already: the
    /// call is done, and that answer is returned) or ends the connection having taken nothing:
    /// [`ManagerError::Interrupted`]. Either way the connection is of no more use.
    fn call(
        &self,
        op: Op,
        object: u64,
        args: Vec<Value>,
        who: Who,
        interrupted: Option<&dyn Fn() -> bool>,
    ) -> Result<Value, ManagerError> {
        let context = Context {
            owner: who.owner,
            chain: chain::current(),
            cpu: None,
            fence: who.fence,
        };
        let request = Request {
            id: 0,
            op: op.name().to_owned(),
            object,
            args,
            context,
            references: false,
        };
        let mut stream = self.lock_stream();
        if self.remakes && self.is_broken() {
            *stream = open(&self.address, &self.authkey)?;
            self.broken.store(false, Ordering::Relaxed);
            self.unread.store(0, Ordering::Relaxed);
            self.hello(&mut stream)?;
        }
        self.exchange(&mut stream, request, interrupted)
    }

    /// Sends `op` on `object` without waiting for its answer (read and dropped before the next
    /// call's), so that it never blocks on a server that is slow or gone: for giving back a
    /// hold, whose answer says nothing the caller needs. Nothing is sent on a broken connection.
    fn send(&self, op: Op, object: u64, args: Vec<Value>) {
        let mut stream = self.lock_stream();
        if self.is_broken() {
            return;
        }
        if self.unread.load(Ordering::Relaxed) >= UNREAD_MAX && self.drain(&mut stream.0).is_err() {
            self.broken.store(true, Ordering::Relaxed);
            return;
        }
        let request = Request {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            op: op.name().to_owned(),
            object,
            args,
            context: Context {
                cpu: self.cpu_to_share(),
                ..Context::default()
            },
            references: false,
        };
        let (_, writer) = &mut *stream;
        match wire::framed(&request)
            .write_to(writer)
            .and_then(|()| writer.flush())
        {
            Ok(()) => {
                self.unread.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => self.broken.store(true, Ordering::Relaxed),
        }
    }

    /// Reads and drops the answers of the requests sent without waiting.
    fn drain(&self, reader: &mut BufReader<Stream>) -> Result<(), FrameError> {
        while self.unread.load(Ordering::Relaxed) > 0 {
            frame::read_frame_soon(reader, frame::DEFAULT_MAX_FRAME, &self.spinner)?;
            self.unread.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Says who this connection is: the protocol's version and the session's id.
    fn hello(&self, stream: &mut (BufReader<Stream>, Stream)) -> Result<(), ManagerError> {
        let request = Request {
            id: 0,
            op: Op::Hello.name().to_owned(),
            object: 0,
            args: vec![Value::from(protocol::VERSION), Value::from(self.session)],
            context: Context::default(),
            references: false,
        };
        self.exchange(stream, request, None).map(drop)
    }

    /// Sends `request` (numbered here) and reads its answer; a failure of the connection marks
    /// it broken.
    fn exchange(
        &self,
        stream: &mut (BufReader<Stream>, Stream),
        mut request: Request,
        interrupted: Option<&dyn Fn() -> bool>,
    ) -> Result<Value, ManagerError> {
        let mut stopped = false;
        let result = self.send_and_read(stream, &mut request, interrupted, &mut stopped);
        let refused = matches!(&result, Err(ManagerError::Remote { code, .. }) if *code == ErrorCode::TooManyConnections);
        if stopped
            || refused
            || matches!(
                result,
                Err(ManagerError::Gone { .. } | ManagerError::Protocol(_))
            )
        {
            self.broken.store(true, Ordering::Relaxed);
        }
        result
    }

    /// Waits until `reader` has an answer to read, asking `interrupted` every 25 ms;
    /// whether it said to stop first. An answer that comes soon is polled for first, as any
    /// call's (`spin`): a quick wait costs no more than a call that cannot be interrupted.
    fn await_answer(&self, reader: &BufReader<Stream>, interrupted: &dyn Fn() -> bool) -> bool {
        const SLICE: std::time::Duration = std::time::Duration::from_millis(25);
        let fd = reader.get_ref().as_fd();
        let soon = || sys::wait_readable(fd, Some(std::time::Instant::now())).unwrap_or(true);
        if !reader.buffer().is_empty() || self.spinner.spin(None, soon) {
            return false;
        }
        while reader.buffer().is_empty() {
            let slice = std::time::Instant::now() + SLICE;
            match sys::wait_readable(fd, Some(slice)) {
                Ok(true) | Err(_) => return false, // an answer, or an error the read will see
                Ok(false) if interrupted() => return true,
                Ok(false) => {}
            }
        }
        false
    }

    fn send_and_read(
        &self,
        (reader, writer): &mut (BufReader<Stream>, Stream),
        request: &mut Request,
        interrupted: Option<&dyn Fn() -> bool>,
        stopped: &mut bool,
    ) -> Result<Value, ManagerError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        request.id = id;
        request.context.cpu = self.cpu_to_share();
        let frame = wire::framed(&*request);
        if frame.payload_len() > frame::DEFAULT_MAX_FRAME {
            // Refused here: the server would close the connection.
            return Err(ManagerError::FrameTooLarge {
                len: frame.payload_len(),
                max: frame::DEFAULT_MAX_FRAME,
            });
        }
        let gone = |e: &dyn fmt::Display| ManagerError::Gone {
            reason: e.to_string(),
        };
        let sent = frame.write_to(writer).and_then(|()| writer.flush());
        // A server that refused the connection (a limit) said why and closed: the answer may be
        // there to read even though the request could not be sent. The answers of requests sent
        // without waiting come first, in order.
        let drained = self.drain(reader);
        if let (Ok(()), Ok(()), Some(interrupted)) = (&sent, &drained, interrupted)
            && self.await_answer(reader, interrupted)
        {
            writer.shut_down_write();
            *stopped = true;
        }
        let read = drained
            .and_then(|()| frame::read_frame_soon(reader, frame::DEFAULT_MAX_FRAME, &self.spinner));
        let payload = match (sent, read) {
            (_, Err(_)) if *stopped => return Err(ManagerError::Interrupted),
            (_, Ok(payload)) => payload,
            (Err(e), Err(_)) => return Err(gone(&e)),
            (Ok(()), Err(e)) => return Err(gone(&e)),
        };
        let response: Response = rmp_serde::from_slice(&payload)
            .map_err(|e| ManagerError::Protocol(format!("a malformed response: {e}")))?;
        let remote = |e: wire::WireError| ManagerError::Remote {
            code: ErrorCode::parse(&e.code),
            message: e.message,
        };
        match response {
            Response { id: got, result } if got == id => result.map_err(remote),
            // The server refused the connection itself (a limit), and closes it.
            Response {
                id: 0,
                result: Err(e),
            } => Err(remote(e)),
            Response { id: got, .. } => Err(ManagerError::Protocol(format!(
                "the answer to request {got} came for {id}"
            ))),
        }
    }

    /// The CPU to tell the server, for its thread to run beside this one: on a busy machine, when
    /// the server is on this machine (a Unix socket, a loopback address). See [`crate::colocate`].
    fn cpu_to_share(&self) -> Option<u32> {
        match self.address {
            Address::Unix(_) => colocate::cpu_to_share(),
            Address::Tcp(address) if address.ip().is_loopback() => colocate::cpu_to_share(),
            Address::Tcp(_) => None,
        }
    }

    fn lock_stream(&self) -> MutexGuard<'_, (BufReader<Stream>, Stream)> {
        self.stream.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A manager's fingerprint, from its endpoint.
fn fingerprint(endpoint: &Endpoint) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    endpoint.to_string().hash(&mut hasher);
    hasher.finish()
}

/// This process's id: cached, and found again in a forked child (a load on every call, not a
/// system call).
fn this_pid() -> u32 {
    ProcessId::own().pid()
}

/// A new authenticated connection to `address`: its reader and its writer.
fn open(address: &Address, authkey: &[u8]) -> Result<(BufReader<Stream>, Stream), ManagerError> {
    let stream = Stream::connect(address, HANDSHAKE_TIMEOUT).map_err(|e| ManagerError::Gone {
        reason: format!("cannot connect to {address}: {e}"),
    })?;
    auth::client(stream.as_fd(), Framing::Stream, authkey).map_err(|e| match e {
        // A wrong key is its own error; any other failure means no working manager there (it
        // died during the handshake, say).
        ConnectError::AuthFailed => ManagerError::Connect(e),
        other => ManagerError::Gone {
            reason: format!("{address}: {other}"),
        },
    })?;
    let writer = stream.try_clone().map_err(ManagerError::Os)?;
    Ok((BufReader::new(stream), writer))
}

/// The sessions this process shares, by manager; and the process they belong to.
struct Sessions {
    pid: u32,
    sessions: Vec<(Endpoint, Vec<u8>, Weak<Session>)>,
}

static SESSIONS: Mutex<Option<Sessions>> = Mutex::new(None);

/// This process's session with the manager at `endpoint`, made if there is none alive: where
/// the proxies that arrive in a process (as arguments, in messages) connect.
pub(crate) fn shared(endpoint: &Endpoint, authkey: &[u8]) -> Result<Arc<Session>, ManagerError> {
    let mut sessions = SESSIONS.lock().unwrap_or_else(|e| e.into_inner());
    let list = this_process(&mut sessions);
    let alive = list.iter().find_map(|(e, k, session)| {
        (e == endpoint && k.as_slice() == authkey)
            .then(|| session.upgrade())
            .flatten()
    });
    if let Some(session) = alive {
        return Ok(session);
    }
    let session = Session::open(endpoint, authkey)?;
    list.push((endpoint.clone(), authkey.to_vec(), Arc::downgrade(&session)));
    Ok(session)
}

/// Makes `session` the one this process's arriving proxies use for its manager, if none is.
pub(crate) fn register(session: &Arc<Session>) {
    let mut sessions = SESSIONS.lock().unwrap_or_else(|e| e.into_inner());
    let list = this_process(&mut sessions);
    let known = list
        .iter()
        .any(|(e, k, _)| *e == session.endpoint && *k == session.authkey);
    if !known {
        list.push((
            session.endpoint.clone(),
            session.authkey.clone(),
            Arc::downgrade(session),
        ));
    }
}

/// The live sessions of this process (a forked child forgets its parent's).
fn this_process(sessions: &mut Option<Sessions>) -> &mut Vec<(Endpoint, Vec<u8>, Weak<Session>)> {
    let pid = std::process::id();
    if sessions.as_ref().is_none_or(|s| s.pid != pid) {
        *sessions = Some(Sessions {
            pid,
            sessions: Vec::new(),
        });
    }
    let list = &mut sessions.as_mut().expect("just set").sessions;
    list.retain(|(_, _, session)| session.strong_count() > 0);
    list
}
