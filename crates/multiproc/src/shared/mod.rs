//! Shared data: memory that several processes read and write.

mod memory;

pub use memory::SharedMemory;
