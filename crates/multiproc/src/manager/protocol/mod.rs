//! The manager protocol, written once for the client and the server: frames (`frame`), the
//! MessagePack messages inside them and the scan that guards their decoding (`wire`), how Rust
//! values become MessagePack values (`value`), and the
//! operations and kinds of objects (`op`). `docs/manager-protocol.md` describes it for clients in
//! other languages.

pub(crate) mod frame;
pub(crate) mod op;
pub(crate) mod value;
pub(crate) mod wire;

pub use frame::DEFAULT_MAX_FRAME;
pub(crate) use op::{Kind, Op};
