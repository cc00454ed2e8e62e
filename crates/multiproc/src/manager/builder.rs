//! [`ManagerBuilder`]: where a manager listens, its key and the user types it hosts; and the two
//! ways to run it, a server process of its own ([`ManagerBuilder::start`]) or this process
//! ([`ManagerBuilder::serve`]).

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::client::Session;
use super::proxy::{Shared, TypeEntry, entry_for};
use super::{Manager, ManagerError, server};
use crate::address::Address;
use crate::channel::ConnectError;
use crate::process::Process;
use crate::sweep::{MANAGER_DIRS, OwnedDir};
use crate::sys::StreamListener;
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
    loan_grace: Option<Duration>,
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

    fn grace(&self) -> Duration {
        self.loan_grace.unwrap_or(server::DEFAULT_LOAN_GRACE)
    }

    /// Binds the address; the private directory made for a default address.
    fn bind(&mut self) -> Result<(StreamListener, Vec<u8>, Option<OwnedDir>), ManagerError> {
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
        let listener = StreamListener::bind(&address).map_err(ManagerError::Os)?;
        Ok((listener, authkey, dir))
    }

    /// Starts the server as a child process (it ends with this program, or on
    /// [`Manager::shutdown`]) and connects to it. The socket and the key reach the child as its
    /// arguments, over the private bootstrap socket.
    pub fn start(mut self) -> Result<Manager, ManagerError> {
        let (listener, authkey, dir) = self.bind()?;
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
        let session = Session::open(&address, &authkey)?;
        Ok(Manager::new(session, Some(server), dir))
    }

    /// Serves in this process until a client asks for shutdown (then the process exits): a
    /// standalone server, as `multiproc serve` runs.
    pub fn serve(mut self) -> Result<(), ManagerError> {
        let (listener, authkey, _dir) = self.bind()?;
        let grace = self.grace();
        server::serve(listener, authkey, self.types, grace);
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
    (socket, tcp, authkey, types, grace): (
        ListeningSocket,
        bool,
        Vec<u8>,
        Vec<(String, TypeEntry)>,
        Duration,
    ),
) {
    server::serve(
        StreamListener::from_parts(socket.0, tcp),
        authkey,
        types,
        grace,
    );
}
