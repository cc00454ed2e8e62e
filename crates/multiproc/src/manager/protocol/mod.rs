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

/// The version of the protocol, said in `hello` by the client and checked by the server. 2: the
/// lifetime rules (`hold`, `release`, `lend`) and references as values.
pub(crate) const VERSION: u64 = 2;
pub(crate) use op::{Kind, Op};
