//! The records of a queue's ring: what each holds and how it is laid out.
//!
//! A record is an 8-byte header (the payload's length in the low half, the record's kind in the
//! high half) and the payload, padded to 8 bytes. Positions count bytes since creation and are
//! taken modulo the ring's length, a multiple of 8, so a header never wraps (a payload may).
//!
//! - A ring record's payload is an item's encoded bytes.
//! - A side record's payload is the tag of the side channel's datagram that carries the item,
//!   and the bytes the item counts against the side budget (see `side`).

use crate::sync::raw::QueueGuard;

const KIND_RING: u32 = 1;
const KIND_SIDE: u32 = 2;

/// The length of a record's header.
const HEADER: u64 = 8;

/// A side record's payload: the tag, and the bytes counted.
const SIDE_PAYLOAD: usize = 16;

/// What a record at the head of the ring holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Record {
    /// An item in the ring: its encoded bytes were copied out.
    Ring,
    /// An item on the side channel.
    Side { tag: u64, counted: u64 },
}

/// The bytes a record with a payload of `len` bytes takes in the ring.
pub(crate) fn size(len: usize) -> u64 {
    HEADER + (len as u64).next_multiple_of(8)
}

/// The bytes a side record takes.
pub(crate) fn side_size() -> u64 {
    size(SIDE_PAYLOAD)
}

/// Writes a ring record holding `bytes` at `position` (free space, under the put lock); returns
/// its size.
pub(crate) fn write_ring(guard: &mut QueueGuard<'_>, position: u64, bytes: &[u8]) -> u64 {
    write_header(guard, position, KIND_RING, bytes.len());
    guard.write(position + HEADER, bytes);
    size(bytes.len())
}

/// Writes a side record for the datagram tagged `tag`, counting `counted` bytes, at `position`;
/// returns its size.
pub(crate) fn write_side(guard: &mut QueueGuard<'_>, position: u64, tag: u64, counted: u64) -> u64 {
    let mut payload = [0u8; SIDE_PAYLOAD];
    payload[..8].copy_from_slice(&tag.to_le_bytes());
    payload[8..].copy_from_slice(&counted.to_le_bytes());
    write_header(guard, position, KIND_SIDE, SIDE_PAYLOAD);
    guard.write(position + HEADER, &payload);
    side_size()
}

/// Reads the record at `position`, of which `used` bytes of the ring are committed (under the get
/// lock): a ring record's bytes land in `payload`. Returns the record and its size, or what is
/// damaged: a queue's memory that only its own code writes holds no such record, unless another
/// process of the same user wrote over it.
pub(crate) fn read(
    guard: &QueueGuard<'_>,
    position: u64,
    used: u64,
    payload: &mut Vec<u8>,
) -> Result<(Record, u64), &'static str> {
    let mut header = [0u8; HEADER as usize];
    guard.read(position, &mut header);
    let header = u64::from_le_bytes(header);
    let (kind, len) = ((header >> 32) as u32, (header & 0xffff_ffff) as usize);
    let size = size(len);
    if size > used {
        return Err("a record's header claims more than the ring holds");
    }
    match kind {
        KIND_RING => {
            payload.resize(len, 0);
            guard.read(position + HEADER, payload);
            Ok((Record::Ring, size))
        }
        KIND_SIDE if len == SIDE_PAYLOAD => {
            let mut side = [0u8; SIDE_PAYLOAD];
            guard.read(position + HEADER, &mut side);
            let tag = u64::from_le_bytes(side[..8].try_into().expect("8 bytes"));
            let counted = u64::from_le_bytes(side[8..].try_into().expect("8 bytes"));
            Ok((Record::Side { tag, counted }, size))
        }
        KIND_SIDE => Err("a side record of the wrong size"),
        _ => Err("a record of no known kind"),
    }
}

fn write_header(guard: &mut QueueGuard<'_>, position: u64, kind: u32, len: usize) {
    let header = (u64::from(kind) << 32) | len as u64;
    guard.write(position, &header.to_le_bytes());
}
