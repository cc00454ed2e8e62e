//! The manager's objects on Redis (or Valkey): the same proxies, their operations run as one call
//! each of a Lua function library (`ops.lua`, through `ops`) on keys under
//! `mp:{<namespace>:<id>}:`; locks are leases (`lease`). `docs/redis.md` says what carries over and
//! what differs.
//!
//! A process's [`Store`] for one server and namespace is its session's link: one connection for
//! the calls that do not wait, made again after it breaks, and a pool for the calls that may wait
//! (a lock's waiter blocked in `BLPOP`, a queue's getter in `BLMOVE`, holds its connection). A
//! call whose connection fails is `Gone` and is never sent again: it may have run (an increment,
//! a push). The next call connects anew.
//!
//! Objects have 64-bit ids, as the in-memory manager's: random for new objects (the top bit
//! clear), derived from the name for named ones (the top bit set; the meta hash keeps the name,
//! so a collision of two names is an error, not a shared object).

mod lease;
mod ops;
mod queue;
mod signals;

use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ErrorCode, ManagerError};
use crate::address::Address;
use crate::channel::ConnectError;

/// How long a connection may take, by default.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a lock's lease lasts unless its holder renews it, by default.
const LEASE: Duration = Duration::from_secs(10);
/// How long an answer to a call that does not wait may take before the connection is given up.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept for calls that wait, at most.
const IDLE_MAX: usize = 8;

/// Where and how to reach Redis: for [`Manager::redis`](crate::Manager::redis).
///
/// ```no_run
/// # fn main() -> multiproc::Result<()> {
/// use std::time::Duration;
/// use multiproc::{Manager, RedisOptions};
///
/// let options = RedisOptions::new("redis://127.0.0.1:6379/0")
///     .namespace("job-42")
///     .connect_timeout(Duration::from_secs(2));
/// let manager = Manager::redis(options)?;
/// let counts = manager.dict_named::<String, i64>("counts")?;
/// counts.incr("runs", 1)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisOptions {
    url: String,
    namespace: String,
    connect_timeout: Duration,
    lease: Duration,
    root_certificates: Option<Vec<u8>>,
}

impl RedisOptions {
    /// Redis at `url`: `redis://[user:password@]host[:port][/db]`, or a Unix socket,
    /// `redis+unix:///path/to/socket` (`unix:///path` too).
    pub fn new(url: impl Into<String>) -> RedisOptions {
        RedisOptions {
            url: url.into(),
            namespace: "default".to_owned(),
            connect_timeout: CONNECT_TIMEOUT,
            lease: LEASE,
            root_certificates: None,
        }
    }

    /// The certificates (PEM) a `rediss://` server's must chain to, instead of the system's:
    /// for a server with a private certificate authority. Feature `redis-tls`.
    #[cfg(feature = "redis-tls")]
    pub fn tls_root_certificates(mut self, pem: impl Into<Vec<u8>>) -> RedisOptions {
        self.root_certificates = Some(pem.into());
        self
    }

    /// How long a taken lock stays taken unless its holder's process renews it (10 s unless said;
    /// at least 30 ms). The process renews what it holds every third of a lease; a holder that
    /// dies or stops for longer loses the lock, and the next taker is told that the owner died.
    pub fn lease(mut self, lease: Duration) -> RedisOptions {
        self.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// The namespace the objects live in (`"default"` unless said): managers on one server with
    /// different namespaces share nothing, not even names.
    pub fn namespace(mut self, namespace: impl Into<String>) -> RedisOptions {
        self.namespace = namespace.into();
        self
    }

    /// How long connecting (and each reconnection) may take: 5 s unless said.
    pub fn connect_timeout(mut self, timeout: Duration) -> RedisOptions {
        self.connect_timeout = timeout;
        self
    }

    /// The target and the secret (the URL's password), apart.
    pub(crate) fn target(&self) -> Result<(Target, Vec<u8>), ManagerError> {
        if self.namespace.contains(['{', '}']) {
            return Err(ManagerError::Value(format!(
                "a namespace has no braces (Redis reads them as a hash tag): {:?}",
                self.namespace
            )));
        }
        let (url, password) = split_password(&self.url);
        let target = Target {
            url,
            namespace: self.namespace.clone(),
            connect_timeout_ms: u64::try_from(self.connect_timeout.as_millis()).unwrap_or(u64::MAX),
            lease_ms: u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX),
            root_certificates: self.root_certificates.clone(),
        };
        // Checked here, so that a bad URL is an error of the call that gave it.
        target.info(&password)?;
        Ok((target, password))
    }
}

/// A Redis server and namespace, as a proxy carries it to another process: the URL without its
/// password (which travels apart, as a manager's key does).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Target {
    url: String,
    namespace: String,
    connect_timeout_ms: u64,
    lease_ms: u64,
    /// The roots a TLS server's certificate must chain to (PEM), if not the system's.
    root_certificates: Option<Vec<u8>>,
}

impl Target {
    /// How redis-rs connects, the password put back.
    fn info(&self, password: &[u8]) -> Result<redis::ConnectionInfo, ManagerError> {
        let mut url = self.url.clone();
        if !password.is_empty() {
            let password = std::str::from_utf8(password)
                .map_err(|_| ManagerError::Value("a Redis password is UTF-8".to_owned()))?;
            url = put_password(&url, password);
        }
        let info = redis::IntoConnectionInfo::into_connection_info(url.as_str())
            .map_err(|e| ManagerError::Value(format!("not a Redis URL: {}: {e}", self.url)))?;
        // Each call is one request and one answer: nothing to gain from Nagle's wait.
        let tcp = redis::io::tcp::TcpSettings::default().set_nodelay(true);
        Ok(info.set_tcp_settings(tcp))
    }

    /// The server's address, as [`Manager::address`](crate::Manager::address) gives it: its
    /// socket's path, or its TCP address (the host resolved; unspecified if it does not resolve).
    pub(crate) fn address(&self) -> Address {
        let Ok(info) = redis::IntoConnectionInfo::into_connection_info(self.url.as_str()) else {
            return Address::Tcp(([0, 0, 0, 0], 0).into());
        };
        match info.addr() {
            redis::ConnectionAddr::Unix(path) => Address::Unix(path.clone()),
            redis::ConnectionAddr::Tcp(host, port)
            | redis::ConnectionAddr::TcpTls { host, port, .. } => {
                use std::net::ToSocketAddrs;
                let resolved = (host.as_str(), *port)
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut all| all.next());
                Address::Tcp(resolved.unwrap_or_else(|| ([0, 0, 0, 0], *port).into()))
            }
            _ => Address::Tcp(([0, 0, 0, 0], 0).into()),
        }
    }

    /// A client for `info`: over TLS with this target's roots, for a `rediss://` URL.
    fn client(&self, info: redis::ConnectionInfo) -> Result<redis::Client, ManagerError> {
        let refused = |e: redis::RedisError| {
            ManagerError::Value(format!("cannot connect to {} as it says: {e}", self.url))
        };
        #[cfg(feature = "redis-tls")]
        if let redis::ConnectionAddr::TcpTls { .. } = info.addr() {
            tls_provider();
            let certificates = redis::TlsCertificates {
                client_tls: None,
                root_cert: self.root_certificates.clone(),
            };
            return redis::Client::build_with_tls(info, certificates).map_err(refused);
        }
        redis::Client::open(info).map_err(refused)
    }

    fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    /// How long a waiter blocks between its looks: a quarter of a lease (so that a lapsed lease
    /// is seen), within 10 ms and 1 s.
    fn wait_slice(&self) -> Duration {
        (self.lease() / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// The prefix of every key of `object`.
    fn prefix(&self, object: u64) -> String {
        format!("mp:{{{}:{object:016x}}}:", self.namespace)
    }

    /// A `SCAN` pattern of every object's prefix in the namespace (its glob characters escaped).
    fn prefix_pattern(&self) -> String {
        let mut namespace = String::new();
        for c in self.namespace.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                namespace.push('\\');
            }
            namespace.push(c);
        }
        format!("mp:{{{namespace}:????????????????}}:")
    }

    /// The id of the object named `name`.
    fn named_id(&self, name: &str) -> u64 {
        let mut hash = Sha256::new();
        hash.update(b"multiproc name\0");
        hash.update(self.namespace.as_bytes());
        hash.update(b"\0");
        hash.update(name.as_bytes());
        let digest = hash.finalize();
        let bytes: [u8; 8] = digest[..8].try_into().expect("a SHA-256 has 32 bytes");
        u64::from_be_bytes(bytes) | NAMED
    }
}

/// Makes ring rustls's crypto for this process, once (rustls needs one chosen).
#[cfg(feature = "redis-tls")]
fn tls_provider() {
    static CHOSEN: std::sync::Once = std::sync::Once::new();
    CHOSEN.call_once(|| {
        // Another part of the program may have chosen one already: it serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The top bit of a named object's id.
const NAMED: u64 = 1 << 63;

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (namespace {})", self.url, self.namespace)
    }
}

/// Whether `url` is of a Unix socket: its password is then its query's `pass`.
fn is_unix(url: &str) -> bool {
    url.starts_with("redis+unix://") || url.starts_with("unix://")
}

/// `url` without its password (of its user information, or a socket URL's `pass=`), and the
/// password (empty if none).
fn split_password(url: &str) -> (String, Vec<u8>) {
    if is_unix(url) {
        let Some((path, query)) = url.split_once('?') else {
            return (url.to_owned(), Vec::new());
        };
        let mut password = Vec::new();
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| match pair.strip_prefix("pass=") {
                Some(pass) => {
                    password = pass.as_bytes().to_vec();
                    false
                }
                None => true,
            })
            .collect();
        let without = match kept.is_empty() {
            true => path.to_owned(),
            false => format!("{path}?{}", kept.join("&")),
        };
        return (without, password);
    }
    let Some(scheme_end) = url.find("://") else {
        return (url.to_owned(), Vec::new());
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return (url.to_owned(), Vec::new());
    };
    let user_info = &rest[..at];
    let Some(colon) = user_info.find(':') else {
        return (url.to_owned(), Vec::new());
    };
    let password = user_info.as_bytes()[colon + 1..].to_vec();
    let user = &user_info[..colon];
    let after = if user.is_empty() { at + 1 } else { at };
    let without = format!("{}{user}{}", &url[..scheme_end + 3], &rest[after..]);
    (without, password)
}

/// [`split_password`] undone.
fn put_password(url: &str, password: &str) -> String {
    if is_unix(url) {
        let joint = if url.contains('?') { '&' } else { '?' };
        return format!("{url}{joint}pass={password}");
    }
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!(
            "{}{}:{password}{}",
            &url[..scheme_end + 3],
            &rest[..at],
            &rest[at..]
        ),
        None => format!("{}:{password}@{rest}", &url[..scheme_end + 3]),
    }
}

/// A process's connections to one Redis server and namespace (see the module's notes).
pub(crate) struct Store {
    pub(crate) target: Target,
    /// What connects (the URL, the password, the TLS roots).
    client: redis::Client,
    /// For the calls that do not wait; `None` after it broke, until the next call.
    shared: Mutex<Option<redis::Connection>>,
    /// For the calls that wait, each taken for one call.
    idle: Mutex<Vec<redis::Connection>>,
    /// This process's id among the server's clients (random): its owners' tokens start with it.
    id: u64,
    /// The locks this process holds, renewed while it does.
    leases: std::sync::Arc<lease::Leases>,
}

impl Store {
    /// Connects to `target` with `password`, and checks that it is Redis.
    pub(crate) fn open(target: &Target, password: &[u8]) -> Result<Store, ManagerError> {
        let info = target.info(password)?;
        let client = target.client(info)?;
        let store = Store {
            target: target.clone(),
            client,
            shared: Mutex::new(None),
            idle: Mutex::new(Vec::new()),
            id: ops::random_id()?,
            leases: Default::default(),
        };
        let connection = store.connect()?;
        *lock(&store.shared) = Some(connection);
        Ok(store)
    }

    /// A new connection, checked with a `PING`.
    fn connect(&self) -> Result<redis::Connection, ManagerError> {
        let timeout = self.target.connect_timeout();
        let mut connection = self
            .client
            .get_connection_with_timeout(timeout)
            .map_err(|e| self.refused(&e))?;
        let set = connection
            .set_read_timeout(Some(timeout))
            .and_then(|()| connection.set_write_timeout(Some(timeout)));
        set.map_err(|e| self.refused(&e))?;
        let pong: redis::Value = redis::cmd("PING")
            .query(&mut connection)
            .map_err(|e| self.refused(&e))?;
        let is_pong = match &pong {
            redis::Value::SimpleString(s) => s == "PONG",
            redis::Value::BulkString(s) => s == b"PONG",
            _ => false,
        };
        if !is_pong {
            return Err(ManagerError::Connect(ConnectError::Protocol(
                "not a Redis server: its answer to PING was not PONG",
            )));
        }
        connection
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .map_err(|e| self.refused(&e))?;
        Ok(connection)
    }

    /// A failure to connect, as its error.
    fn refused(&self, e: &redis::RedisError) -> ManagerError {
        match error(e) {
            ManagerError::Gone { reason } => ManagerError::Gone {
                reason: format!("cannot connect to Redis at {}: {reason}", self.target),
            },
            ManagerError::Protocol(_) => ManagerError::Connect(ConnectError::Protocol(
                "not a Redis server: it did not answer as Redis does",
            )),
            other => other,
        }
    }

    /// This process let go of `object` (its last proxy was dropped): a queue's items that its
    /// consumers got are delivered (without this, they would come again once their lease lapsed).
    /// On the shared connection only: a drop never waits to connect. Without one (Redis gone),
    /// the consumers' leases lapse and their items come again, at least once.
    pub(crate) fn release(&self, object: u64) {
        if !self.consumes(object) {
            return;
        }
        self.let_go(lock(&self.shared).as_mut(), object);
    }

    /// Runs `op` on `object` (0: the manager's own operations) for `owner` on the shared
    /// connection, or on one of the pool if `waits`.
    pub(crate) fn call(
        &self,
        op: super::protocol::Op,
        object: u64,
        args: Vec<rmpv::Value>,
        who: super::client::Who,
        waits: bool,
    ) -> Result<rmpv::Value, ManagerError> {
        use super::protocol::Op;
        let owner = who.owner;
        let run = |connection: &mut redis::Connection| match op {
            Op::LockAcquire
            | Op::LockRelease
            | Op::LockState
            | Op::ConditionWait
            | Op::ConditionNotify => lease::run(self, connection, op, object, owner, &args),
            Op::QueuePut
            | Op::QueueGet
            | Op::QueueState
            | Op::QueueClose
            | Op::QueueTaskDone
            | Op::QueueJoin => queue::run(self, connection, op, object, owner, &args),
            Op::SemaphoreAcquire
            | Op::SemaphoreRelease
            | Op::SemaphoreValue
            | Op::EventSet
            | Op::EventClear
            | Op::EventIsSet
            | Op::EventWait
            | Op::BarrierWait
            | Op::BarrierAbort
            | Op::BarrierReset
            | Op::BarrierState => signals::run(self, connection, op, object, owner, &args),
            Op::OwnerEnd => {
                lease::owner_end(self, connection, owner);
                Ok(rmpv::Value::Nil)
            }
            _ => ops::run(self, connection, op, object, &args, who.fence),
        };
        if waits {
            let idle = lock(&self.idle).pop();
            let mut connection = match idle {
                Some(connection) => connection,
                None => self.connect()?,
            };
            let mut result = run(&mut connection);
            if unsent(&result) {
                connection = self.connect()?;
                result = run(&mut connection);
            }
            if !matches!(result, Err(ManagerError::Gone { .. })) {
                let mut idle = lock(&self.idle);
                if idle.len() < IDLE_MAX {
                    idle.push(connection);
                }
            }
            return result;
        }
        let mut shared = lock(&self.shared);
        let connection = match &mut *shared {
            Some(connection) => connection,
            None => shared.insert(self.connect()?),
        };
        let mut result = run(connection);
        if unsent(&result) {
            *connection = self.connect()?;
            result = run(connection);
        }
        if matches!(result, Err(ManagerError::Gone { .. })) {
            // Given up: a connection that failed mid-call may hold a late answer.
            *shared = None;
        }
        result
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a call was not sent: its connection had closed (the server died or restarted since the
/// last call). The call is then sent once more, on a new connection.
const UNSENT: &str = "Redis: the connection had closed before the request was written";

/// Whether `result` is a call that was not sent ([`UNSENT`]).
fn unsent<T>(result: &Result<T, ManagerError>) -> bool {
    matches!(result, Err(ManagerError::Gone { reason }) if reason == UNSENT)
}

/// A Redis error as the manager's: the server's codes of `ops.lua` are the protocol's; a broken
/// connection or a server that cannot serve now is `Gone`.
fn error(e: &redis::RedisError) -> ManagerError {
    let gone = |what: &str| ManagerError::Gone {
        reason: format!("Redis: {what}"),
    };
    // A broken pipe is a write to a connection the server had closed: the request did not reach
    // it (a server runs no half-received command).
    // (redis-rs keeps the I/O error to itself, but says its code: EPIPE is 32 on Linux.)
    let broken_pipe = format!("(os error {})", libc::EPIPE);
    if e.is_io_error() && e.to_string().contains(&broken_pipe) {
        return ManagerError::Gone {
            reason: UNSENT.to_owned(),
        };
    }
    if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
        return gone(&e.to_string());
    }
    if e.kind() == redis::ErrorKind::AuthenticationFailed {
        return ManagerError::Connect(ConnectError::AuthFailed);
    }
    let Some(code) = e.code() else {
        return ManagerError::Protocol(format!("Redis: {e}"));
    };
    let detail = e.detail().unwrap_or("").to_owned();
    match code {
        "WRONGPASS" | "NOAUTH" | "NOPERM" => ManagerError::Connect(ConnectError::AuthFailed),
        "LOADING" | "BUSY" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "READONLY" => {
            gone(&format!("{code} {detail}"))
        }
        "WRONGTYPE" => ManagerError::Remote {
            code: ErrorCode::WrongKind,
            message: format!(
                "a key under this namespace's prefix is not of the type this object uses (another \
                 program wrote it): {detail}"
            ),
        },
        "OOM" => ManagerError::Remote {
            code: ErrorCode::OutOfMemory,
            message: format!("Redis is out of memory (its maxmemory): {detail}"),
        },
        _ => ManagerError::Remote {
            code: ErrorCode::parse(code),
            message: detail,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_travels_apart_from_its_url() {
        for (url, bare, password) in [
            (
                "redis://:s3cret@host:6379/0",
                "redis://host:6379/0",
                "s3cret",
            ),
            ("redis://me:pa%40ss@host/1", "redis://me@host/1", "pa%40ss"),
            ("redis://host:6379", "redis://host:6379", ""),
            ("redis+unix:///tmp/r.sock", "redis+unix:///tmp/r.sock", ""),
            (
                "redis+unix:///tmp/r.sock?pass=pw",
                "redis+unix:///tmp/r.sock",
                "pw",
            ),
            ("unix:///r.sock?db=2&pass=pw", "unix:///r.sock?db=2", "pw"),
        ] {
            let (without, got) = split_password(url);
            assert_eq!(
                (without.as_str(), got.as_slice()),
                (bare, password.as_bytes())
            );
            if !password.is_empty() {
                assert_eq!(put_password(&without, password), url);
            }
        }
    }

    #[test]
    fn named_ids_are_of_the_namespace_and_never_a_new_objects() {
        let (target, _) = RedisOptions::new("redis://host").target().unwrap();
        let (other, _) = RedisOptions::new("redis://host")
            .namespace("other")
            .target()
            .unwrap();
        let id = target.named_id("counts");
        assert_eq!(id, target.named_id("counts"));
        assert_ne!(id, other.named_id("counts"));
        assert_ne!(id, target.named_id("count"));
        assert_ne!(id & NAMED, 0);
        assert_eq!(target.prefix(0x2a), "mp:{default:000000000000002a}:");
        assert!(
            RedisOptions::new("redis://h")
                .namespace("{x}")
                .target()
                .is_err()
        );
        assert!(RedisOptions::new("http://h").target().is_err());
    }
}
