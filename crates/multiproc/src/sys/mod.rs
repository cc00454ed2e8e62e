//! The operating system. Every call into libc or rustix lives below this module; nothing above it has
//! a `cfg(target_os)`. One backend per system, with identical item names.
//!
//! Unsafe code is allowed here, in [`crate::shm`] and in the raw synchronization states only; every
//! block says why it is sound.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(not(target_os = "linux"))]
compile_error!("multiproc supports Linux only for now (see DESIGN.md, layer `sys`)");

pub(crate) mod image;
