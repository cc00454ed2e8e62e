//! What can go wrong with shared memory.

use std::io;

/// Why a segment could not be created or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShmError {
    /// The memory filesystem is full, or a limit forbids the size.
    #[error("no space left for a shared memory segment of {requested} bytes")]
    OutOfSpace {
        /// The size that was asked for, in bytes.
        requested: usize,
    },
    /// The descriptor is not a multiproc segment (bad magic, unsealed, too short).
    #[error("not a multiproc shared memory segment: {reason}")]
    NotASegment {
        /// What was wrong.
        reason: &'static str,
    },
    /// The segment was made by a multiproc whose memory layout differs from this one.
    #[error("shared memory layout version {found}, this build uses {expected}")]
    VersionMismatch {
        /// The version found in the segment.
        found: u32,
        /// The version this build writes.
        expected: u32,
    },
    /// The creator has not finished initializing the segment.
    #[error("the shared memory segment is not initialized yet")]
    NotYetInitialized,
    /// An access past the end.
    #[error("{len} bytes at offset {offset} do not fit in a segment of {size} bytes")]
    OutOfBounds {
        /// Start of the access.
        offset: usize,
        /// Length of the access.
        len: usize,
        /// The segment's size.
        size: usize,
    },
    /// The operating system refused.
    #[error("shared memory: {0}")]
    Os(#[from] io::Error),
}
