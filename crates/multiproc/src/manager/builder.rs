//! [`ManagerBuilder`]: where a manager listens, its key and the user types it hosts; and the two
//! ways to run it, a server process of its own ([`ManagerBuilder::start`]) or this process
//! ([`ManagerBuilder::serve`]).

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::client::{Endpoint, Session};
use super::proxy::{CallError, FreeHook, Handler, Shared, TypeEntry, entry_for};
use super::{Manager, ManagerError, server};
use crate::address::Address;
use crate::channel::ConnectError;
use crate::process::Process;
use crate::sweep::{MANAGER_DIRS, OwnedDir};
use crate::sys::{self, StreamListener};
use crate::transfer;

/// Settings for a manager: where it listens, its key, and the user types it hosts.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::Manager;
///
/// let manager = Manager::builder()
///     .address("127.0.0.1:0") // TCP on loopback, a free port
///     .authkey(b"a key the clients know")
///     .start()?;
/// let same = Manager::connect(manager.address().clone(), b"a key the clients know")?;
/// same.dict::<String, u32>()?;
/// # Ok(())
/// # }
/// ```
#[derive(Default)]
#[must_use]
pub struct ManagerBuilder {
    address: Option<Address>,
    authkey: Option<Vec<u8>>,
    allow_remote: bool,
    types: Vec<(String, TypeEntry)>,
    handlers: Vec<(String, Handler)>,
    free_hooks: Vec<(String, FreeHook)>,
    loan_grace: Option<Duration>,
    listener: Option<OwnedFd>,
    activated: bool,
    parent: Option<u32>,
}

impl fmt::Debug for ManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagerBuilder")
            .field("address", &self.address)
            .field("allow_remote", &self.allow_remote)
            .field("loan_grace", &self.grace())
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
    /// from any process ([`ObjectProxy::call`](crate::ObjectProxy::call)).
    pub fn register<T: Shared>(mut self) -> Self {
        self.types.push((T::TYPE_NAME.to_owned(), entry_for::<T>()));
        self
    }

    /// How long a proxy in flight keeps its object alive, at most, before it arrives. Default:
    /// 60 seconds.
    ///
    /// A proxy sent to another process (a [`Process`] argument, a queue item, a pipe message)
    /// takes a *loan* of its object when it is serialized, and the process that reads it claims
    /// the loan: so the object lives even if its sender drops its own proxy at once. A loan not
    /// claimed within this time ends (the message was never read, say), and the object is freed
    /// if nothing else holds it; reading the proxy later fails with
    /// [`ErrorCode::UnknownObject`](crate::ErrorCode::UnknownObject).
    pub fn loan_grace(mut self, grace: Duration) -> Self {
        self.loan_grace = Some(grace);
        self
    }

    /// Lets the manager host objects of the type `type_name`, whose methods `handler` runs: it
    /// is called with the method's name, the object's state (which it may change; kept when it
    /// returns `Ok`) and the arguments, and returns the reply. For a program that embeds the
    /// server and has its types' code in another language (a binding): the handler calls into
    /// it. Still nothing from the wire is executed: clients name a registered type and a method,
    /// and the handler decides. A panic in the handler is
    /// [`ErrorCode::Panicked`](crate::ErrorCode::Panicked), the object unchanged.
    ///
    /// A handler lives in this process: it serves with [`serve`](Self::serve) only
    /// ([`start`](Self::start) refuses it).
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// use multiproc::rmpv::Value;
    /// use multiproc::{CallError, Manager};
    ///
    /// let builder = Manager::builder().register_handler("Counter", |method, state, _args| {
    ///     match method {
    ///         "increase" => {
    ///             *state = Value::from(state.as_u64().unwrap_or(0) + 1);
    ///             Ok(state.clone())
    ///         }
    ///         other => Err(CallError::not_exposed(other)),
    ///     }
    /// });
    /// # drop(builder);
    /// # Ok(())
    /// # }
    /// ```
    pub fn register_handler(
        mut self,
        type_name: &str,
        handler: impl Fn(&str, &mut rmpv::Value, rmpv::Value) -> Result<rmpv::Value, CallError>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.handlers
            .push((type_name.to_owned(), std::sync::Arc::new(handler)));
        self
    }

    /// Runs `hook` with the last state of each object of the type `type_name` the manager frees
    /// (nothing holds it any more), soon after, outside the manager's locks: for a handler
    /// whose states name something the host keeps for them (its objects in another language),
    /// which it can then let go. Serving with [`serve`](Self::serve) only, as handlers.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// use std::collections::HashMap;
    /// use std::sync::{Arc, Mutex};
    ///
    /// use multiproc::rmpv::Value;
    /// use multiproc::{CallError, Manager};
    ///
    /// // The host's objects, by the number their state holds.
    /// let objects: Arc<Mutex<HashMap<u64, String>>> = Arc::default();
    /// let held = objects.clone();
    /// let builder = Manager::builder()
    ///     .register_handler("Greeter", move |method, state, _args| match method {
    ///         "greet" => Ok(Value::from(held.lock().unwrap()[&state.as_u64().unwrap()].as_str())),
    ///         other => Err(CallError::not_exposed(other)),
    ///     })
    ///     .on_free("Greeter", move |state| {
    ///         objects.lock().unwrap().remove(&state.as_u64().unwrap_or(0));
    ///     });
    /// # drop(builder);
    /// # Ok(())
    /// # }
    /// ```
    pub fn on_free(
        mut self,
        type_name: &str,
        hook: impl Fn(rmpv::Value) + Send + Sync + 'static,
    ) -> Self {
        self.free_hooks
            .push((type_name.to_owned(), std::sync::Arc::new(hook)));
        self
    }

    /// Serves on `listener`, a listening socket this process was given (a Unix or TCP stream
    /// socket on which `listen` was called): for a server started by a program that is not a
    /// multiproc Rust program, which binds the address itself and passes the socket down. Needs
    /// an [`authkey`](Self::authkey); the [`address`](Self::address) is not used. A descriptor
    /// that is not a listening stream socket is refused when serving starts.
    pub fn listener(mut self, listener: OwnedFd) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Serves on the listening socket passed to this process by socket activation: descriptor
    /// 3, with the environment variable `LISTEN_FDS` at 1 (and `LISTEN_PID`, if set, this
    /// process's id), systemd's convention, which any starter can follow (a Python parent:
    /// `subprocess.Popen(cmd, env={**os.environ, "LISTEN_FDS": "1"}, pass_fds=[3])` once its
    /// socket is descriptor 3). Needs an [`authkey`](Self::authkey). Serving fails at once
    /// (`ManagerError::Start`) if no such socket was passed. `multiproc serve --socket-activated`
    /// runs this.
    pub fn socket_activated(mut self) -> Self {
        self.activated = true;
        self
    }

    /// Ends this process when process `parent` does (SIGKILL, by the kernel's parent-death
    /// signal): a server started by another program never outlives it, even when that program
    /// is killed. `parent` must be this process's parent (the one that started it, whose id it
    /// passes down): if it is already gone when serving starts, serving fails at once. The
    /// signal comes when the thread of the parent that started this process ends: start it
    /// from the parent's main thread.
    pub fn die_with_parent(mut self, parent: u32) -> Self {
        self.parent = Some(parent);
        self
    }

    fn grace(&self) -> Duration {
        self.loan_grace.unwrap_or(server::DEFAULT_LOAN_GRACE)
    }

    /// Binds the address; the private directory made for a default address.
    fn listen(&mut self) -> Result<(StreamListener, Vec<u8>, Option<OwnedDir>), ManagerError> {
        let given = match self.listener.take() {
            Some(fd) => Some(StreamListener::inherited(fd).map_err(ManagerError::Os)?),
            None if self.activated => Some(
                StreamListener::activated()
                    .map_err(ManagerError::Os)?
                    .ok_or_else(|| {
                        ManagerError::Start(
                            "no socket was passed by activation (descriptor 3 with LISTEN_FDS=1)"
                                .into(),
                        )
                    })?,
            ),
            None => None,
        };
        if let Some(listener) = given {
            let authkey = self.authkey.clone().ok_or_else(|| {
                ManagerError::Start("serving on a given listener needs an authkey".into())
            })?;
            return Ok((listener, authkey, None));
        }
        let (address, dir) = match self.address.take() {
            Some(address) => (address, None),
            None => {
                // Best effort: a failure to sweep others' leftovers is no reason not to start.
                let _ = MANAGER_DIRS.sweep();
                let dir = OwnedDir::create(&MANAGER_DIRS).map_err(ManagerError::Os)?;
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
        if let Address::Tcp(tcp) = address
            && !tcp.ip().is_loopback()
            && !self.allow_remote
        {
            return Err(ConnectError::NotLoopback { address: tcp }.into());
        }
        let listener = bind_replacing_stale(&address)?;
        Ok((listener, authkey, dir))
    }

    /// Starts the server as a child process (it ends with this program, or on
    /// [`Manager::shutdown`]) and connects to it. The socket and the key reach the child as its
    /// arguments, over the private bootstrap socket.
    pub fn start(mut self) -> Result<Manager, ManagerError> {
        let hosted = self.handlers.iter().map(|(name, _)| name);
        if let Some(name) = hosted
            .chain(self.free_hooks.iter().map(|(name, _)| name))
            .next()
        {
            return Err(ManagerError::Start(format!(
                "the handler of type {name} lives in this process: serve it with \
                 ManagerBuilder::serve, not start"
            )));
        }
        let (listener, authkey, dir) = self.listen()?;
        let address = listener.address().map_err(ManagerError::Os)?;
        let (fd, tcp) = listener.into_parts();
        let grace = self.grace();
        let server = Process::builder()
            .name("multiproc-manager")
            .spawn(
                (ListeningSocket(fd), tcp, authkey.clone(), self.types, grace),
                serve_main,
            )
            .map_err(|e| ManagerError::Start(e.to_string()))?;
        let session = Session::open(&Endpoint::Manager(address), &authkey)?;
        Ok(Manager::new(session, Some(server), dir))
    }

    /// Serves in this process until a client asks for shutdown: a standalone server, as
    /// `multiproc serve` runs. [`bind`](Self::bind), then [`ManagerServer::serve`].
    pub fn serve(self) -> Result<(), ManagerError> {
        self.bind()?.serve()
    }

    /// Binds the address (or takes the socket given) and arms the parent's death, without
    /// serving yet: a program can then say where it serves, knowing that it does (a Unix socket
    /// left by a server that died is replaced; a live server's is an error).
    #[doc(alias = "get_server")]
    pub fn bind(mut self) -> Result<ManagerServer, ManagerError> {
        if let Some(parent) = self.parent
            && !sys::arm_parent_death_signal(parent)
        {
            return Err(ManagerError::Start(format!(
                "process {parent}, the parent this server dies with, is not its parent: already gone, or never was"
            )));
        }
        let given = self.listener.is_some() || self.activated;
        let (listener, authkey, dir) = self.listen()?;
        let address = listener.address().map_err(ManagerError::Os)?;
        // A socket file this server made at an address it was given is removed when it stops.
        let socket_file = match (&address, given, &dir) {
            (Address::Unix(path), false, None) => Some(path.clone()),
            _ => None,
        };
        let grace = self.grace();
        let types = self
            .types
            .into_iter()
            .map(|(name, entry)| (name, server::Methods::Compiled(entry)))
            .chain(
                self.handlers
                    .into_iter()
                    .map(|(name, handler)| (name, server::Methods::Handler(handler))),
            )
            .collect();
        Ok(ManagerServer {
            listener,
            address,
            authkey,
            types,
            free_hooks: self.free_hooks,
            grace,
            socket_file,
            _dir: dir,
        })
    }
}

/// A manager server bound to its address, not serving yet ([`ManagerBuilder::bind`]). Python:
/// `multiprocessing.managers.Server`, from `BaseManager.get_server()`.
#[must_use = "a bound server serves nobody until `serve` is called"]
pub struct ManagerServer {
    listener: StreamListener,
    address: Address,
    authkey: Vec<u8>,
    types: Vec<(String, server::Methods)>,
    free_hooks: Vec<(String, FreeHook)>,
    grace: Duration,
    socket_file: Option<std::path::PathBuf>,
    _dir: Option<OwnedDir>,
}

impl ManagerServer {
    /// Where it listens: clients connect there (the port chosen, for TCP port 0).
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Serves until a client asks for shutdown; then removes the Unix socket file it made.
    #[doc(alias = "serve_forever")]
    pub fn serve(self) -> Result<(), ManagerError> {
        let ManagerServer {
            listener,
            authkey,
            types,
            free_hooks,
            grace,
            socket_file,
            _dir,
            ..
        } = self;
        server::serve(listener, authkey, types, free_hooks, grace);
        if let Some(path) = socket_file {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }
}

impl fmt::Debug for ManagerServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagerServer")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Listens at `address`. A Unix socket file that is there already but that nobody listens on
/// (its server died without removing it) is replaced; one a server listens on is
/// `AddrInUse`, saying so.
fn bind_replacing_stale(address: &Address) -> Result<StreamListener, ManagerError> {
    match StreamListener::bind(address) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let Address::Unix(path) = address else {
                return Err(ManagerError::Os(e));
            };
            match std::os::unix::net::UnixStream::connect(path) {
                Err(refused) if refused.kind() == std::io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path).map_err(ManagerError::Os)?;
                    StreamListener::bind(address).map_err(ManagerError::Os)
                }
                _ => Err(ManagerError::Os(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("a server already listens at {}", path.display()),
                ))),
            }
        }
        bound => bound.map_err(ManagerError::Os),
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
    (socket, tcp, authkey, types, grace): (
        ListeningSocket,
        bool,
        Vec<u8>,
        Vec<(String, TypeEntry)>,
        Duration,
    ),
) {
    let types = types
        .into_iter()
        .map(|(name, entry)| (name, server::Methods::Compiled(entry)))
        .collect();
    server::serve(
        StreamListener::from_parts(socket.0, tcp),
        authkey,
        types,
        Vec::new(),
        grace,
    );
}
