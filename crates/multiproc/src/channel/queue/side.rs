//! A queue's side channel: items too large for the ring, or carrying descriptors, travel as
//! datagrams on a `SOCK_SEQPACKET` pair held by every handle, their bodies spilled into sealed
//! memory files. The ring gets a side record with the datagram's tag, so ring order stays queue
//! order.
//!
//! A side item is put under the put lock in three steps: take a tag (committed at once), send the
//! datagram, commit the record. A getter, under the get lock, commits the record's removal, then
//! receives datagrams, dropping any with a smaller tag, until it gets its own. A datagram whose
//! putter or getter died between those steps is an orphan with a tag smaller than every later
//! record's, dropped by the next side get.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::sys;
use crate::transfer::{self, packet};

/// Bytes of large items a queue holds at most (items above the ring's limit, spilled to memory
/// files). One item alone may exceed it: a queue always takes one.
pub const SIDE_BYTES_MAX: u64 = 64 << 20;

/// Side-channel items in flight at most, far below what the socket's buffer holds, so that
/// sending one never waits (it is done under the queue's lock).
pub(crate) const SIDE_ITEMS_MAX: u64 = 64;

/// Side datagrams carry at most this much body inline; more goes to a memory file.
const INLINE_MAX: usize = 512;

/// Both ends of the side channel, in every handle of the queue.
#[derive(Clone)]
pub(crate) struct SideChannel {
    put_end: Arc<OwnedFd>,
    get_end: Arc<OwnedFd>,
}

impl SideChannel {
    pub(crate) fn new() -> io::Result<SideChannel> {
        let (put_end, get_end) = sys::seqpacket_pair()?;
        Ok(SideChannel {
            put_end: Arc::new(put_end),
            get_end: Arc::new(get_end),
        })
    }

    /// Prepares an item's datagram: the slow part (copying a large body into its file), done
    /// before the queue's lock is taken.
    pub(crate) fn prepare<'a>(
        bytes: &'a [u8],
        fds: &'a [OwnedFd],
    ) -> io::Result<packet::Outgoing<'a>> {
        packet::Outgoing::new(bytes, fds, INLINE_MAX)
    }

    /// Sends `datagram` tagged `tag` (under the put lock: it never waits, see [`SIDE_ITEMS_MAX`]).
    pub(crate) fn send(&self, datagram: &packet::Outgoing<'_>, tag: u64) -> io::Result<()> {
        datagram
            .send(self.put_end.as_fd(), tag, true)
            .map_err(|e| io::Error::new(e.kind(), format!("side channel: {e}")))
    }

    /// Receives the datagram tagged `tag`, dropping orphans (smaller tags) before it. Its putter
    /// sent it before committing its record, so it is already there; anything else is damage,
    /// given as what is damaged.
    pub(crate) fn receive(&self, tag: u64) -> Result<transfer::Message, Received> {
        let datagram = loop {
            match packet::recv_datagram(self.get_end.as_fd(), true).map_err(Received::Os)? {
                packet::Incoming::Datagram(d) if d.tag < tag => continue,
                packet::Incoming::Datagram(d) if d.tag == tag => break d,
                _ => return Err(Received::Damaged("the side channel lost an item")),
            }
        };
        // The body is read from its file after the lock is released.
        match datagram.open(usize::MAX).map_err(Received::Os)? {
            packet::Recv::Message(message) => Ok(message),
            _ => Err(Received::Damaged("a side datagram")),
        }
    }
}

/// Why a side item was not received.
pub(crate) enum Received {
    /// The operating system failed.
    Os(io::Error),
    /// The channel does not hold what the ring says.
    Damaged(&'static str),
}

/// The form the channel travels in: its two ends.
#[derive(Serialize)]
pub(crate) struct WireOut<'a> {
    #[serde(serialize_with = "transfer::serialize_owned_fd")]
    put_end: &'a OwnedFd,
    #[serde(serialize_with = "transfer::serialize_owned_fd")]
    get_end: &'a OwnedFd,
}

#[derive(Deserialize)]
pub(crate) struct WireIn {
    #[serde(deserialize_with = "transfer::deserialize_fd")]
    put_end: OwnedFd,
    #[serde(deserialize_with = "transfer::deserialize_fd")]
    get_end: OwnedFd,
}

impl SideChannel {
    pub(crate) fn wire(&self) -> WireOut<'_> {
        WireOut {
            put_end: &self.put_end,
            get_end: &self.get_end,
        }
    }

    pub(crate) fn from_wire(wire: WireIn) -> SideChannel {
        SideChannel {
            put_end: Arc::new(wire.put_end),
            get_end: Arc::new(wire.get_end),
        }
    }
}
