//! [`ShmSafe`]: plain data that may live in shared memory.

/// Plain data that may live in memory shared between processes: [`Value`](crate::Value) and
/// [`Array`](crate::Array) hold these.
///
/// Implemented for the integers, floats, `bool`, `char` and arrays of them. Implement it for your
/// own `#[repr(C)]` struct of such fields:
///
/// ```
/// #[derive(Clone, Copy, Debug, Default, PartialEq)]
/// #[repr(C)]
/// struct Point {
///     x: f64,
///     y: f64,
/// }
///
/// // SAFETY: repr(C), only plain numbers: no pointer, reference, descriptor or destructor.
/// unsafe impl multiproc::ShmSafe for Point {}
/// ```
///
/// # Safety
///
/// The type must be `#[repr(C)]` (or a primitive) and hold no pointer, reference, file descriptor,
/// or anything else whose meaning is local to one process, so that its bytes mean the same in every
/// process of the program. It must need no destructor (`Copy` ensures it). All-zero bytes must be a
/// valid value ([`Array::new`](crate::Array::new) starts zeroed).
pub unsafe trait ShmSafe: Copy + Send + Sync + 'static {}

macro_rules! shm_safe {
    ($($t:ty),*) => { $(
        // SAFETY: a primitive: plain bits, the same in every process.
        unsafe impl ShmSafe for $t {}
    )* };
}

shm_safe!(
    i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, f32, f64, bool, char
);

// SAFETY: an array of plain data is plain data, laid out contiguously.
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
