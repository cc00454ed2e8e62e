//! [`Client`]: one authenticated connection to a manager, one request at a time; and the
//! connections a process shares, one per manager.
//!
//! A proxy whose operations wait (a lock, a queue, a condition, ...) has a connection of its
//! own, so that its waits hold up nothing else. The others share one connection per manager in
//! the process (Python shares one per process and thread): a child given ten dict proxies opens
//! one connection, not ten. The sharing is per process: a forked child never uses the
//! connections it inherited.

use std::fmt;
use std::io::{BufReader, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use rmpv::Value;

use super::chain;
use super::protocol::wire::{self, Request, Response};
use super::protocol::{Op, frame};
use super::{ErrorCode, ManagerError};
use crate::address::Address;
use crate::channel::auth::{self, Framing};
use crate::channel::{ConnectError, HANDSHAKE_TIMEOUT};
use crate::sys::Stream;

/// A connection to a manager: one request at a time.
pub(crate) struct Client {
    pub(crate) address: Address,
    pub(crate) authkey: Vec<u8>,
    stream: Mutex<(BufReader<Stream>, Stream)>,
    next_id: AtomicU64,
    /// The connection failed: the manager is gone, or the stream is out of step.
    broken: AtomicBool,
    /// Whether a broken connection is made again at the next call: for the connections of
    /// proxies that hold nothing on the server (dicts, lists, values, ...). A waiting proxy's own
    /// connection owns what it took (a lock), which a new one would not: it stays broken.
    remakes: bool,
}

/// Whether a connection is made again after it breaks (see [`Client::remakes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Remake {
    /// A shared connection: made again at the next call.
    OnNextCall,
    /// A connection of its own, owning what it took: stays broken.
    Never,
}

impl Client {
    /// Connects to the manager at `address` and authenticates with `authkey`.
    pub(crate) fn connect(
        address: &Address,
        authkey: &[u8],
        remake: Remake,
    ) -> Result<Client, ManagerError> {
        Ok(Client {
            address: address.clone(),
            authkey: authkey.to_vec(),
            stream: Mutex::new(open(address, authkey)?),
            next_id: AtomicU64::new(1),
            broken: AtomicBool::new(false),
            remakes: remake == Remake::OnNextCall,
        })
    }

    /// Whether a call failed for the connection (not for the operation): it is of no more use.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    /// Runs `op` on `object` (0: the manager itself) and waits for the answer.
    pub(crate) fn call(
        &self,
        op: Op,
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

    fn exchange(&self, op: Op, object: u64, args: Vec<Value>) -> Result<Value, ManagerError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = wire::encode(&Request {
            id,
            op: op.name().to_owned(),
            object,
            args,
            chain: chain::current(),
        });
        if request.len() > frame::DEFAULT_MAX_FRAME {
            // Refused here: the server would close the connection.
            return Err(ManagerError::FrameTooLarge {
                len: request.len(),
                max: frame::DEFAULT_MAX_FRAME,
            });
        }
        let mut stream = self.stream.lock().unwrap_or_else(|e| e.into_inner());
        if self.remakes && self.is_broken() {
            *stream = open(&self.address, &self.authkey)?;
            self.broken.store(false, Ordering::Relaxed);
        }
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

/// The connections this process shares, by manager; and the process they belong to.
struct Shared {
    pid: u32,
    clients: Vec<(Address, Vec<u8>, Weak<Client>)>,
}

static SHARED: Mutex<Option<Shared>> = Mutex::new(None);

/// This process's shared connection to the manager at `address`, made if there is none alive.
pub(crate) fn shared(address: &Address, authkey: &[u8]) -> Result<Arc<Client>, ManagerError> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    // Another process's (a forked child inherits its parent's): never used.
    if shared.as_ref().is_none_or(|s| s.pid != pid) {
        *shared = Some(Shared {
            pid,
            clients: Vec::new(),
        });
    }
    let clients = &mut shared.as_mut().expect("just set").clients;
    clients.retain(|(_, _, client)| client.strong_count() > 0);
    // A broken one is made again at its next call.
    let alive = clients.iter().find_map(|(a, k, client)| {
        (a == address && k.as_slice() == authkey)
            .then(|| client.upgrade())
            .flatten()
    });
    if let Some(client) = alive {
        return Ok(client);
    }
    let client = Arc::new(Client::connect(address, authkey, Remake::OnNextCall)?);
    clients.retain(|(a, k, _)| !(a == address && k.as_slice() == authkey));
    clients.push((address.clone(), authkey.to_vec(), Arc::downgrade(&client)));
    Ok(client)
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.address)
            .field("broken", &self.is_broken())
            .finish_non_exhaustive()
    }
}
