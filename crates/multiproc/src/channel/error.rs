//! What can go wrong sending and receiving on a pipe.

use std::io;

use crate::transfer::{DecodeError, EncodeError};

/// A message was not sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// Every other end is closed (dropped, or its process died). Python: `BrokenPipeError`.
    #[error("the other end of the pipe is closed")]
    Disconnected,
    /// The message is longer than the connection's maximum; nothing was sent.
    #[error("a message of {len} bytes is over the maximum of {max}")]
    TooLarge {
        /// The message's size in bytes.
        len: usize,
        /// The connection's maximum.
        max: usize,
    },
    /// The value did not serialize; nothing was sent.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The operating system failed.
    #[error("sending on the pipe failed: {0}")]
    Os(#[source] io::Error),
}

/// A message was not sent in time: the error of `try_send`, `send_timeout` and `send_deadline`
/// (and their `_bytes` forms).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendTimeoutError {
    /// The connection took nothing until the deadline: its buffer stayed full, as the other end
    /// did not read (for `try_send`: it is full now). Nothing was sent.
    #[error("the connection did not take the message before the deadline")]
    Timeout,
    /// Anything [`SendError`] says.
    #[error(transparent)]
    Send(#[from] SendError),
}

impl SendTimeoutError {
    /// Whether the deadline came first.
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout)
    }

    /// Whether the other end is closed.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, SendTimeoutError::Send(SendError::Disconnected))
    }
}

/// No message was received.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// Every other end is closed and no message is left. Python: `EOFError`.
    #[error("the other end of the pipe is closed")]
    Disconnected,
    /// The next message is longer than this connection's maximum; it was dropped unread.
    #[error("a message of {len} bytes is over the maximum of {max}; it was dropped")]
    TooLarge {
        /// The message's size in bytes.
        len: u64,
        /// The connection's maximum.
        max: usize,
    },
    /// The message did not deserialize as the expected type; it is consumed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The operating system failed.
    #[error("receiving on the pipe failed: {0}")]
    Os(#[source] io::Error),
}

/// No message was received in time: the error of `try_recv`, `recv_timeout` and `recv_deadline`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[doc(alias = "TryRecvError")]
pub enum RecvTimeoutError {
    /// Nothing arrived before the deadline (for `try_recv`: nothing was there).
    #[error("no message arrived before the deadline")]
    Timeout,
    /// Anything [`RecvError`] says.
    #[error(transparent)]
    Recv(#[from] RecvError),
}

impl RecvTimeoutError {
    /// Whether nothing arrived in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, RecvTimeoutError::Timeout)
    }

    /// Whether the other end is closed.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, RecvTimeoutError::Recv(RecvError::Disconnected))
    }
}

/// An item was not put on a queue.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PutError {
    /// The queue was closed ([`Queue::close`](crate::Queue::close)); nothing was put.
    #[error("the queue is closed")]
    Closed,
    /// The item did not serialize; nothing was put. (Python's `Queue` loses it silently in its
    /// feeder thread.)
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The queue's shared memory does not hold what its own code writes (another process of
    /// this user wrote over it), or its lock is not recoverable; nothing was put, and the queue
    /// cannot be used.
    #[error("the queue is damaged: {what}")]
    Damaged {
        /// What was found wrong.
        what: &'static str,
    },
    /// The operating system failed; nothing was put.
    #[error("putting on the queue failed: {0}")]
    Os(#[source] io::Error),
}

impl PutError {
    pub(crate) fn damaged(what: &'static str) -> PutError {
        PutError::Damaged { what }
    }
}

/// An item was not put on a queue in time: the error of `try_put`, `put_timeout` and
/// `put_deadline`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PutTimeoutError {
    /// The queue stayed full until the deadline (for `try_put`: it is full). Python: `queue.Full`.
    #[error("the queue is full")]
    Full,
    /// Anything [`PutError`] says.
    #[error(transparent)]
    Put(#[from] PutError),
}

impl PutTimeoutError {
    /// Whether the queue stayed full.
    pub fn is_full(&self) -> bool {
        matches!(self, PutTimeoutError::Full)
    }

    /// Whether the put did not happen by its deadline (the queue stayed full): the same as
    /// [`is_full`](Self::is_full), under the name every waiting family answers to.
    pub fn is_timeout(&self) -> bool {
        self.is_full()
    }
}

impl From<EncodeError> for PutTimeoutError {
    fn from(e: EncodeError) -> Self {
        PutTimeoutError::Put(e.into())
    }
}

/// No item was taken from a queue.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GetError {
    /// The queue is closed and no item is left.
    #[error("the queue is closed and empty")]
    Closed,
    /// The item did not deserialize as the expected type; it is consumed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The queue's shared memory or its side channel does not hold what its own code writes
    /// (another process of this user wrote over it), or its lock is not recoverable: the queue
    /// cannot be used.
    #[error("the queue is damaged: {what}")]
    Damaged {
        /// What was found wrong.
        what: &'static str,
    },
    /// The operating system failed.
    #[error("getting from the queue failed: {0}")]
    Os(#[source] io::Error),
}

impl GetError {
    pub(crate) fn damaged(what: &'static str) -> GetError {
        GetError::Damaged { what }
    }
}

/// No item was taken from a queue in time: the error of `try_get`, `get_timeout` and
/// `get_deadline`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GetTimeoutError {
    /// No item came before the deadline (for `try_get`: there is none). Python: `queue.Empty`.
    #[error("the queue is empty")]
    Empty,
    /// Anything [`GetError`] says.
    #[error(transparent)]
    Get(#[from] GetError),
}

impl GetTimeoutError {
    /// Whether no item came in time.
    pub fn is_empty(&self) -> bool {
        matches!(self, GetTimeoutError::Empty)
    }

    /// Whether no item came by the deadline: the same as [`is_empty`](Self::is_empty), under the
    /// name every waiting family answers to.
    pub fn is_timeout(&self) -> bool {
        self.is_empty()
    }
}

/// [`JoinableQueue::task_done`](crate::JoinableQueue::task_done) was called more times than items
/// were put. Python: `ValueError('task_done() called too many times')`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("task_done called more times than items were put")]
pub struct TaskDoneError;

/// A [`JoinableQueue::join`](crate::JoinableQueue::join) ended with no item unfinished, but some
/// never will be done: consumers took them and died (killed, say) before declaring them done.
/// They count as done for `join`, which reports them once (Python's `join` waits forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{items} items were taken by consumers that died before declaring them done")]
pub struct TasksLost {
    /// How many.
    pub items: u64,
}

/// A timed [`JoinableQueue`](crate::JoinableQueue) join failed: the error of `try_join`,
/// `join_timeout` and `join_deadline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinTimeoutError {
    /// Items were still unfinished at the deadline.
    #[error("items were still unfinished at the deadline")]
    Timeout,
    /// Every item is done or lost, and some were lost (see [`TasksLost`]).
    #[error(transparent)]
    Lost(#[from] TasksLost),
}

impl JoinTimeoutError {
    /// Whether items were still unfinished at the deadline.
    pub fn is_timeout(&self) -> bool {
        matches!(self, JoinTimeoutError::Timeout)
    }
}

/// A [`Listener`](crate::Listener) or [`Client`](crate::Client) could not make an authenticated
/// connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The keys differ: authentication failed (on both sides). Python: `AuthenticationError`.
    #[error("authentication failed: the other side has a different key")]
    AuthFailed,
    /// The handshake did not complete within its deadline.
    #[error("the authentication handshake timed out")]
    HandshakeTimeout,
    /// The peer does not speak this protocol (or another version of it).
    #[error("handshake failed: {0}")]
    Protocol(&'static str),
    /// A process of another user connected to a Unix socket; refused whatever its key.
    #[error("refused a connection from user {uid}, not this process's user")]
    ForeignUser {
        /// The peer's user id.
        uid: u32,
    },
    /// [`Listener::bind`](crate::Listener::bind) (or a manager) was given a TCP address off the
    /// loopback interface; [`Listener::bind_remote`](crate::Listener::bind_remote) and
    /// [`ManagerBuilder::allow_remote`](crate::ManagerBuilder::allow_remote) are the opt-ins.
    #[error(
        "{address} is not a loopback address: listening on the network needs the explicit opt-in \
         (Listener::bind_remote, ManagerBuilder::allow_remote, multiproc serve --allow-remote)"
    )]
    NotLoopback {
        /// The address refused.
        address: std::net::SocketAddr,
    },
    /// No connection came before the deadline of `try_accept`, `accept_timeout` or
    /// `accept_deadline`.
    #[error("no connection came before the deadline")]
    Timeout,
    /// The operating system failed (no listener at the address, the path exists, ...).
    #[error("connection failed: {0}")]
    Os(#[source] io::Error),
}

impl ConnectError {
    /// Whether no connection came by the deadline (`try_accept`, `accept_timeout`,
    /// `accept_deadline`).
    pub fn is_timeout(&self) -> bool {
        matches!(self, ConnectError::Timeout)
    }
}
