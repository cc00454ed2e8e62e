//! The manager's objects on Redis (or Valkey): the same proxies, their operations run as one call
//! each of a Lua function library (`ops.lua`, through `ops`) on keys under
//! `mp:{<namespace>:<slot>}:<id>:`; locks are leases (`lease`). `docs/redis.md` says what carries over and
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
//! so a collision of two names is an error, not a shared object). The next 15 bits are the hash
//! tag's `<slot>`, which a nested container's id takes from its parent's: on a Redis Cluster,
//! every script's keys are on one node, and the objects spread over all of them.

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
    /// A cluster's nodes to start from (`url` the first), or `None` for one server.
    cluster: Option<Vec<String>>,
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
            cluster: None,
        }
    }

    /// A Redis Cluster, reached through any of `nodes` (URLs as for [`new`](Self::new), over TCP,
    /// `rediss://` for TLS; one password serves every node): the client learns the other nodes
    /// from them, and sends each object's calls to the node that holds its slot. An object's keys,
    /// and those of the containers nested in it, share one hash slot; objects spread over all.
    /// Feature `redis-cluster`.
    ///
    /// ```no_run
    /// # fn main() -> multiproc::Result<()> {
    /// use multiproc::{Manager, RedisOptions};
    ///
    /// let nodes = ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"];
    /// let manager = Manager::redis(RedisOptions::cluster(nodes).namespace("job-42"))?;
    /// let jobs = manager.queue_named::<String>("jobs")?;
    /// jobs.put("first".to_owned())?;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "redis-cluster")]
    pub fn cluster<I, S>(nodes: I) -> RedisOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let nodes: Vec<String> = nodes.into_iter().map(Into::into).collect();
        let first = nodes.first().cloned().unwrap_or_default();
        RedisOptions {
            cluster: Some(nodes),
            ..RedisOptions::new(first)
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
        let (url, mut password) = split_password(&self.url);
        let mut cluster = Vec::new();
        for node in self.cluster.iter().flatten() {
            if is_unix(node) {
                return Err(ManagerError::Value(format!(
                    "a cluster's nodes are reached over TCP (they tell each other their addresses), \
                     not at a socket: {node}"
                )));
            }
            let (bare, secret) = split_password(node);
            if !secret.is_empty() && !password.is_empty() && secret != password {
                return Err(ManagerError::Value(
                    "a cluster's nodes share one password: these URLs give two".to_owned(),
                ));
            }
            if password.is_empty() {
                password = secret;
            }
            cluster.push(bare);
        }
        if self.cluster.as_ref().is_some_and(Vec::is_empty) {
            return Err(ManagerError::Value(
                "a Redis Cluster is reached through one of its nodes at least: none given"
                    .to_owned(),
            ));
        }
        let target = Target {
            url,
            cluster,
            namespace: self.namespace.clone(),
            connect_timeout_ms: u64::try_from(self.connect_timeout.as_millis()).unwrap_or(u64::MAX),
            lease_ms: u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX),
            root_certificates: self.root_certificates.clone(),
        };
        // Checked here, so that a bad URL is an error of the call that gave it.
        target.connector(&password)?;
        Ok((target, password))
    }
}

/// A Redis server and namespace, as a proxy carries it to another process: the URL without its
/// password (which travels apart, as a manager's key does).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Target {
    url: String,
    /// A cluster's nodes to start from (`url` among them), or none for one server.
    cluster: Vec<String>,
    namespace: String,
    connect_timeout_ms: u64,
    lease_ms: u64,
    /// The roots a TLS server's certificate must chain to (PEM), if not the system's.
    root_certificates: Option<Vec<u8>>,
}

impl Target {
    /// How redis-rs connects to the server at `url` (this target's, or a cluster node's), the
    /// password put back.
    fn info(&self, url: &str, password: &[u8]) -> Result<redis::ConnectionInfo, ManagerError> {
        let mut url = url.to_owned();
        if !password.is_empty() {
            let password = std::str::from_utf8(password)
                .map_err(|_| ManagerError::Value("a Redis password is UTF-8".to_owned()))?;
            url = put_password(&url, password);
        }
        let info = redis::IntoConnectionInfo::into_connection_info(url.as_str()).map_err(|e| {
            let (bare, _) = split_password(&url);
            ManagerError::Value(format!("not a Redis URL: {bare}: {e}"))
        })?;
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

    /// What connects to this target with `password`: over TLS with this target's roots, for a
    /// `rediss://` URL.
    fn connector(&self, password: &[u8]) -> Result<Connector, ManagerError> {
        let refused = |e: redis::RedisError| {
            ManagerError::Value(format!("cannot connect to {} as it says: {e}", self.url))
        };
        let info = self.info(&self.url, password)?;
        let tls = matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
        #[cfg(feature = "redis-tls")]
        let certificates = || {
            tls_provider();
            redis::TlsCertificates {
                client_tls: None,
                root_cert: self.root_certificates.clone(),
            }
        };
        if !self.cluster.is_empty() {
            #[cfg(feature = "redis-cluster")]
            {
                let nodes = self
                    .cluster
                    .iter()
                    .map(|node| self.info(node, password))
                    .collect::<Result<Vec<_>, _>>()?;
                // No retries of redis-rs's own: a call that failed may have run (an increment),
                // and is never sent again; one that was redirected did not run, and `Store::call`
                // sends it once more (`MOVED`).
                let tcp = redis::io::tcp::TcpSettings::default().set_nodelay(true);
                let builder = redis::cluster::ClusterClientBuilder::new(nodes)
                    .retries(0)
                    .connection_timeout(self.connect_timeout())
                    .response_timeout(self.connect_timeout())
                    .tcp_settings(tcp);
                #[cfg(feature = "redis-tls")]
                let builder = match tls {
                    true => builder.certs(certificates()),
                    false => builder,
                };
                return builder.build().map(Connector::Cluster).map_err(refused);
            }
            #[cfg(not(feature = "redis-cluster"))]
            unreachable!("a cluster's options are made with the feature `redis-cluster` only");
        }
        #[cfg(feature = "redis-tls")]
        if tls {
            return redis::Client::build_with_tls(info, certificates())
                .map(Connector::Node)
                .map_err(refused);
        }
        let _ = tls;
        redis::Client::open(info)
            .map(Connector::Node)
            .map_err(refused)
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

    /// The prefix of every key of `object`: its hash tag is the namespace and the object's
    /// [`slot_of`], so that a container and those nested in it share a Redis Cluster's slot.
    fn prefix(&self, object: u64) -> String {
        format!(
            "mp:{{{}:{:04x}}}:{object:016x}:",
            self.namespace,
            slot_of(object)
        )
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
        format!("mp:{{{namespace}:????}}:????????????????:")
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

/// The bits of an id that its keys' hash tag holds (`slot_of`): 15, as many groups as a Redis
/// Cluster has slots, twice over.
const SLOT: u64 = 0x7fff << 48;

/// The part of `object`'s id in its keys' hash tag: what decides the cluster node that holds it.
fn slot_of(object: u64) -> u64 {
    (object & SLOT) >> 48
}

/// A new id for a container nested in `parent`: random, but of its parent's slot (`slot_of`),
/// so that one script reaches both.
fn nested_id(parent: u64) -> Result<u64, ManagerError> {
    loop {
        let id = (parent & SLOT) | (ops::random_id()? & !SLOT);
        if id & !SLOT != 0 {
            return Ok(id);
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cluster.len() {
            0 => write!(f, "{} (namespace {})", self.url, self.namespace),
            1 => write!(
                f,
                "the Redis Cluster of {} (namespace {})",
                self.url, self.namespace
            ),
            n => write!(
                f,
                "the Redis Cluster of {} and {} more (namespace {})",
                self.url,
                n - 1,
                self.namespace
            ),
        }
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

/// What connects to a target: a client of one server, or of a cluster's nodes.
#[derive(Clone)]
enum Connector {
    Node(redis::Client),
    #[cfg(feature = "redis-cluster")]
    Cluster(redis::cluster::ClusterClient),
}

impl Connector {
    /// A new connection (to every node of a cluster), within `timeout`.
    fn connect(&self, timeout: Duration) -> redis::RedisResult<Conn> {
        match self {
            Connector::Node(client) => client.get_connection_with_timeout(timeout).map(Conn::Node),
            #[cfg(feature = "redis-cluster")]
            Connector::Cluster(client) => {
                client.get_connection().map(|c| Conn::Cluster(Box::new(c)))
            }
        }
    }
}

/// A connection: to one server, or to a cluster, whose calls go to the node of their keys' slot.
pub(crate) enum Conn {
    Node(redis::Connection),
    #[cfg(feature = "redis-cluster")]
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl Conn {
    fn is_cluster(&self) -> bool {
        match self {
            Conn::Node(_) => false,
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(_) => true,
        }
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> redis::RedisResult<()> {
        match self {
            Conn::Node(c) => c.set_read_timeout(timeout),
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(c) => c.set_read_timeout(timeout),
        }
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> redis::RedisResult<()> {
        match self {
            Conn::Node(c) => c.set_write_timeout(timeout),
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(c) => c.set_write_timeout(timeout),
        }
    }

    /// The servers behind this connection (a cluster's primaries), for the commands that look at
    /// each (`SCAN`, `INFO`): `None` is the only server.
    fn servers(&mut self) -> redis::RedisResult<Vec<Option<(String, u16)>>> {
        match self {
            Conn::Node(_) => Ok(vec![None]),
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(c) => {
                use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
                let slots = c.route_command(
                    redis::cmd("CLUSTER").arg("SLOTS"),
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
                )?;
                // [[first slot, last slot, [host, port, id], replicas...], ...]
                let ranges: Vec<Vec<redis::Value>> = redis::from_redis_value(slots)?;
                let mut servers = Vec::new();
                for range in ranges {
                    let Some(primary) = range.into_iter().nth(2) else {
                        continue;
                    };
                    let (host, port): (String, u16) = match primary {
                        redis::Value::Array(mut parts) if parts.len() >= 2 => {
                            let port = parts.remove(1);
                            let host = parts.remove(0);
                            (
                                redis::from_redis_value(host)?,
                                redis::from_redis_value(port)?,
                            )
                        }
                        _ => continue,
                    };
                    if !servers.contains(&Some((host.clone(), port))) {
                        servers.push(Some((host, port)));
                    }
                }
                Ok(servers)
            }
        }
    }

    /// `command` on `server` (one of [`servers`](Self::servers)).
    fn query_on(
        &mut self,
        server: &Option<(String, u16)>,
        command: &redis::Cmd,
    ) -> redis::RedisResult<redis::Value> {
        match (self, server) {
            #[cfg(feature = "redis-cluster")]
            (Conn::Cluster(c), Some((host, port))) => {
                use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
                let at = SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                };
                c.route_command(command, RoutingInfo::SingleNode(at))
            }
            (conn, _) => command.query(conn),
        }
    }
}

impl redis::ConnectionLike for Conn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> redis::RedisResult<redis::Value> {
        match self {
            Conn::Node(c) => c.req_packed_command(cmd),
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> redis::RedisResult<Vec<redis::Value>> {
        match self {
            Conn::Node(c) => c.req_packed_commands(cmd, offset, count),
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    // A cluster's connection routes a command by its keys, which it reads from the command
    // itself, not from its packed bytes.
    fn req_command(&mut self, cmd: &redis::Cmd) -> redis::RedisResult<redis::Value> {
        match self {
            Conn::Node(c) => c.req_command(cmd),
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(c) => c.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(c) => c.get_db(),
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(c) => c.get_db(),
        }
    }

    fn supports_pipelining(&self) -> bool {
        match self {
            Conn::Node(c) => c.supports_pipelining(),
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(c) => c.supports_pipelining(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Conn::Node(c) => c.check_connection(),
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Conn::Node(c) => c.is_open(),
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(c) => c.is_open(),
        }
    }
}

/// A process's connections to one Redis server and namespace (see the module's notes).
pub(crate) struct Store {
    pub(crate) target: Target,
    /// What connects (the URLs, the password, the TLS roots).
    client: Connector,
    /// For the calls that do not wait; `None` after it broke, until the next call.
    shared: Mutex<Option<Conn>>,
    /// For the calls that wait, each taken for one call.
    idle: Mutex<Vec<Conn>>,
    /// This process's id among the server's clients (random): its owners' tokens start with it.
    id: u64,
    /// The locks this process holds, renewed while it does.
    leases: std::sync::Arc<lease::Leases>,
}

impl Store {
    /// Connects to `target` with `password`, and checks that it is Redis.
    pub(crate) fn open(target: &Target, password: &[u8]) -> Result<Store, ManagerError> {
        let client = target.connector(password)?;
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
    fn connect(&self) -> Result<Conn, ManagerError> {
        let timeout = self.target.connect_timeout();
        let mut connection = self.client.connect(timeout).map_err(|e| self.refused(&e))?;
        let set = connection
            .set_read_timeout(Some(timeout))
            .and_then(|()| connection.set_write_timeout(Some(timeout)));
        set.map_err(|e| self.refused(&e))?;
        // (A cluster's connection asked a node for the slots' nodes, as only Redis answers; a
        // `PING` would go to every node, and fail for one that is down while the others serve.)
        if !connection.is_cluster() {
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
        }
        connection
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .map_err(|e| self.refused(&e))?;
        Ok(connection)
    }

    /// A failure to connect, as its error.
    fn refused(&self, e: &redis::RedisError) -> ManagerError {
        // redis-rs gives a cluster's failed start as one I/O error, each node's failure in its
        // text: the two that are no server's absence are told apart by it.
        if !self.target.cluster.is_empty() {
            let text = e.to_string();
            if text.contains("cluster support disabled") {
                return ManagerError::Connect(ConnectError::Protocol(
                    "not a Redis Cluster: the server has cluster support disabled (connect to \
                     it with RedisOptions::new)",
                ));
            }
            if text.contains("Parse error") {
                return ManagerError::Connect(ConnectError::Protocol(
                    "not a Redis server: it did not answer as Redis does",
                ));
            }
        }
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
        let run = |connection: &mut Conn| match op {
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
        self.on_shared(run)
    }

    /// Removes every key of the namespace (see [`Manager::drop_namespace`](crate::Manager::drop_namespace)):
    /// the objects removed.
    pub(crate) fn drop_namespace(&self) -> Result<u64, ManagerError> {
        self.on_shared(|connection| ops::drop_namespace(connection, &self.target))
    }

    /// `run` on the shared connection, connecting if there is none; sent once more on a new one
    /// if it was not sent ([`unsent`]).
    fn on_shared<T>(
        &self,
        run: impl Fn(&mut Conn) -> Result<T, ManagerError>,
    ) -> Result<T, ManagerError> {
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

/// Why a call did not run on a cluster's node: the object's slot is another node's now (the
/// cluster moved it, or a node failed over). The call is then sent once more, on a new
/// connection, which learns where the slots are.
const MOVED: &str = "Redis: the object's slot is another node's (MOVED): on a Redis Cluster, \
                     the call did not run; on one server, connect with RedisOptions::cluster";

/// Whether `result` is a call that was not sent or did not run ([`UNSENT`], [`MOVED`]).
fn unsent<T>(result: &Result<T, ManagerError>) -> bool {
    matches!(result, Err(ManagerError::Gone { reason }) if reason == UNSENT || reason == MOVED)
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
    if matches!(e.code(), Some("MOVED" | "ASK")) {
        return ManagerError::Gone {
            reason: MOVED.to_owned(),
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
        assert_eq!(target.prefix(0x2a), "mp:{default:0000}:000000000000002a:");
        assert_eq!(
            target.prefix(id),
            format!("mp:{{default:{:04x}}}:{id:016x}:", (id >> 48) & 0x7fff)
        );
        let child = nested_id(id).unwrap();
        assert_eq!(slot_of(child), slot_of(id));
        assert_eq!(child & NAMED, 0, "a nested container is not named");
        assert_ne!(child, id);
        assert!(
            RedisOptions::new("redis://h")
                .namespace("{x}")
                .target()
                .is_err()
        );
        assert!(RedisOptions::new("http://h").target().is_err());
    }
}
