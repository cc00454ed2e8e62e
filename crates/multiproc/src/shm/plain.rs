//! [`ShmSafe`]: plain data that may live in shared memory.

/// Plain data that may live in memory shared between processes: [`Value`](crate::Value) and
/// [`Array`](crate::Array) hold these.
///
/// Implemented for the integers, the floats and arrays of them. Implement it for your own
/// `#[repr(C)]` struct of such fields:
///
/// ```
/// #[derive(Clone, Copy, Debug, Default, PartialEq)]
/// #[repr(C)]
/// struct Point {
///     x: f64,
///     y: f64,
///     visible: u8, // not bool: see below
/// }
///
/// // SAFETY: repr(C), only plain numbers (any bit pattern is one), no pointer, reference,
/// // descriptor or destructor.
/// unsafe impl multiproc::ShmSafe for Point {}
/// ```
///
/// Memory shared with other processes can hold bytes no single write made: a process killed in
/// the middle of a write leaves half of the new value over half of the old one (the next taker of
/// the lock sees it, with [`AcquireError::OwnerDied`](crate::AcquireError::OwnerDied)), and a lock
/// that is not recoverable leaves reads and writes unlocked. So every bit pattern must be a valid
/// value. `bool` and `char` are not ShmSafe, for that reason: a torn `char` can be a surrogate, and
/// a `bool` other than 0 or 1 is undefined behaviour. Store a `u8` or a `u32` and convert.
///
/// ```compile_fail
/// let letter = multiproc::Value::new('x'); // char: not ShmSafe
/// ```
///
/// # Safety
///
/// The type must be `#[repr(C)]` (or a primitive) and hold no pointer, reference, file descriptor,
/// or anything else whose meaning is local to one process, so that its bytes mean the same in every
/// process of the program. It must need no destructor (`Copy` ensures it). Every bit pattern of
/// its size must be a valid value (all zeros included: [`Array::new`](crate::Array::new) starts
/// zeroed), as for integers and floats; its padding bytes, if any, may hold anything.
pub unsafe trait ShmSafe: Copy + Send + Sync + 'static {}

macro_rules! shm_safe {
    ($($t:ty),*) => { $(
        // SAFETY: a primitive of plain bits, the same in every process; every bit pattern is a
        // value (NaN payloads too, for floats).
        unsafe impl ShmSafe for $t {}
    )* };
}

shm_safe!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, f32, f64);

// SAFETY: an array of plain data is plain data, laid out contiguously, without padding; any bit
// pattern is one of each element.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {}

mod sealed {
    pub trait Sealed {}
}

/// The integers that shared memory can change atomically, without a lock
/// ([`Value::fetch_add`](crate::Value::fetch_add), [`Value::compare_exchange`](crate::Value::compare_exchange)).
pub trait AtomicInteger: ShmSafe + sealed::Sealed + Eq {
    /// The matching `std::sync::atomic` type.
    #[doc(hidden)]
    type Atomic: Send + Sync;
    #[doc(hidden)]
    fn fetch_add(atomic: &Self::Atomic, delta: Self) -> Self;
    #[doc(hidden)]
    fn compare_exchange(atomic: &Self::Atomic, current: Self, new: Self) -> Result<Self, Self>;
    #[doc(hidden)]
    fn load(atomic: &Self::Atomic) -> Self;
    #[doc(hidden)]
    fn store(atomic: &Self::Atomic, value: Self);
}

macro_rules! atomic_integer {
    ($($t:ty => $atomic:ty),*) => { $(
        impl sealed::Sealed for $t {}
        impl AtomicInteger for $t {
            type Atomic = $atomic;
            fn fetch_add(atomic: &$atomic, delta: $t) -> $t {
                atomic.fetch_add(delta, std::sync::atomic::Ordering::SeqCst)
            }
            fn compare_exchange(atomic: &$atomic, current: $t, new: $t) -> Result<$t, $t> {
                use std::sync::atomic::Ordering::SeqCst;
                atomic.compare_exchange(current, new, SeqCst, SeqCst)
            }
            fn load(atomic: &$atomic) -> $t {
                atomic.load(std::sync::atomic::Ordering::SeqCst)
            }
            fn store(atomic: &$atomic, value: $t) {
                atomic.store(value, std::sync::atomic::Ordering::SeqCst)
            }
        }
        const _: () = assert!(size_of::<$t>() == size_of::<$atomic>() && align_of::<$t>() == align_of::<$atomic>());
    )* };
}

atomic_integer!(
    i8 => std::sync::atomic::AtomicI8, i16 => std::sync::atomic::AtomicI16,
    i32 => std::sync::atomic::AtomicI32, i64 => std::sync::atomic::AtomicI64,
    isize => std::sync::atomic::AtomicIsize, u8 => std::sync::atomic::AtomicU8,
    u16 => std::sync::atomic::AtomicU16, u32 => std::sync::atomic::AtomicU32,
    u64 => std::sync::atomic::AtomicU64, usize => std::sync::atomic::AtomicUsize
);

// SAFETY: zero-sized: the same (nothing) in every process.
unsafe impl ShmSafe for () {}
