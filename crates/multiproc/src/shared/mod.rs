//! Shared data: memory that several processes read and write.

mod memory;
mod value;

pub use memory::SharedMemory;
pub use value::{Array, ArrayGuard, IndexOutOfRange, Value, ValueGuard};
