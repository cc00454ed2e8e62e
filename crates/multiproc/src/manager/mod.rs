//! [`Manager`]: a server process hosting shared objects that any process reaches through proxies.
//!
//! # Implementation notes
//!
//! [`Manager::start`] binds a Unix socket in a fresh `0700` directory, draws a random 32-byte
//! key, and starts the server as a child [`Process`], handing it the listening socket and the
//! key as its arguments (over the private bootstrap socket: never a command line or the
//! environment). Clients authenticate with the handshake of [`Listener`](crate::Listener), then
//! exchange frames of MessagePack (`frame`, `wire`; the protocol is described in
//! `docs/manager-protocol.md`). A proxy is the object's id and the manager's address and key; a
//! copy sent to another process connects again by itself.
//!
//! Every object kind of Python's `SyncManager` is here: dicts, namespaces, lists, arrays, values,
//! queues (joinable), locks, recursive locks, semaphores (bounded or not), conditions, events,
//! barriers, and user types; each also by name. Dicts and lists can be watched, and dicts can hold
//! nested dicts and lists that stay live. The server's side is in `server`.

mod dict;
mod error;
mod frame;
mod handle;
mod list;
mod lock;
mod namespace;
mod net;
mod primitives;
mod queue;
mod server;
mod shared;
mod sweep;
mod waiting;
mod watch;
mod wire;

#[cfg(feature = "fuzzing")]
pub(crate) mod fuzz {
    //! What the fuzzers of `fuzz/` run: the server's decoders, on arbitrary bytes.

    /// Decodes a request; any bytes give a request or an error, never a panic.
    pub(crate) fn request(bytes: &[u8]) {
        let _ = super::wire::decode_request(bytes);
    }

    /// Reads frames (with a small cap) until the bytes run out or one is refused.
    pub(crate) fn frames(mut bytes: &[u8]) {
        while let Ok(payload) = super::frame::read_frame(&mut bytes, 1 << 16) {
            let _ = super::wire::decode_request(&payload);
        }
    }
}

pub use dict::DictProxy;
pub use error::{ErrorCode, ManagerError};
pub use frame::DEFAULT_MAX_FRAME;
pub use list::{ArrayProxy, ListProxy, ValueProxy};
pub use lock::{LockProxy, LockProxyGuard, RLockProxy, RLockProxyGuard};
pub use namespace::NamespaceProxy;
pub use primitives::{
    BarrierProxy, ConditionProxy, ConditionProxyGuard, EventProxy, SemaphoreProxy,
};
pub use queue::QueueProxy;
pub use shared::{Args, CallError, ObjectProxy, Reply, Shared};
pub use watch::{DictChange, DictWatcher, ListChange, ListWatcher};

use dict::{from_value, to_value};
use handle::Handle;

use std::fmt;
use std::io::{BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rmpv::Value;
use serde::{Deserialize, Serialize};

use crate::channel::auth::{self, Framing};
use crate::channel::{Address, ConnectError};
use crate::process::Process;
use crate::transfer;
use net::{Listening, Stream};
use wire::{Request, Response};

/// A manager: a server process holding shared objects, and this process's connection to it.
/// Python's `multiprocessing.Manager()`.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{DictProxy, Manager, Process};
///
/// let manager = Manager::start()?;
/// let counts = manager.dict::<String, i64>()?;
/// let workers: Vec<_> = (0..4)
///     .map(|_| {
///         Process::spawn(counts.clone(), |counts: DictProxy<String, i64>| {
///             for _ in 0..100 {
///                 counts.incr(&"hits".to_string(), 1).unwrap(); // atomic on the server
///             }
///         })
///     })
///     .collect::<Result<_, _>>()?;
/// for w in workers {
///     w.join()?;
/// }
/// assert_eq!(counts.get(&"hits".to_string())?, Some(400));
/// # Ok(())
/// # }
/// ```
pub struct Manager {
    client: Arc<Client>,
    /// The server process, when this handle started it: shut down on drop.
    server: Option<Process<()>>,
    /// The private directory of the socket, removed on drop.
    dir: Option<sweep::PrivateDir>,
}

impl Manager {
    /// Starts a manager process on a private Unix socket (in a fresh `0700` directory) with a
    /// random key.
    pub fn start() -> Result<Manager, ManagerError> {
        Manager::builder().start()
    }

    /// A builder: to choose the address (a Unix path or TCP) and the key, then
    /// [`start`](ManagerBuilder::start) a server process or [`serve`](ManagerBuilder::serve) in
    /// this one.
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder::default()
    }

    /// Connects to the manager at `address` (a Unix socket path or `"host:port"`) with
    /// `authkey`.
    pub fn connect(address: impl Into<Address>, authkey: &[u8]) -> Result<Manager, ManagerError> {
        Ok(Manager {
            client: Arc::new(Client::connect(&address.into(), authkey)?),
            server: None,
            dir: None,
        })
    }

    /// Where clients connect.
    pub fn address(&self) -> &Address {
        &self.client.address
    }

    /// The server process's pid, when this handle started it.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(Process::pid)
    }

    /// The key clients authenticate with. Pass it only over private channels (a process
    /// argument, a pipe): anyone holding it and the address can use the manager.
    pub fn authkey(&self) -> &[u8] {
        &self.client.authkey
    }

    /// Asks the server for its counters: objects, connections, handshakes in flight, wrong keys
    /// refused.
    pub fn stats(&self) -> Result<ManagerStats, ManagerError> {
        from_value(self.client.call("stats", 0, Vec::new())?)
    }

    /// Creates an object of `kind` from `args`, or with a `name`, opens the object of that name
    /// (creating it the first time); its handle on this manager's connection.
    fn object(
        &self,
        name: Option<&str>,
        kind: &str,
        args: Vec<Value>,
    ) -> Result<Handle, ManagerError> {
        let answer = match name {
            None => self.client.call(kind, 0, args)?,
            Some(name) => {
                let args = [Value::from(name), Value::from(kind)]
                    .into_iter()
                    .chain(args)
                    .collect();
                self.client.call("named", 0, args)?
            }
        };
        Ok(Handle::new(self.client.clone(), object_id(&answer)?))
    }

    /// [`object`](Self::object), on a connection of its own: for objects whose operations wait.
    fn waiting_object(
        &self,
        name: Option<&str>,
        kind: &str,
        args: Vec<Value>,
    ) -> Result<Handle, ManagerError> {
        self.object(name, kind, args)?.reconnect()
    }

    /// A new, empty shared dict. Python: `manager.dict()`.
    pub fn dict<K, V>(&self) -> Result<DictProxy<K, V>, ManagerError> {
        Ok(DictProxy::new(self.object(None, "dict", Vec::new())?))
    }

    /// The shared dict named `name`: created empty by the first caller, the same one for every
    /// later caller, whatever process it is in. Each kind of object has such a `_named` twin.
    pub fn dict_named<K, V>(&self, name: &str) -> Result<DictProxy<K, V>, ManagerError> {
        Ok(DictProxy::new(self.object(
            Some(name),
            "dict",
            Vec::new(),
        )?))
    }

    /// A new, empty namespace. Python: `manager.Namespace()`.
    pub fn namespace(&self) -> Result<NamespaceProxy, ManagerError> {
        Ok(NamespaceProxy::new(self.object(
            None,
            "namespace",
            Vec::new(),
        )?))
    }

    /// The namespace named `name`.
    pub fn namespace_named(&self, name: &str) -> Result<NamespaceProxy, ManagerError> {
        Ok(NamespaceProxy::new(self.object(
            Some(name),
            "namespace",
            Vec::new(),
        )?))
    }

    /// A new shared list holding `items`. Python: `manager.list(items)`.
    pub fn list<T: Serialize>(&self, items: &[T]) -> Result<ListProxy<T>, ManagerError> {
        Ok(ListProxy::new(self.object(
            None,
            "list",
            vec![to_value(&items)?],
        )?))
    }

    /// The shared list named `name` (created empty).
    pub fn list_named<T>(&self, name: &str) -> Result<ListProxy<T>, ManagerError> {
        Ok(ListProxy::new(self.object(
            Some(name),
            "list",
            Vec::new(),
        )?))
    }

    /// A new shared array of fixed length, holding `items`. Python: `manager.Array`.
    pub fn array<T: Serialize>(&self, items: &[T]) -> Result<ArrayProxy<T>, ManagerError> {
        Ok(ArrayProxy::new(self.object(
            None,
            "array",
            vec![to_value(&items)?],
        )?))
    }

    /// The shared array named `name`, holding `items` if this call creates it.
    pub fn array_named<T: Serialize>(
        &self,
        name: &str,
        items: &[T],
    ) -> Result<ArrayProxy<T>, ManagerError> {
        Ok(ArrayProxy::new(self.object(
            Some(name),
            "array",
            vec![to_value(&items)?],
        )?))
    }

    /// A new shared value holding `value`. Python: `manager.Value`.
    pub fn value<T: Serialize>(&self, value: &T) -> Result<ValueProxy<T>, ManagerError> {
        Ok(ValueProxy::new(self.object(
            None,
            "value",
            vec![to_value(value)?],
        )?))
    }

    /// The shared value named `name`, holding `initial` if this call creates it.
    pub fn value_named<T: Serialize>(
        &self,
        name: &str,
        initial: &T,
    ) -> Result<ValueProxy<T>, ManagerError> {
        Ok(ValueProxy::new(self.object(
            Some(name),
            "value",
            vec![to_value(initial)?],
        )?))
    }

    /// A new queue with no limit on its items (joinable, as Python's manager queue is). Its
    /// handle has a connection of its own. Python: `manager.Queue()`.
    pub fn queue<T>(&self) -> Result<QueueProxy<T>, ManagerError> {
        Ok(QueueProxy::new(self.waiting_object(
            None,
            "queue",
            vec![0.into()],
        )?))
    }

    /// A new queue holding at most `max_items` items. Python: `manager.Queue(maxsize)`.
    pub fn queue_bounded<T>(&self, max_items: usize) -> Result<QueueProxy<T>, ManagerError> {
        let max_items = Value::from(max_items.max(1));
        Ok(QueueProxy::new(self.waiting_object(
            None,
            "queue",
            vec![max_items],
        )?))
    }

    /// The queue named `name` (created without a limit).
    pub fn queue_named<T>(&self, name: &str) -> Result<QueueProxy<T>, ManagerError> {
        Ok(QueueProxy::new(self.waiting_object(
            Some(name),
            "queue",
            vec![0.into()],
        )?))
    }

    /// A new joinable queue: [`queue`](Self::queue), whose every queue has
    /// [`task_done`](QueueProxy::task_done) and [`join`](QueueProxy::join). Python:
    /// `manager.JoinableQueue()`.
    pub fn joinable_queue<T>(&self) -> Result<QueueProxy<T>, ManagerError> {
        self.queue()
    }

    /// The joinable queue named `name`.
    pub fn joinable_queue_named<T>(&self, name: &str) -> Result<QueueProxy<T>, ManagerError> {
        self.queue_named(name)
    }

    /// A new lock. Its handle has a connection of its own (see [`LockProxy`]). Python:
    /// `manager.Lock()`.
    pub fn lock(&self) -> Result<LockProxy, ManagerError> {
        Ok(LockProxy::new(self.waiting_object(
            None,
            "lock",
            Vec::new(),
        )?))
    }

    /// The lock named `name`.
    pub fn lock_named(&self, name: &str) -> Result<LockProxy, ManagerError> {
        Ok(LockProxy::new(self.waiting_object(
            Some(name),
            "lock",
            Vec::new(),
        )?))
    }

    /// A new recursive lock. Python: `manager.RLock()`.
    pub fn rlock(&self) -> Result<RLockProxy, ManagerError> {
        Ok(RLockProxy::new(self.waiting_object(
            None,
            "rlock",
            Vec::new(),
        )?))
    }

    /// The recursive lock named `name`.
    pub fn rlock_named(&self, name: &str) -> Result<RLockProxy, ManagerError> {
        Ok(RLockProxy::new(self.waiting_object(
            Some(name),
            "rlock",
            Vec::new(),
        )?))
    }

    /// A new semaphore with `value` permits. Python: `manager.Semaphore(value)`.
    pub fn semaphore(&self, value: u32) -> Result<SemaphoreProxy, ManagerError> {
        Ok(SemaphoreProxy::new(self.waiting_object(
            None,
            "semaphore",
            vec![value.into()],
        )?))
    }

    /// The semaphore named `name`, with `value` permits if this call creates it.
    pub fn semaphore_named(&self, name: &str, value: u32) -> Result<SemaphoreProxy, ManagerError> {
        Ok(SemaphoreProxy::new(self.waiting_object(
            Some(name),
            "semaphore",
            vec![value.into()],
        )?))
    }

    /// A new semaphore that refuses to be released above `value`
    /// ([`ErrorCode::TooManyReleases`]). Python: `manager.BoundedSemaphore(value)`.
    pub fn bounded_semaphore(&self, value: u32) -> Result<SemaphoreProxy, ManagerError> {
        Ok(SemaphoreProxy::new(self.waiting_object(
            None,
            "bounded_semaphore",
            vec![value.into()],
        )?))
    }

    /// The bounded semaphore named `name`.
    pub fn bounded_semaphore_named(
        &self,
        name: &str,
        value: u32,
    ) -> Result<SemaphoreProxy, ManagerError> {
        Ok(SemaphoreProxy::new(self.waiting_object(
            Some(name),
            "bounded_semaphore",
            vec![value.into()],
        )?))
    }

    /// A new condition, with a recursive lock of its own. Python: `manager.Condition()`.
    pub fn condition(&self) -> Result<ConditionProxy, ManagerError> {
        Ok(ConditionProxy::new(self.waiting_object(
            None,
            "condition",
            Vec::new(),
        )?))
    }

    /// The condition named `name`.
    pub fn condition_named(&self, name: &str) -> Result<ConditionProxy, ManagerError> {
        Ok(ConditionProxy::new(self.waiting_object(
            Some(name),
            "condition",
            Vec::new(),
        )?))
    }

    /// A new event, not set. Python: `manager.Event()`.
    pub fn event(&self) -> Result<EventProxy, ManagerError> {
        Ok(EventProxy::new(self.waiting_object(
            None,
            "event",
            Vec::new(),
        )?))
    }

    /// The event named `name`.
    pub fn event_named(&self, name: &str) -> Result<EventProxy, ManagerError> {
        Ok(EventProxy::new(self.waiting_object(
            Some(name),
            "event",
            Vec::new(),
        )?))
    }

    /// A new barrier for `parties` parties. Python: `manager.Barrier(parties)`.
    pub fn barrier(&self, parties: u32) -> Result<BarrierProxy, ManagerError> {
        Ok(BarrierProxy::new(self.waiting_object(
            None,
            "barrier",
            vec![parties.into()],
        )?))
    }

    /// The barrier named `name`, for `parties` parties if this call creates it.
    pub fn barrier_named(&self, name: &str, parties: u32) -> Result<BarrierProxy, ManagerError> {
        Ok(BarrierProxy::new(self.waiting_object(
            Some(name),
            "barrier",
            vec![parties.into()],
        )?))
    }

    /// A new object of a registered user type `T` ([`ManagerBuilder::register`]), holding
    /// `value`; an unregistered type is [`ManagerError::Remote`] with code
    /// [`ErrorCode::NotExposed`].
    pub fn create<T: Shared>(&self, value: &T) -> Result<ObjectProxy<T>, ManagerError> {
        Ok(ObjectProxy::new(self.object(
            None,
            "object.new",
            vec![Value::from(T::TYPE_NAME), to_value(value)?],
        )?))
    }

    /// The object of type `T` named `name`, holding `value` if this call creates it.
    pub fn create_named<T: Shared>(
        &self,
        name: &str,
        value: &T,
    ) -> Result<ObjectProxy<T>, ManagerError> {
        Ok(ObjectProxy::new(self.object(
            Some(name),
            "object.new",
            vec![Value::from(T::TYPE_NAME), to_value(value)?],
        )?))
    }

    /// Removes the socket directories of managers whose starting process died (killed, say),
    /// and returns them; a live manager's is never touched. [`Manager::start`] does it too, and
    /// so does `multiproc clean`.
    pub fn clean_dead() -> Result<Vec<PathBuf>, ManagerError> {
        sweep::clean_dead().map_err(ManagerError::Os)
    }

    /// Stops the server, whoever started it (for a server this handle started, dropping the
    /// handle does the same).
    pub fn shutdown(mut self) -> Result<(), ManagerError> {
        if self.server.is_none() {
            return match self.client.call("shutdown", 0, Vec::new()) {
                Ok(_) | Err(ManagerError::Gone { .. }) => Ok(()),
                Err(e) => Err(e),
            };
        }
        self.stop()
    }

    fn stop(&mut self) -> Result<(), ManagerError> {
        let Some(mut server) = self.server.take() else {
            return Ok(());
        };
        let asked = self.client.call("shutdown", 0, Vec::new());
        if server
            .join_timeout(std::time::Duration::from_secs(5))
            .is_err()
        {
            let _ = server.kill();
            let _ = server.join_timeout(std::time::Duration::from_secs(5));
        }
        self.dir.take(); // removed
        match asked {
            Ok(_) | Err(ManagerError::Gone { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager")
            .field("address", &self.client.address)
            .field("started_here", &self.server.is_some())
            .finish()
    }
}

/// A manager's counters ([`Manager::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ManagerStats {
    /// Objects it holds.
    pub objects: u64,
    /// Authenticated connections open.
    pub connections: u64,
    /// Connections in their handshake.
    pub handshakes: u64,
    /// Handshakes refused for a wrong key.
    pub auth_failures: u64,
    /// Connections refused or closed for other reasons (another user, too many).
    pub refused: u64,
}

fn object_id(value: &Value) -> Result<u64, ManagerError> {
    value
        .as_u64()
        .ok_or_else(|| ManagerError::Protocol(format!("expected an object id, got {value}")))
}

/// Settings for a manager: where it listens and its key.
#[derive(Default)]
#[must_use]
pub struct ManagerBuilder {
    address: Option<Address>,
    authkey: Option<Vec<u8>>,
    allow_remote: bool,
    types: Vec<(String, shared::TypeEntry)>,
}

impl fmt::Debug for ManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagerBuilder")
            .field("address", &self.address)
            .field("allow_remote", &self.allow_remote)
            .finish_non_exhaustive()
    }
}

impl ManagerBuilder {
    /// Listens at `address`: a Unix socket path, or `"host:port"` for TCP (port 0 picks a free
    /// one). Default: a Unix socket in a fresh `0700` directory.
    pub fn address(mut self, address: impl Into<Address>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// The key clients must prove they hold. Default: 32 random bytes.
    pub fn authkey(mut self, authkey: &[u8]) -> Self {
        self.authkey = Some(authkey.to_vec());
        self
    }

    /// Lets a TCP address be on an interface other than loopback: the explicit opt-in to
    /// clients on other machines. The key keeps out whoever lacks it, but nothing is encrypted
    /// and frames after the handshake are not authenticated: use it on a trusted network only.
    /// Without it, such an address is [`ConnectError::NotLoopback`](crate::ConnectError).
    pub fn allow_remote(mut self) -> Self {
        self.allow_remote = true;
        self
    }

    /// Lets the manager host values of `T` ([`Manager::create`]); their methods become callable
    /// from any process ([`ObjectProxy::call`]).
    pub fn register<T: Shared>(mut self) -> Self {
        self.types
            .push((T::TYPE_NAME.to_owned(), shared::entry_for::<T>()));
        self
    }

    /// Binds the address; the private directory made for a default address.
    fn bind(&mut self) -> Result<(Listening, Vec<u8>, Option<sweep::PrivateDir>), ManagerError> {
        let (address, dir) = match self.address.take() {
            Some(address) => (address, None),
            None => {
                // Best effort: a failure to sweep others' leftovers is no reason not to start.
                let _ = sweep::clean_dead();
                let dir = sweep::PrivateDir::create()?;
                (Address::Unix(dir.path().join("manager.sock")), Some(dir))
            }
        };
        let authkey = match self.authkey.take() {
            Some(key) if key.is_empty() => {
                return Err(ManagerError::Os(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "an empty authkey authenticates nobody",
                )));
            }
            Some(key) => key,
            None => {
                let mut key = vec![0u8; 32];
                getrandom::fill(&mut key)
                    .map_err(|e| ManagerError::Os(std::io::Error::other(e.to_string())))?;
                key
            }
        };
        Ok((Listening::bind(&address, self.allow_remote)?, authkey, dir))
    }

    /// Starts the server as a child process (it ends with this program, or on
    /// [`Manager::shutdown`]) and connects to it. The socket and the key reach the child as its
    /// arguments, over the private bootstrap socket.
    pub fn start(mut self) -> Result<Manager, ManagerError> {
        let (listening, authkey, dir) = self.bind()?;
        let address = listening.address().map_err(ManagerError::Os)?;
        let (fd, tcp) = listening.into_parts();
        let server = Process::builder()
            .name("multiproc-manager")
            .spawn(
                (ListeningSocket(fd), tcp, authkey.clone(), self.types),
                serve_main,
            )
            .map_err(|e| ManagerError::Start(e.to_string()))?;
        let client = Client::connect(&address, &authkey)?;
        Ok(Manager {
            client: Arc::new(client),
            server: Some(server),
            dir,
        })
    }

    /// Serves in this process until a client asks for shutdown (then the process exits): a
    /// standalone server, as `multiproc serve` runs.
    pub fn serve(mut self) -> Result<(), ManagerError> {
        let (listening, authkey, _dir) = self.bind()?;
        server::serve(listening, authkey, self.types);
        Ok(())
    }
}

/// The server's listening socket, as a process argument.
struct ListeningSocket(OwnedFd);

impl Serialize for ListeningSocket {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        transfer::serialize_fd(self.0.as_fd(), serializer)
    }
}

impl<'de> Deserialize<'de> for ListeningSocket {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        transfer::deserialize_fd(deserializer).map(ListeningSocket)
    }
}

/// The server process.
fn serve_main(
    (socket, tcp, authkey, types): (
        ListeningSocket,
        bool,
        Vec<u8>,
        Vec<(String, shared::TypeEntry)>,
    ),
) {
    server::serve(Listening::from_parts(socket.0, tcp), authkey, types);
}

/// A connection to a manager: one request at a time.
pub(crate) struct Client {
    address: Address,
    authkey: Vec<u8>,
    stream: Mutex<(BufReader<Stream>, Stream)>,
    next_id: AtomicU64,
    /// The connection failed: the manager is gone, or the stream is out of step.
    broken: AtomicBool,
}

impl Client {
    fn connect(address: &Address, authkey: &[u8]) -> Result<Client, ManagerError> {
        let stream = Stream::connect(address).map_err(|e| ManagerError::Gone {
            reason: format!("cannot connect to {address}: {e}"),
        })?;
        auth::client(stream.as_fd(), Framing::Stream, authkey).map_err(|e| match e {
            // A wrong key is its own error; any other failure means no working manager there
            // (it died during the handshake, say).
            ConnectError::AuthFailed => ManagerError::Connect(e),
            other => ManagerError::Gone {
                reason: format!("{address}: {other}"),
            },
        })?;
        let writer = stream.try_clone().map_err(ManagerError::Os)?;
        Ok(Client {
            address: address.clone(),
            authkey: authkey.to_vec(),
            stream: Mutex::new((BufReader::new(stream), writer)),
            next_id: AtomicU64::new(1),
            broken: AtomicBool::new(false),
        })
    }

    /// Whether a call failed for the connection (not for the operation): it is of no more use.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    /// Runs `op` on `object` and waits for the answer.
    pub(crate) fn call(
        &self,
        op: &str,
        object: u64,
        args: Vec<Value>,
    ) -> Result<Value, ManagerError> {
        let result = self.exchange(op, object, args);
        if matches!(
            result,
            Err(ManagerError::Gone { .. } | ManagerError::Protocol(_))
        ) {
            self.broken.store(true, Ordering::Relaxed);
        }
        result
    }

    fn exchange(&self, op: &str, object: u64, args: Vec<Value>) -> Result<Value, ManagerError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = wire::encode(&Request {
            id,
            op: op.to_owned(),
            object,
            args,
        });
        let mut stream = self.stream.lock().unwrap_or_else(|e| e.into_inner());
        let (reader, writer) = &mut *stream;
        let gone = |e: &dyn fmt::Display| ManagerError::Gone {
            reason: e.to_string(),
        };
        frame::write_frame(writer, &request).map_err(|e| gone(&e))?;
        writer.flush().map_err(|e| gone(&e))?;
        let payload =
            frame::read_frame_soon(reader, frame::DEFAULT_MAX_FRAME).map_err(|e| gone(&e))?;
        let response: Response = rmp_serde::from_slice(&payload)
            .map_err(|e| ManagerError::Protocol(format!("a malformed response: {e}")))?;
        if response.id != id {
            return Err(ManagerError::Protocol(format!(
                "the answer to request {} came for {id}",
                response.id
            )));
        }
        response.result.map_err(|e| ManagerError::Remote {
            code: ErrorCode::parse(&e.code),
            message: e.message,
        })
    }
}
