//! [`Manager`]: a server process hosting shared objects that any process reaches through proxies.
//!
//! # Implementation notes
//!
//! The parts, as `docs/architecture.md` names them:
//! - this module: [`Manager`], this process's handle on a manager, and its factories (`factory`,
//!   every one through one generic path);
//! - `builder`: [`ManagerBuilder`], where it listens and with what key, started as a process of
//!   its own or served in this one;
//! - `client` and `handle`: a connection (one request at a time), the connections a process
//!   shares, and a proxy's handle (an object id on a connection), which travels as the manager's
//!   address, key and the id, and connects again on arrival;
//! - `protocol`: frames, the MessagePack messages and their guarded decoding, and the operations
//!   and kinds written once (`op`), for both sides; `docs/manager-protocol.md` describes it;
//! - `proxy`: the typed proxies, one module per kind of object;
//! - `server`: the server process (the gate that authenticates, the table of objects, dispatch).
//!
//! [`Manager::start`] binds a Unix socket in a fresh `0700` directory (`crate::sweep` removes
//! those of dead managers), draws a random 32-byte key, and starts the server as a child
//! [`Process`], handing it the listening socket and the key as its arguments (over the private
//! bootstrap socket: never a command line or the environment). Clients authenticate with the
//! handshake of [`Listener`](crate::Listener), then exchange frames.
//!
//! Every object kind of Python's `SyncManager` is here: dicts, namespaces, lists, arrays, values,
//! queues (joinable or not), locks, recursive locks, semaphores (bounded or not), conditions,
//! events, barriers, and user types; each also by name. Dicts and lists can be watched, and dicts
//! can hold nested dicts and lists that stay live, and proxies as values. Objects live as long as
//! something holds them (`server/lifetime.rs`, `docs/manager-protocol.md`, "Lifetime").

mod builder;
mod chain;
mod client;
mod error;
mod factory;
mod handle;
mod protocol;
mod proxy;
#[cfg(feature = "redis")]
mod redis;
mod server;
mod token;

#[cfg(feature = "fuzzing")]
pub(crate) mod fuzz {
    //! What the fuzzers of `fuzz/` run: the server's decoders, on arbitrary bytes.

    use super::protocol::{frame, wire};

    /// Decodes a request; any bytes give a request or an error, never a panic.
    pub(crate) fn request(bytes: &[u8]) {
        let _ = wire::decode_request(bytes);
    }

    /// Reads frames (with a small cap) until the bytes run out or one is refused.
    pub(crate) fn frames(mut bytes: &[u8]) {
        while let Ok(payload) = frame::read_frame(&mut bytes, 1 << 16) {
            let _ = wire::decode_request(&payload);
        }
    }
}

pub use builder::{ManagerBuilder, ManagerServer};
pub use error::{ErrorCode, ManagerError};
pub use protocol::DEFAULT_MAX_FRAME;
pub use proxy::{
    Args, ArrayProxy, BarrierProxy, BoundedSemaphoreProxy, CallError, ConditionProxy,
    ConditionProxyGuard, DictChange, DictIter, DictProxy, DictWatcher, EventProxy,
    JoinableQueueProxy, ListChange, ListIter, ListProxy, ListWatcher, LockProxy, LockProxyGuard,
    NamespaceProxy, ObjectProxy, QueueProxy, RLockProxy, RLockProxyGuard, Reply, SemaphoreProxy,
    Shared, ValueProxy,
};
#[cfg(feature = "redis")]
pub use redis::RedisOptions;
pub use token::Token;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::address::Address;
use crate::process::Process;
use crate::sweep::{MANAGER_DIRS, OwnedDir};
use client::{Endpoint, Session};
use protocol::Op;
use proxy::from_value;

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
///                 counts.incr("hits", 1).unwrap(); // atomic on the server
///             }
///         })
///     })
///     .collect::<Result<_, _>>()?;
/// for w in workers {
///     w.join()?;
/// }
/// assert_eq!(counts.get("hits")?, Some(400));
/// # Ok(())
/// # }
/// ```
///
/// # The manager's objects and their shared-memory twins
///
/// A proxy has its twin's methods, families and Python aliases ([`LockProxy`](crate::LockProxy)
/// has [`Lock`](crate::Lock)'s `acquire`, `try_acquire`, `acquire_timeout`, `acquire_deadline`
/// and `is_locked`, ...), returns `Result<_, ManagerError>` (a round trip can fail), and says "not
/// ready" with [`ManagerError::Timeout`], [`Full`](ManagerError::Full) or
/// [`Empty`](ManagerError::Empty) where the twin has its own error's variant. The factories take
/// the twins' arguments (`barrier(usize)`, `semaphore(u32)`, `queue_bounded(usize)`) and refuse
/// what the twins refuse (no parties, a bound of 0). What differs by nature:
///
/// | proxy (twin) | when a holder's process dies | a clone is |
/// |---|---|---|
/// | [`LockProxy`](crate::LockProxy), [`RLockProxy`](crate::RLockProxy), [`ConditionProxy`](crate::ConditionProxy) ([`Lock`](crate::Lock), [`RLock`](crate::RLock), [`Condition`](crate::Condition)) | the manager releases the lock when the holder's process ends (its last connection to the manager does), or when the holding handle is dropped with the lock still taken, and tells the next taker once, with [`LockProxyGuard::owner_died`](crate::LockProxyGuard::owner_died); no repair step: the lock stays usable. The twin gives `Err(OwnerDied(guard))`, and becomes not recoverable unless the taker calls `mark_consistent()`: the lock lives in memory the dead holder shared, the manager's does not | another owner (a twin's clone is the same lock, owned by the process holding the guard, for an `RLock` the thread) |
/// | [`SemaphoreProxy`](crate::SemaphoreProxy), [`BoundedSemaphoreProxy`](crate::BoundedSemaphoreProxy) ([`Semaphore`](crate::Semaphore), [`BoundedSemaphore`](crate::BoundedSemaphore)) | as the twin: permits belong to nobody, so a dead holder's permit is not given back | another handle |
/// | [`EventProxy`](crate::EventProxy) ([`Event`](crate::Event)) | nothing is held | another handle |
/// | [`BarrierProxy`](crate::BarrierProxy) ([`Barrier`](crate::Barrier)) | a waiter whose connection ends breaks the barrier: the others get `BrokenBarrier` at once. The twin's waiters notice a dead process among those that arrived within tens of milliseconds, and get `BrokenBarrier` too | another handle |
/// | [`QueueProxy`](crate::QueueProxy), [`JoinableQueueProxy`](crate::JoinableQueueProxy) ([`Queue`](crate::Queue), [`JoinableQueue`](crate::JoinableQueue)) | as the twin: a getter that dies waiting takes nothing; an item handed to a process that then dies goes with it, and a joinable queue's `join` reports it ([`TasksLost`](crate::TasksLost)) instead of waiting for it | another handle |
/// | [`ValueProxy`](crate::ValueProxy), [`ArrayProxy`](crate::ArrayProxy) ([`Value`](crate::Value), [`Array`](crate::Array)) | nothing is held: each operation is atomic on the server, and there is no `lock()` or `update(closure)`, since a closure cannot travel | the same object, on the shared connection |
/// | [`DictProxy`](crate::DictProxy), [`ListProxy`](crate::ListProxy), [`NamespaceProxy`](crate::NamespaceProxy), [`ObjectProxy`](crate::ObjectProxy) (none) | nothing is held: each operation is atomic on the server | the same object, on the shared connection |
///
/// A timeout is measured by the server, from when it reads the request: on TCP the call returns
/// up to a round trip of the network later than its deadline, and `try_` forms cost a round trip
/// too.
///
/// The proxies of a process share its connections to a manager: the calls that do not wait share
/// one, and each call that may wait (a lock's `acquire`, a queue's `get`, a watch) takes one of
/// the process's for its duration. So ten thousand lock proxies in a process use as many
/// connections as it has calls waiting at once. A process may have 256 connections to a manager,
/// and the manager serves 1024 in all: a call over a limit is
/// [`ErrorCode::TooManyConnections`], its message naming the limit.
///
/// # How long an object lives
///
/// As long as something can reach it, as in Python: a proxy in any process (clones share one
/// hold), a name (until [`remove_named`](Self::remove_named)), a dict's slot (a nested container),
/// a proxy stored as a value in a dict, a list, a namespace, a value or a queue (see
/// [`DictProxy`](crate::DictProxy)), or a proxy in flight to another process. Stored proxies may
/// form cycles: a cycle nothing else reaches is freed too. When the last is gone the server frees the object and
/// [`stats`](Self::stats) no longer counts it. A process that dies, SIGKILL included, gives up
/// everything it held at once: the server sees its connections end. A proxy in flight (a
/// [`Process`] argument, a queue item, a pipe message) keeps its object alive until it is read,
/// even if its sender drops its own proxy at once, for at most
/// [`ManagerBuilder::loan_grace`] (60 s by default).
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::Manager;
///
/// let manager = Manager::start()?;
/// let scratch = manager.dict::<u32, u32>()?;
/// let alias = scratch.clone(); // the same hold
/// assert_eq!(manager.stats()?.objects, 1);
/// drop(scratch);
/// drop(alias);
/// assert_eq!(manager.stats()?.objects, 0); // freed with its last proxy
///
/// let named = manager.dict_named::<u32, u32>("kept")?;
/// drop(named);
/// assert_eq!(manager.stats()?.objects, 1); // its name holds it
/// assert!(manager.remove_named("kept")?);
/// assert_eq!(manager.stats()?.objects, 0);
/// # Ok(())
/// # }
/// ```
pub struct Manager {
    pub(crate) session: Arc<Session>,
    /// The server process, when this handle started it: shut down on drop.
    server: Option<Process<()>>,
    /// The private directory of the socket, removed on drop.
    dir: Option<OwnedDir>,
}

impl Manager {
    /// A handle on `session` (registered as this process's for its manager, if it has none).
    pub(crate) fn new(
        session: Arc<Session>,
        server: Option<Process<()>>,
        dir: Option<OwnedDir>,
    ) -> Manager {
        client::register(&session);
        Manager {
            session,
            server,
            dir,
        }
    }

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
    /// `authkey`: a new client of it, whose proxies share its connections.
    pub fn connect(address: impl Into<Address>, authkey: &[u8]) -> Result<Manager, ManagerError> {
        let session = Session::open(&Endpoint::Manager(address.into()), authkey)?;
        Ok(Manager::new(session, None, None))
    }

    /// Connects to Redis (or Valkey) at `url` (`redis://[user:password@]host[:port][/db]`,
    /// `redis+unix:///path/to/socket`), in the namespace `"default"`: its proxies are the in-memory
    /// manager's, on Redis's keys (`docs/redis.md` says what differs). Feature `redis`.
    ///
    /// ```no_run
    /// # fn main() -> multiproc::Result<()> {
    /// let manager = multiproc::Manager::connect_redis("redis://127.0.0.1:6379/0")?;
    /// let hits = manager.dict_named::<String, i64>("hits")?;
    /// hits.incr("home", 1)?; // atomic on Redis, exact to 64 bits
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "redis")]
    pub fn connect_redis(url: &str) -> Result<Manager, ManagerError> {
        Manager::redis(RedisOptions::new(url))
    }

    /// Connects to Redis as `options` say (a namespace, a connect timeout). Feature `redis`.
    #[cfg(feature = "redis")]
    pub fn redis(options: RedisOptions) -> Result<Manager, ManagerError> {
        let (target, password) = options.target()?;
        let session = Session::open(&Endpoint::Redis(target), &password)?;
        Ok(Manager::new(session, None, None))
    }

    /// A manager as the environment says: on a Redis Cluster if `MULTIPROC_REDIS_CLUSTER` is set
    /// (its nodes' URLs, comma-separated, as [`RedisOptions::cluster`] takes them), else on Redis
    /// if `MULTIPROC_REDIS_URL` is set (as [`connect_redis`](Self::connect_redis) with that URL),
    /// else a new manager process ([`start`](Self::start)). For programs that run either way
    /// unchanged, as the scenarios of `examples/` do. A variable set in a build without its
    /// feature (`redis`, `redis-cluster`) is an error, not a silent fallback.
    pub fn from_env() -> Result<Manager, ManagerError> {
        if let Ok(nodes) = std::env::var("MULTIPROC_REDIS_CLUSTER") {
            #[cfg(feature = "redis-cluster")]
            return Manager::redis(RedisOptions::cluster(nodes.split(',').map(str::trim)));
            #[cfg(not(feature = "redis-cluster"))]
            return Err(ManagerError::Start(format!(
                "MULTIPROC_REDIS_CLUSTER is set ({nodes}), but multiproc was built without its \
                 feature `redis-cluster`"
            )));
        }
        match std::env::var("MULTIPROC_REDIS_URL") {
            Err(_) => Manager::start(),
            #[cfg(feature = "redis")]
            Ok(url) => Manager::connect_redis(&url),
            #[cfg(not(feature = "redis"))]
            Ok(_) => Err(ManagerError::Start(
                "MULTIPROC_REDIS_URL is set, but multiproc was built without its feature `redis`"
                    .to_owned(),
            )),
        }
    }

    /// What holds its objects: a manager process, or Redis.
    pub fn backend(&self) -> Backend {
        match self.session.is_redis() {
            false => Backend::Manager,
            true => Backend::Redis,
        }
    }

    /// Where clients connect: the manager's address, or, on Redis, the Redis server's (its
    /// socket's path, or its TCP address).
    pub fn address(&self) -> &Address {
        &self.session.address
    }

    /// The server process's pid, when this handle started it.
    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().map(Process::pid)
    }

    /// The key clients authenticate with. Pass it only over private channels (a process
    /// argument, a pipe): anyone holding it and the address can use the manager.
    pub fn authkey(&self) -> &[u8] {
        &self.session.authkey
    }

    /// Asks the server for its counters: objects (alive: see "How long an object lives" above),
    /// connections, handshakes in flight, wrong keys refused.
    pub fn stats(&self) -> Result<ManagerStats, ManagerError> {
        from_value(self.session.call(Op::Stats, 0, Vec::new(), 0)?)
    }

    /// Removes the name `name`: the object lives on while proxies hold it, and is freed with the
    /// last one (at once if there is none). Returns whether there was such a name. A later
    /// `_named` call with the name creates a new object.
    pub fn remove_named(&self, name: &str) -> Result<bool, ManagerError> {
        let removed = self
            .session
            .call(Op::RemoveNamed, 0, vec![name.into()], 0)?;
        removed
            .as_bool()
            .ok_or_else(|| ManagerError::Protocol(format!("expected a boolean, got {removed}")))
    }

    /// On Redis, removes every object of this manager's namespace, named or not, with all its
    /// keys, on every node of a cluster, and returns how many it removed: their proxies then get
    /// `UnknownObject`. On Redis nothing frees an object that no process holds any more (Redis
    /// cannot know that a process died): this is how a finished job's namespace is cleared. For
    /// a namespace no process uses now: an object made while it runs may survive it. On a
    /// manager process, `ManagerError::Value` (it frees each object when nothing holds it).
    /// Feature `redis`.
    ///
    /// ```no_run
    /// # fn main() -> multiproc::Result<()> {
    /// use multiproc::{Manager, RedisOptions};
    ///
    /// let job = Manager::redis(RedisOptions::new("redis://127.0.0.1:6379/0").namespace("job-42"))?;
    /// job.dict_named::<String, u32>("results")?.insert("a", 1)?;
    /// // ... the job's processes are done ...
    /// assert_eq!(job.drop_namespace()?, 1);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "redis")]
    pub fn drop_namespace(&self) -> Result<u64, ManagerError> {
        self.session.drop_namespace()
    }

    /// Removes the socket directories of managers whose starting process died (killed, say),
    /// and returns them; a live manager's is never touched. [`Manager::start`] does it too, and
    /// so does `multiproc clean`.
    pub fn clean_dead() -> Result<Vec<PathBuf>, ManagerError> {
        let removed = MANAGER_DIRS.sweep().map_err(ManagerError::Os)?;
        Ok(removed
            .into_iter()
            .map(|name| MANAGER_DIRS.dir().join(name))
            .collect())
    }

    /// Stops the server, whoever started it (for a server this handle started, dropping the
    /// handle does the same).
    pub fn shutdown(mut self) -> Result<(), ManagerError> {
        if self.server.is_none() {
            return match self.session.call(Op::Shutdown, 0, Vec::new(), 0) {
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
        let asked = self.session.call(Op::Shutdown, 0, Vec::new(), 0);
        if server.join_timeout(Duration::from_secs(5)).is_err() {
            let _ = server.kill();
            let _ = server.join_timeout(Duration::from_secs(5));
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
            .field("endpoint", &self.session.endpoint)
            .field("started_here", &self.server.is_some())
            .finish()
    }
}

/// What holds a manager's objects ([`Manager::backend`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// A manager process of ours ([`Manager::start`], [`Manager::connect`]).
    Manager,
    /// Redis or Valkey ([`Manager::connect_redis`]; feature `redis`).
    Redis,
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
