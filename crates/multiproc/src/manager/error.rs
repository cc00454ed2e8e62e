//! What can go wrong talking to a manager.

use std::fmt;

use crate::channel::{ConnectError, TasksLost};

/// A manager operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// The manager is gone (its process died, or the connection broke): every call says so at
    /// once, none hangs. Python: `BrokenPipeError`, `EOFError`, `ConnectionRefusedError`.
    #[error("the manager is gone: {reason}")]
    #[doc(alias = "ManagerGone")]
    Gone {
        /// What was seen.
        reason: String,
    },
    /// The deadline of a `try_`, `_timeout` or `_deadline` form came first: the lock stayed
    /// held, no permit, notification or change came, the barrier's parties did not all arrive,
    /// the items were not all done. Nothing was taken.
    #[error("the manager's wait ended at its deadline")]
    Timeout,
    /// A bounded queue stayed full until the deadline: nothing was put. Python: `queue.Full`.
    #[error("the manager's queue stayed full until the deadline")]
    Full,
    /// No item came before the deadline. Python: `queue.Empty`.
    #[error("the manager's queue stayed empty until the deadline")]
    Empty,
    /// A joinable queue's `join` ended with items lost: processes took them and ended (their
    /// connections did) before declaring them done. As for the shared-memory `JoinableQueue`.
    #[error(transparent)]
    TasksLost(#[from] TasksLost),
    /// The server refused the operation (Python raises the same condition as `KeyError`,
    /// `IndexError`, `RemoteError`, ...).
    #[error("the manager refused: {code}: {message}")]
    Remote {
        /// What kind of refusal.
        code: ErrorCode,
        /// What the server said.
        message: String,
    },
    /// The request is over the frame cap (64 MiB): it was not sent, and the connection is fine.
    /// An answer over the cap comes as [`ManagerError::Remote`] with code
    /// [`ErrorCode::FrameTooLarge`] ([`is_frame_too_large`](Self::is_frame_too_large) tells
    /// either).
    #[error("a request of {len} bytes is over the limit of {max}; it was not sent")]
    FrameTooLarge {
        /// The request's size, in bytes.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The other side has a different key ([`ConnectError::AuthFailed`]), or the address was
    /// refused ([`ConnectError::NotLoopback`]). Python: `AuthenticationError`.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A value did not convert to or from the protocol's values.
    #[error("a value did not convert: {0}")]
    Value(String),
    /// The server said something this client does not understand.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The proxy was inherited through `fork` (a copy of the parent's memory): its connection is
    /// the parent's, and using it would mix the two processes' requests on one socket. Send the
    /// proxy to the child instead (a [`Process`](crate::Process) argument, a queue item, a pipe
    /// message): it then connects on its own.
    #[error(
        "this proxy's connection belongs to process {owner}, and this is process {this}: a proxy \
         inherited through fork is not used; send it to the child as an argument or a message"
    )]
    InheritedThroughFork {
        /// The process whose connection it is.
        owner: u32,
        /// This process.
        this: u32,
    },
    /// The server process could not be started.
    #[error("the manager could not start: {0}")]
    Start(String),
    /// A wait given up at the caller's request ([`Token::call_interruptible`]): nothing was
    /// taken for it (its connection was closed before the server took anything). Python:
    /// `KeyboardInterrupt`, when Ctrl-C asked.
    ///
    /// [`Token::call_interruptible`]: crate::Token::call_interruptible
    #[error("the wait was interrupted; nothing was taken")]
    Interrupted,
    /// The operating system failed.
    #[error("manager: {0}")]
    Os(#[source] std::io::Error),
}

impl ManagerError {
    /// The server's error code, for a [`Remote`](Self::Remote) refusal.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            ManagerError::Remote { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the manager is gone ([`Gone`](Self::Gone)).
    pub fn is_gone(&self) -> bool {
        matches!(self, ManagerError::Gone { .. })
    }

    /// Whether a wait ended at its deadline: [`Timeout`](Self::Timeout), [`Full`](Self::Full) or
    /// [`Empty`](Self::Empty), the "not ready" of every waiting family.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            ManagerError::Timeout | ManagerError::Full | ManagerError::Empty
        )
    }

    /// Whether a request or its answer was over the frame cap: [`FrameTooLarge`](Self::FrameTooLarge),
    /// or the server's [`ErrorCode::FrameTooLarge`].
    pub fn is_frame_too_large(&self) -> bool {
        matches!(self, ManagerError::FrameTooLarge { .. })
            || self.code() == Some(&ErrorCode::FrameTooLarge)
    }

    /// Whether a bounded queue stayed full ([`Full`](Self::Full)).
    pub fn is_full(&self) -> bool {
        matches!(self, ManagerError::Full)
    }

    /// Whether no item came ([`Empty`](Self::Empty)).
    pub fn is_empty(&self) -> bool {
        matches!(self, ManagerError::Empty)
    }
}

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// The error codes of the manager protocol (`docs/manager-protocol.md`).
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$doc])* $name,)*
            /// A code this client does not know (a newer server).
            Other(String),
        }

        impl ErrorCode {
            /// The code as it travels.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ErrorCode::$name => stringify!($name),)*
                    ErrorCode::Other(code) => code,
                }
            }

            /// The code that travels as `code`.
            pub fn parse(code: &str) -> ErrorCode {
                match code {
                    $(stringify!($name) => ErrorCode::$name,)*
                    other => ErrorCode::Other(other.to_owned()),
                }
            }
        }
    };
}

error_codes! {
    /// The request did not decode (malformed, too many values, an extension type); that call
    /// fails, the connection goes on.
    DecodeError,
    /// A frame over the size limit. For a request, the connection closes; an answer over the
    /// limit is replaced by this error, for that call only.
    FrameTooLarge,
    /// No object has this id (it never existed, or it was freed: nothing held it any more).
    UnknownObject,
    /// The object has no such operation.
    NotExposed,
    /// Missing or mistyped arguments.
    BadArguments,
    /// The key is absent. Python: `KeyError` (and `AttributeError` for a namespace).
    KeyMissing,
    /// The value has the wrong type for the operation (adding to text, a dict where a list was
    /// asked for). Python: `TypeError`.
    TypeError,
    /// An addition overflowed a 64-bit integer.
    Overflow,
    /// An index past the end. Python: `IndexError`.
    IndexOutOfRange,
    /// The item is not in the list (`remove_item`). Python: `ValueError`.
    ItemMissing,
    /// A user type's method returned an error.
    MethodFailed,
    /// A user type's method panicked (the object is unchanged, and the server goes on).
    Panicked,
    /// Releasing (or waiting on) a lock this connection does not hold. Python: `RuntimeError`.
    NotOwner,
    /// Acquiring a (non-recursive) lock this connection already holds; calling a user object
    /// from inside its own method, or from a method that another method of it waits for.
    WouldDeadlock,
    /// A bounded semaphore released more times than acquired. Python: `ValueError`.
    TooManyReleases,
    /// `task_done` called more times than items were put. Python: `ValueError`.
    TooManyTaskDone,
    /// The barrier was broken (aborted, reset, a waiter timed out or died). Python:
    /// `BrokenBarrierError`.
    BrokenBarrier,
    /// A value in the request nested deeper than 64 levels, or containers nested deeper than
    /// the server allows (32 levels of `dict_in`/`list_in`).
    NestingTooDeep,
    /// The object was created by name as another kind.
    WrongKind,
    /// The queue was closed: a put is refused, a get finds it empty. Python: `ValueError`.
    Closed,
    /// A connection over a limit: the server's (1024 connections in all), or a client's (256
    /// connections, each a call that waits at once). The message says which; the connection
    /// closes, the others go on.
    TooManyConnections,
    /// The client speaks a version of the protocol this server does not (`hello`).
    VersionMismatch,
    /// The store is out of memory (Redis at its `maxmemory`): the operation wrote nothing.
    OutOfMemory,
    /// A lock's lease lapsed before its holder released it (the Redis backend: its process did
    /// not renew it in time, stopped or cut off); another may hold the lock since.
    LeaseExpired,
    /// A request fenced with a lock's fencing token older than one the object has seen: a later
    /// holder of the lock wrote since, and this one's write is refused (it may not know it lost
    /// the lock). Nothing was changed.
    StaleFence,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn codes_travel_as_their_names() {
        for code in [ErrorCode::KeyMissing, ErrorCode::BrokenBarrier] {
            assert_eq!(ErrorCode::parse(code.as_str()), code);
        }
        assert_eq!(ErrorCode::KeyMissing.as_str(), "KeyMissing");
        assert_eq!(
            ErrorCode::parse("FromTheFuture"),
            ErrorCode::Other("FromTheFuture".into())
        );
    }
}
