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
    /// Another process shrank the file of this named segment: the bytes of the access are no
    /// longer there. Nothing was read; a write may have landed up to the missing part. (Anonymous
    /// segments are sealed and cannot shrink.)
    #[error(
        "{len} bytes at offset {offset}: another process shrank the named segment from {size} to {now} bytes"
    )]
    Shrunk {
        /// Start of the access.
        offset: usize,
        /// Length of the access.
        len: usize,
        /// The segment's size, as created.
        size: usize,
        /// The bytes its file holds now.
        now: u64,
    },
    /// A write to a named segment created with
    /// [`create_named_lazy`](crate::SharedMemory::create_named_lazy) needed a page of memory the
    /// first time, and the memory filesystem had none left. The bytes before that page may have
    /// been written; nothing crashed, and the segment works on where its pages exist.
    #[error(
        "{len} bytes at offset {offset}: no memory was left for the pages of the named segment (created lazily)"
    )]
    NoSpaceToWrite {
        /// Start of the access.
        offset: usize,
        /// Length of the access.
        len: usize,
    },
    /// A named segment of this name exists and has a live owner.
    #[error("a shared memory segment named {name:?} already exists")]
    AlreadyExists {
        /// The name.
        name: String,
    },
    /// No named segment of this name.
    #[error("no shared memory segment named {name:?}")]
    NotFound {
        /// The name.
        name: String,
    },
    /// The name exists but is not ours to use: another user's file, or one open to other users.
    #[error("shared memory segment {name:?} refused: {reason}")]
    PermissionDenied {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Names are 1 to 200 characters of `[A-Za-z0-9._-]`.
    #[error("invalid shared memory name {name:?}: use 1 to 200 characters of A-Z a-z 0-9 . _ -")]
    InvalidName {
        /// The name.
        name: String,
    },
    /// An argument no such object can have: a barrier of no parties, a bounded queue of no items.
    /// Python raises `ValueError`.
    #[error("invalid argument: {reason}")]
    #[doc(alias = "ValueError")]
    InvalidArgument {
        /// What was wrong.
        reason: &'static str,
    },
    /// The operating system refused.
    #[error("shared memory: {0}")]
    Os(#[from] io::Error),
}
