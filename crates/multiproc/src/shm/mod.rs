//! Shared memory segments, and what may be placed in them.
//!
//! A segment is a sealed anonymous memory file with a header (magic, layout version, kind, size,
//! initialized flag). [`Object`] views a segment as one typed state (a lock's atomics, say) plus an
//! optional array of [`ShmSafe`] values after it.

mod error;
mod object;
mod plain;
mod segment;

pub use error::ShmError;
pub(crate) use object::{Object, SharedState};
pub use plain::{AtomicInteger, ShmSafe};
pub(crate) use segment::{Backing, Kind, Pages, Segment};
