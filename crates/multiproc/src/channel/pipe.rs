//! [`pipe`]: two connected ends that carry typed messages (or raw bytes) between processes.
//!
//! # Implementation notes
//!
//! A Unix `SOCK_SEQPACKET` socket pair: one datagram per message, so a message arrives whole or not
//! at all, and several readers of one end each get whole messages. A message above 64 KiB travels
//! in a sealed memory file (see `transfer::packet`). Handles inside a message ride along with
//! `SCM_RIGHTS`. The receiver checks the size before it reads a body, so an oversized message costs
//! it nothing.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::stream::{self, Turns};
use super::{RecvError, RecvTimeoutError, SendError, SendTimeoutError};
use crate::EncodesAs;
use crate::deadline;
use crate::spin::Spinner;
use crate::sys;
use crate::transfer::{self, EncodeError, Message, packet};

/// The largest message a connection sends or receives unless told otherwise: 64 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 64 << 20;

/// One end of a [`pipe`]: sends and receives messages of type `T`. Clones, and copies passed to
/// other processes, are the same end. When every copy of the other end is gone (dropped, or its
/// process died), `recv` and `send` return `Disconnected`, never hang.
pub struct Connection<T> {
    socket: Arc<OwnedFd>,
    /// For a byte stream (TCP): how this end's readers and writers take turns. `None`: a packet
    /// socket, where every message is one datagram.
    stream: Option<Arc<Turns>>,
    /// Whether messages tend to come while a receive polls (shared by the clones).
    spinner: Arc<Spinner>,
    max_message: usize,
    _messages: PhantomData<fn(T) -> T>,
}

/// A duplex pipe: two connected ends. Python's `Pipe()`.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{Connection, Process, pipe};
///
/// let (here, there) = pipe::<String>()?;
/// let child = Process::spawn(there, |conn: Connection<String>| {
///     let request = conn.recv().unwrap();
///     conn.send(&request.to_uppercase()).unwrap();
/// })?;
/// here.send("hello")?;
/// assert_eq!(here.recv()?, "HELLO");
/// child.join()?;
/// assert!(here.recv().is_err()); // the child's end is gone: Disconnected
/// # Ok(())
/// # }
/// ```
#[doc(alias = "Pipe")]
pub fn pipe<T>() -> io::Result<(Connection<T>, Connection<T>)> {
    let (a, b) = sys::seqpacket_pair()?;
    Ok((Connection::new(a), Connection::new(b)))
}

/// Pipes with one direction.
#[derive(Debug)]
pub struct Pipe;

impl Pipe {
    /// A one-way pipe: what the [`Sender`] sends, the [`Receiver`] receives. Python's
    /// `Pipe(duplex=False)`, also `(reader, writer)`; using the wrong direction does not compile.
    pub fn one_way<T>() -> io::Result<(Receiver<T>, Sender<T>)> {
        let (a, b) = pipe()?;
        Ok((Receiver(a), Sender(b)))
    }
}

impl<T> Connection<T> {
    /// An end over a `SOCK_SEQPACKET` socket.
    pub(crate) fn new(socket: OwnedFd) -> Self {
        Connection {
            socket: Arc::new(socket),
            stream: None,
            spinner: Arc::new(Spinner::round_trips()),
            max_message: DEFAULT_MAX_MESSAGE,
            _messages: PhantomData,
        }
    }

    /// An end over a byte stream (TCP).
    pub(crate) fn over_stream(socket: OwnedFd) -> Self {
        Connection {
            stream: Some(Arc::default()),
            ..Connection::new(socket)
        }
    }

    /// The largest message this handle sends or receives, in bytes.
    pub fn max_message_size(&self) -> usize {
        self.max_message
    }

    /// Sets the largest message this handle sends or receives: a longer one is refused with
    /// `TooLarge` (on receipt, it is dropped unread).
    pub fn set_max_message_size(&mut self, max: usize) {
        self.max_message = max;
    }

    /// Sends raw bytes as one message, waiting as long as it takes for the other end to make room.
    /// Python's `send_bytes`.
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), SendError> {
        blocking(self.send_message(bytes, &[], None))
    }

    /// Sends raw bytes as one message if the connection takes it now
    /// ([`SendTimeoutError::Timeout`] if its buffer is full).
    pub fn try_send_bytes(&self, bytes: &[u8]) -> Result<(), SendTimeoutError> {
        self.send_message(bytes, &[], Some(Instant::now()))
    }

    /// Sends raw bytes as one message, waiting at most `timeout` for room (`Duration::MAX`: as
    /// long as it takes).
    pub fn send_bytes_timeout(
        &self,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<(), SendTimeoutError> {
        self.send_message(bytes, &[], deadline::after(timeout))
    }

    /// Sends raw bytes as one message, waiting until `deadline` for room.
    pub fn send_bytes_deadline(
        &self,
        bytes: &[u8],
        deadline: Instant,
    ) -> Result<(), SendTimeoutError> {
        self.send_message(bytes, &[], Some(deadline))
    }

    /// Receives one message as raw bytes, waiting as long as it takes. Python's `recv_bytes`.
    pub fn recv_bytes(&self) -> Result<Vec<u8>, RecvError> {
        Ok(self.recv_message_blocking()?.bytes)
    }

    /// Receives one message as raw bytes if one is there now ([`RecvTimeoutError::Timeout`] if
    /// not).
    pub fn try_recv_bytes(&self) -> Result<Vec<u8>, RecvTimeoutError> {
        Ok(self.recv_message(Some(Instant::now()))?.bytes)
    }

    /// Receives one message as raw bytes, waiting at most `timeout` (`Duration::MAX`: as long as
    /// it takes).
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
        Ok(self.recv_message(deadline::after(timeout))?.bytes)
    }

    /// Receives one message as raw bytes, waiting until `deadline`.
    pub fn recv_bytes_deadline(&self, deadline: Instant) -> Result<Vec<u8>, RecvTimeoutError> {
        Ok(self.recv_message(Some(deadline))?.bytes)
    }

    /// Whether a message (or the other end's closing) is waiting, waiting at most `timeout` for
    /// one. Python's `poll(timeout)`: a question, answered true or false; to wait for a message,
    /// use `recv_timeout`.
    pub fn poll(&self, timeout: Duration) -> io::Result<bool> {
        sys::wait_readable(self.socket.as_fd(), deadline::after(timeout))
    }

    /// Sends one message, waiting until `deadline` (`None`: as long as it takes) for the
    /// connection to take it. Over TCP the deadline bounds the wait for the message to begin:
    /// once begun, a message is sent whole.
    fn send_message(
        &self,
        bytes: &[u8],
        handles: &[OwnedFd],
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError> {
        if bytes.len() > self.max_message {
            return Err(SendError::TooLarge {
                len: bytes.len(),
                max: self.max_message,
            }
            .into());
        }
        if handles.len() > packet::MAX_HANDLES {
            let count = handles.len();
            return Err(SendError::from(EncodeError::new(format!(
                "{count} handles, more than a message carries"
            )))
            .into());
        }
        let socket = self.socket.as_fd();
        let room = |deadline| sys::wait_writable(socket, deadline).map_err(SendError::Os);
        let sent = match &self.stream {
            None if deadline.is_none() => {
                packet::send_parts(socket, bytes, handles, cpu_tag(), false)
            }
            None => {
                // Prepared once: a large body is copied to its file once, however many tries.
                let datagram = packet::Outgoing::new(bytes, handles, packet::INLINE_MAX)
                    .map_err(SendError::Os)?;
                loop {
                    match datagram.send(socket, cpu_tag(), true) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            if !room(deadline)? {
                                return Err(SendTimeoutError::Timeout);
                            }
                        }
                        sent => break sent,
                    }
                }
            }
            Some(_) if !handles.is_empty() => {
                return Err(SendError::from(EncodeError::new(
                    "handles (descriptors) cannot cross a network connection",
                ))
                .into());
            }
            Some(turns) => {
                let _turn = turns.write.lock().unwrap_or_else(|e| e.into_inner());
                if deadline.is_some() && !room(deadline)? {
                    return Err(SendTimeoutError::Timeout);
                }
                stream::send_frame(socket, bytes)
            }
        };
        sent.map_err(|e| {
            match e.kind() {
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
                    SendError::Disconnected
                }
                _ => SendError::Os(e),
            }
            .into()
        })
    }

    /// Receives one message, waiting as long as it takes.
    fn recv_message_blocking(&self) -> Result<Message, RecvError> {
        match self.recv_message(None) {
            Ok(message) => Ok(message),
            Err(RecvTimeoutError::Recv(e)) => Err(e),
            Err(RecvTimeoutError::Timeout) => unreachable!("no deadline"),
        }
    }

    fn recv_message(&self, deadline: Option<Instant>) -> Result<Message, RecvTimeoutError> {
        if let Some(turns) = &self.stream {
            return self.recv_frame(turns, deadline);
        }
        // Poll first while polling pays (see `crate::spin`): a reply usually comes within
        // microseconds, and sleeping until woken costs tens of them.
        let mut polled = None;
        self.spinner
            .spin(deadline, || match self.recv_packet(true) {
                Ok(packet::Recv::Empty) => false,
                received => {
                    polled = Some(received);
                    true
                }
            });
        if let Some(received) = polled {
            return self.received(received);
        }
        loop {
            if deadline.is_some()
                && !sys::wait_readable(self.socket.as_fd(), deadline).map_err(RecvError::Os)?
            {
                return Err(RecvTimeoutError::Timeout);
            }
            // With a deadline the socket was readable: another reader may have been faster, so
            // do not block, look again.
            match self.recv_packet(deadline.is_some()) {
                Ok(packet::Recv::Empty) => continue,
                received => return self.received(received),
            }
        }
    }

    /// Receives one datagram, and notes where its sender said it ran.
    fn recv_packet(&self, nonblocking: bool) -> io::Result<packet::Recv> {
        let (received, tag) =
            packet::recv_tagged(self.socket.as_fd(), nonblocking, self.max_message)?;
        if !matches!(received, packet::Recv::Empty) {
            self.spinner.peer_ran_on(tag_cpu(tag));
        }
        Ok(received)
    }

    /// Receives one message from a byte stream.
    fn recv_frame(
        &self,
        turns: &Turns,
        deadline: Option<Instant>,
    ) -> Result<Message, RecvTimeoutError> {
        let _turn = turns.read.lock().unwrap_or_else(|e| e.into_inner());
        let received = match stream::recv_frame(self.socket.as_fd(), self.max_message, deadline) {
            Ok(stream::Frame::Timeout) => return Err(RecvTimeoutError::Timeout),
            Ok(stream::Frame::Message(bytes)) => Ok(packet::Recv::Message(Message {
                bytes,
                fds: Vec::new(),
            })),
            Ok(stream::Frame::Closed) => Ok(packet::Recv::Closed),
            Ok(stream::Frame::TooLarge { len }) => Ok(packet::Recv::TooLarge { len }),
            Err(e) => Err(e),
        };
        self.received(received)
    }

    /// What a receive gave, as a message or this end's error.
    fn received(&self, received: io::Result<packet::Recv>) -> Result<Message, RecvTimeoutError> {
        match received {
            Ok(packet::Recv::Message(message)) => Ok(message),
            Ok(packet::Recv::Empty) => unreachable!("callers handle an empty socket"),
            Ok(packet::Recv::Closed) => Err(RecvError::Disconnected.into()),
            Ok(packet::Recv::TooLarge { len }) => Err(RecvError::TooLarge {
                len,
                max: self.max_message,
            }
            .into()),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                Err(RecvError::Disconnected.into())
            }
            Err(e) => Err(RecvError::Os(e).into()),
        }
    }
}

/// A datagram's tag: the CPU this thread runs on, plus one (0: unknown), for the other end to know
/// whether to poll for an answer ([`Spinner::peer_ran_on`]). Read without a system call.
fn cpu_tag() -> u64 {
    sys::current_cpu().map_or(0, |cpu| u64::from(cpu) + 1)
}

/// The CPU a datagram's tag says its sender ran on.
fn tag_cpu(tag: u64) -> Option<u32> {
    tag.checked_sub(1).and_then(|cpu| u32::try_from(cpu).ok())
}

impl<T: Serialize + DeserializeOwned> Connection<T> {
    /// Sends `value`, waiting as long as it takes for the other end to make room. It is
    /// serialized here: a value that does not serialize is [`SendError::Encode`] in the caller,
    /// and nothing is sent.
    pub fn send(&self, value: impl EncodesAs<T>) -> Result<(), SendError> {
        blocking(self.send_within(value.encoded(), None))
    }

    /// Sends `value` if the connection takes it now ([`SendTimeoutError::Timeout`] if its buffer
    /// is full: the other end reads too slowly).
    pub fn try_send(&self, value: impl EncodesAs<T>) -> Result<(), SendTimeoutError> {
        self.send_within(value.encoded(), Some(Instant::now()))
    }

    /// Sends `value`, waiting at most `timeout` for room (`Duration::MAX`: as long as it takes).
    pub fn send_timeout(
        &self,
        value: impl EncodesAs<T>,
        timeout: Duration,
    ) -> Result<(), SendTimeoutError> {
        self.send_within(value.encoded(), deadline::after(timeout))
    }

    /// Sends `value`, waiting until `deadline` for room.
    pub fn send_deadline(
        &self,
        value: impl EncodesAs<T>,
        deadline: Instant,
    ) -> Result<(), SendTimeoutError> {
        self.send_within(value.encoded(), Some(deadline))
    }

    pub(crate) fn send_within<I: Serialize + ?Sized>(
        &self,
        value: &I,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError> {
        let Message { bytes, fds } = transfer::encode(value).map_err(SendError::from)?;
        self.send_message(&bytes, &fds, deadline)
    }

    /// Receives one message, waiting as long as it takes.
    pub fn recv(&self) -> Result<T, RecvError> {
        Ok(transfer::decode(self.recv_message_blocking()?)?)
    }

    /// Receives one message if one is there now ([`RecvTimeoutError::Timeout`] if not).
    pub fn try_recv(&self) -> Result<T, RecvTimeoutError> {
        self.recv_within(Some(Instant::now()))
    }

    /// Receives one message, waiting at most `timeout` (`Duration::MAX`: as long as it takes).
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_within(deadline::after(timeout))
    }

    /// Receives one message, waiting until `deadline`.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_within(Some(deadline))
    }

    pub(crate) fn recv_within(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let message = self.recv_message(deadline)?;
        Ok(transfer::decode(message).map_err(RecvError::from)?)
    }
}

impl<T> Clone for Connection<T> {
    fn clone(&self) -> Self {
        Connection {
            socket: self.socket.clone(),
            stream: self.stream.clone(),
            spinner: self.spinner.clone(),
            max_message: self.max_message,
            _messages: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("max_message", &self.max_message)
            .finish_non_exhaustive()
    }
}

/// The form an end travels in: its descriptor and its limit.
#[derive(Serialize)]
struct WireOut<'a> {
    #[serde(serialize_with = "transfer::serialize_owned_fd")]
    socket: &'a OwnedFd,
    stream: bool,
    max_message: usize,
}

#[derive(Deserialize)]
struct WireIn {
    #[serde(deserialize_with = "transfer::deserialize_fd")]
    socket: OwnedFd,
    stream: bool,
    max_message: usize,
}

impl<T> Serialize for Connection<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireOut {
            socket: &self.socket,
            stream: self.stream.is_some(),
            max_message: self.max_message,
        }
        .serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Connection<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let WireIn {
            socket,
            stream,
            max_message,
        } = WireIn::deserialize(deserializer)?;
        Ok(Connection {
            socket: Arc::new(socket),
            stream: stream.then(Arc::default),
            spinner: Arc::new(Spinner::round_trips()),
            max_message,
            _messages: PhantomData,
        })
    }
}

/// The receiving end of a one-way pipe ([`Pipe::one_way`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent, bound = "")]
pub struct Receiver<T>(Connection<T>);

/// The sending end of a one-way pipe ([`Pipe::one_way`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent, bound = "")]
pub struct Sender<T>(Connection<T>);

impl<T: Serialize + DeserializeOwned> Receiver<T> {
    /// See [`Connection::recv`].
    pub fn recv(&self) -> Result<T, RecvError> {
        self.0.recv()
    }

    /// See [`Connection::try_recv`].
    pub fn try_recv(&self) -> Result<T, RecvTimeoutError> {
        self.0.try_recv()
    }

    /// See [`Connection::recv_timeout`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.0.recv_timeout(timeout)
    }

    /// See [`Connection::recv_deadline`].
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.0.recv_deadline(deadline)
    }
}

impl<T> Receiver<T> {
    /// See [`Connection::recv_bytes`].
    pub fn recv_bytes(&self) -> Result<Vec<u8>, RecvError> {
        self.0.recv_bytes()
    }

    /// See [`Connection::try_recv_bytes`].
    pub fn try_recv_bytes(&self) -> Result<Vec<u8>, RecvTimeoutError> {
        self.0.try_recv_bytes()
    }

    /// See [`Connection::recv_bytes_timeout`].
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
        self.0.recv_bytes_timeout(timeout)
    }

    /// See [`Connection::recv_bytes_deadline`].
    pub fn recv_bytes_deadline(&self, deadline: Instant) -> Result<Vec<u8>, RecvTimeoutError> {
        self.0.recv_bytes_deadline(deadline)
    }

    /// See [`Connection::poll`].
    pub fn poll(&self, timeout: Duration) -> io::Result<bool> {
        self.0.poll(timeout)
    }
}

impl<T: Serialize + DeserializeOwned> Sender<T> {
    /// See [`Connection::send`].
    pub fn send(&self, value: impl EncodesAs<T>) -> Result<(), SendError> {
        self.0.send(value)
    }

    /// See [`Connection::try_send`].
    pub fn try_send(&self, value: impl EncodesAs<T>) -> Result<(), SendTimeoutError> {
        self.0.try_send(value)
    }

    /// See [`Connection::send_timeout`].
    pub fn send_timeout(
        &self,
        value: impl EncodesAs<T>,
        timeout: Duration,
    ) -> Result<(), SendTimeoutError> {
        self.0.send_timeout(value, timeout)
    }

    /// See [`Connection::send_deadline`].
    pub fn send_deadline(
        &self,
        value: impl EncodesAs<T>,
        deadline: Instant,
    ) -> Result<(), SendTimeoutError> {
        self.0.send_deadline(value, deadline)
    }
}

impl<T> Sender<T> {
    /// See [`Connection::send_bytes`].
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), SendError> {
        self.0.send_bytes(bytes)
    }

    /// See [`Connection::try_send_bytes`].
    pub fn try_send_bytes(&self, bytes: &[u8]) -> Result<(), SendTimeoutError> {
        self.0.try_send_bytes(bytes)
    }

    /// See [`Connection::send_bytes_timeout`].
    pub fn send_bytes_timeout(
        &self,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<(), SendTimeoutError> {
        self.0.send_bytes_timeout(bytes, timeout)
    }

    /// See [`Connection::send_bytes_deadline`].
    pub fn send_bytes_deadline(
        &self,
        bytes: &[u8],
        deadline: Instant,
    ) -> Result<(), SendTimeoutError> {
        self.0.send_bytes_deadline(bytes, deadline)
    }
}

/// The outcome of a send without deadline.
fn blocking(sent: Result<(), SendTimeoutError>) -> Result<(), SendError> {
    sent.map_err(|e| match e {
        SendTimeoutError::Send(e) => e,
        SendTimeoutError::Timeout => unreachable!("a send without deadline"),
    })
}
