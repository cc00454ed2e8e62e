//! [`Address`]: where a listener or a manager listens. Plain data, used by every layer (the
//! operating system's sockets included).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where a [`Listener`](crate::Listener) (or a [`Manager`](crate::Manager)) listens: a Unix socket path or a TCP
/// address.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Address {
    /// A Unix socket at this path (same machine, same user; handles can travel).
    Unix(PathBuf),
    /// A TCP address (`127.0.0.1:0` picks a free port; see [`Listener::address`](crate::Listener::address)).
    Tcp(SocketAddr),
}

impl From<SocketAddr> for Address {
    fn from(address: SocketAddr) -> Self {
        Address::Tcp(address)
    }
}

impl From<PathBuf> for Address {
    fn from(path: PathBuf) -> Self {
        Address::Unix(path)
    }
}

impl From<&Path> for Address {
    fn from(path: &Path) -> Self {
        Address::Unix(path.to_owned())
    }
}

/// `"host:port"` (an IP address and a port) is TCP; anything else is a Unix socket path.
impl From<&str> for Address {
    fn from(text: &str) -> Self {
        match text.parse::<SocketAddr>() {
            Ok(address) => Address::Tcp(address),
            Err(_) => Address::Unix(PathBuf::from(text)),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(path) => write!(f, "{}", path.display()),
            Address::Tcp(address) => write!(f, "{address}"),
        }
    }
}
