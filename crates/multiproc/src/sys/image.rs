//! Functions named by their place in the executable image, so that a child process running the same
//! image can call a function its parent chose.
//!
//! # Implementation notes
//!
//! A position-independent executable is loaded at a random base, the same for all its code, so the
//! distance between two functions of one image is the same in every process running it. A function
//! travels as its distance from [`anchor`]. The child is an exec of `/proc/self/exe` or a fork, so it
//! runs the very same image; [`ImageFn::probe`] adds a cheap check of that on arrival.

use serde::{Deserialize, Serialize};

#[inline(never)]
fn anchor() -> u64 {
    std::hint::black_box(0x6d75_6c74_6970_726f)
}

#[inline(never)]
fn probe_target() -> u64 {
    std::hint::black_box(0x7072_6f62_6500_0001)
}

fn anchor_address() -> usize {
    anchor as fn() -> u64 as usize
}

/// A function of this image, as its offset from the anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ImageFn(i64);

impl ImageFn {
    /// Names the function at `address` (a `fn` pointer cast to `usize`).
    pub(crate) fn of(address: usize) -> ImageFn {
        ImageFn(address.wrapping_sub(anchor_address()) as i64)
    }

    /// A fixed function of this crate: equal in two processes only if they run the same image.
    pub(crate) fn probe() -> ImageFn {
        ImageFn::of(probe_target as fn() -> u64 as usize)
    }

    /// The function pointer back, in this process.
    ///
    /// # Safety
    ///
    /// `self` must come from [`ImageFn::of`] applied to a function pointer of type `F`, in a process
    /// running this same executable image (an ancestor that exec'd `/proc/self/exe`, or forked).
    pub(crate) unsafe fn resolve<F: Copy>(self) -> F {
        assert_eq!(
            size_of::<F>(),
            size_of::<usize>(),
            "F must be a function pointer"
        );
        let address = anchor_address().wrapping_add(self.0 as usize);
        // SAFETY: per this function's contract, `address` is the address of a function of type `F`
        // in this image, and `F` is a function pointer type of the size of `usize`.
        unsafe { std::mem::transmute_copy::<usize, F>(&address) }
    }
}

/// A call `call(f, input)` that a child process can make: `f: fn(A) -> R` is the user's function and
/// `call`, generic over `A` and `R`, knows how to feed it an `I` and make an `O` of its result. The
/// entry itself only names `I` and `O`, so a child can run it without knowing `A` and `R`.
///
/// The invariant that makes [`invoke`](Self::invoke) sound: every entry point is made by
/// [`EntryPoint::new`], in this process or in one running this same executable image that sent it
/// here. The type is crate-private, and it is deserialized in two places only, both fed by the
/// parent of the process that reads them, which is an exec of the parent's `/proc/self/exe` or its
/// fork: the bootstrap channel (a task, or a manager's registered types as its arguments), which
/// only the parent holds; and a pool worker's task queue, which only the pool's driver in the
/// parent writes. Nothing from a manager's clients or a user's messages becomes an entry point.
#[derive(Debug, Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) struct EntryPoint<I, O> {
    shim: ImageFn,
    call: ImageFn,
    function: ImageFn,
    probe: ImageFn,
    _types: std::marker::PhantomData<fn(I) -> O>,
}

impl<I, O> Clone for EntryPoint<I, O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I, O> Copy for EntryPoint<I, O> {}

/// The entry was made by a process running another executable image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ImageMismatch;

impl<I, O> EntryPoint<I, O> {
    pub(crate) fn new<A, R>(function: fn(A) -> R, call: Call<A, R, I, O>) -> Self {
        EntryPoint {
            shim: ImageFn::of(shim::<A, R, I, O> as fn(ImageFn, ImageFn, I) -> O as usize),
            call: ImageFn::of(call as usize),
            function: ImageFn::of(function as usize),
            probe: ImageFn::probe(),
            _types: std::marker::PhantomData,
        }
    }

    /// Runs `call(function, input)` in this process; [`ImageMismatch`] if the entry was made by
    /// another executable image.
    pub(crate) fn invoke(self, input: I) -> Result<O, ImageMismatch> {
        if self.probe != ImageFn::probe() {
            return Err(ImageMismatch);
        }
        // SAFETY: by the type's invariant, `self` was made by `EntryPoint::new` in this image, so
        // `shim` comes from `shim::<A, R, I, O>`, whose type is exactly the one resolved here (the
        // probe check catches a process of another image; the invariant rules out a forged entry).
        let shim: fn(ImageFn, ImageFn, I) -> O = unsafe { self.shim.resolve() };
        Ok(shim(self.call, self.function, input))
    }
}

/// What `EntryPoint::new` is given to run the user's function.
type Call<A, R, I, O> = fn(fn(A) -> R, I) -> O;

fn shim<A, R, I, O>(call: ImageFn, function: ImageFn, input: I) -> O {
    // SAFETY: `EntryPoint::new::<A, R>` made `call` from a `fn(fn(A) -> R, I) -> O` and `function`
    // from a `fn(A) -> R`, in this same image (the contract of `EntryPoint::invoke`, our only caller).
    let call: Call<A, R, I, O> = unsafe { call.resolve() };
    // SAFETY: as above.
    let function: fn(A) -> R = unsafe { function.resolve() };
    call(function, input)
}
