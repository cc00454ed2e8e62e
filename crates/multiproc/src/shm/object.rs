//! [`Object`]: a segment seen as one shared state, optionally followed by an array of plain values.

use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use super::{Backing, Kind, Segment, ShmError, ShmSafe};

/// A state that lives in shared memory and is used through `&Self` from several processes at once.
///
/// # Safety
///
/// `#[repr(C)]`, no pointer or descriptor, alignment at most 64; every field that changes after
/// creation is an atomic; an all-zero or any value written by [`Object::create`] is valid.
pub(crate) unsafe trait SharedState: Sync + Send + 'static {
    const KIND: Kind;
}

/// A segment holding an `S` at offset 0, then `len` values of `E` (none for `E = ()`).
pub(crate) struct Object<S, E = ()> {
    segment: Arc<Segment>,
    len: usize,
    _types: PhantomData<(S, E)>,
}

impl<S, E> Clone for Object<S, E> {
    fn clone(&self) -> Self {
        Object {
            segment: self.segment.clone(),
            len: self.len,
            _types: PhantomData,
        }
    }
}

const MAX_ALIGN: usize = 64;

impl<S: SharedState, E: ShmSafe> Object<S, E> {
    fn values_offset() -> usize {
        size_of::<S>().next_multiple_of(align_of::<E>())
    }

    fn size_for(len: usize) -> Option<usize> {
        Self::values_offset().checked_add(len.checked_mul(size_of::<E>())?)
    }

    /// Creates the object: `state`, then `values` (copied).
    pub(crate) fn create(state: S, values: &[E]) -> Result<Self, ShmError> {
        const { assert!(align_of::<S>() <= MAX_ALIGN && align_of::<E>() <= MAX_ALIGN) };
        let size = Self::size_for(values.len()).ok_or(ShmError::OutOfSpace {
            requested: usize::MAX,
        })?;
        let segment = Segment::create_anonymous_with(S::KIND, size, |base| {
            // SAFETY: `base` is the start of `size` fresh, writable bytes, aligned to 64 (segments are
            // page-aligned and the header is 64 bytes), which is enough for S and E; nothing else
            // can see them yet. S goes at 0, the values after it, within `size`.
            unsafe {
                base.cast::<S>().write(state);
                let first = base.add(Self::values_offset()).cast::<E>();
                std::ptr::copy_nonoverlapping(values.as_ptr(), first, values.len());
            }
        })?;
        Ok(Object {
            segment: Arc::new(segment),
            len: values.len(),
            _types: PhantomData,
        })
    }

    /// Creates the object: `state`, then `len` values whose bytes are all zero (valid for ShmSafe).
    pub(crate) fn create_zeroed(state: S, len: usize) -> Result<Self, ShmError> {
        let size = Self::size_for(len).ok_or(ShmError::OutOfSpace {
            requested: usize::MAX,
        })?;
        let segment = Segment::create_anonymous_with(S::KIND, size, |base| {
            // SAFETY: as in `create`; the values stay as the new memory file is, zero-filled.
            unsafe { base.cast::<S>().write(state) };
        })?;
        Ok(Object {
            segment: Arc::new(segment),
            len,
            _types: PhantomData,
        })
    }

    /// Opens an object received from another process, checking its kind and size.
    pub(crate) fn open(fd: OwnedFd) -> Result<Self, ShmError> {
        let segment = Segment::open_fd(fd, S::KIND, Backing::Anonymous)?;
        let values = segment.len().checked_sub(Self::values_offset());
        let len = match (values, size_of::<E>()) {
            (Some(0), _) => 0,
            (Some(_), 0) => {
                return Err(ShmError::NotASegment {
                    reason: "unexpected trailing bytes",
                });
            }
            (Some(bytes), size) if bytes % size == 0 => bytes / size,
            _ => {
                return Err(ShmError::NotASegment {
                    reason: "its size does not fit its kind",
                });
            }
        };
        Ok(Object {
            segment: Arc::new(segment),
            len,
            _types: PhantomData,
        })
    }

    /// The shared state.
    pub(crate) fn state(&self) -> &S {
        // SAFETY: the segment holds an initialized S at offset 0 (written by `create`, checked by
        // kind and size in `open`), aligned, living as long as `self`; S is Sync and changes only
        // through atomics, so shared references to it are sound in every process.
        unsafe { &*self.segment.as_ptr().cast::<S>() }
    }

    /// The values after the state: a raw pointer (other processes write them) and their count.
    pub(crate) fn values(&self) -> (*mut E, usize) {
        // SAFETY: `values_offset` is within the segment, which holds `len` values of E from there.
        let first = unsafe { self.segment.as_ptr().add(Self::values_offset()) };
        (first.cast::<E>(), self.len)
    }
}

impl<S, E> AsFd for Object<S, E> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.segment.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::raw::{RawEvent, RawMutex};

    #[test]
    fn an_object_opened_as_another_kind_is_refused() {
        let lock: Object<RawMutex> = Object::create(RawMutex::new(), &[]).unwrap();
        let fd = lock.as_fd().try_clone_to_owned().unwrap();
        let err = Object::<RawEvent>::open(fd)
            .err()
            .expect("a lock is not an event");
        assert!(matches!(err, ShmError::NotASegment { .. }), "{err}");
        let fd = lock.as_fd().try_clone_to_owned().unwrap();
        assert!(Object::<RawMutex>::open(fd).is_ok());
    }
}
