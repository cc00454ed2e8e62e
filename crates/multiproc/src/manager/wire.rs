//! The messages of the manager protocol, as MessagePack: a request is the array
//! `[id, op, object, args]`, a response `[id, {"Ok": value}]` or `[id, {"Err": [code, message]}]`.
//! Values are plain MessagePack values, so the server computes on them without knowing Rust types.

use rmpv::Value;
use serde::{Deserialize, Serialize};

/// Nesting deeper than this in a request is refused (no stack overflow on a hostile payload).
pub(crate) const MAX_DEPTH: usize = 64;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    /// Echoed in the response, so requests can be pipelined.
    pub(crate) id: u64,
    pub(crate) op: String,
    /// The object the operation applies to (0 for the manager itself).
    pub(crate) object: u64,
    pub(crate) args: Vec<Value>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Response {
    pub(crate) id: u64,
    pub(crate) result: Result<Value, WireError>,
}

/// An error the server reports: a fixed code and a human message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WireError {
    pub(crate) code: String,
    pub(crate) message: String,
}

impl WireError {
    pub(crate) fn new(code: &str, message: impl Into<String>) -> WireError {
        WireError {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// The depth of `value`'s nesting.
pub(crate) fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| depth(k).max(depth(v)))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

/// Decodes a request, refusing nesting deeper than [`MAX_DEPTH`] before it is built.
pub(crate) fn decode_request(payload: &[u8]) -> Result<Request, WireError> {
    // rmpv reads with its own depth limit; the check below is ours.
    let value = rmpv::decode::read_value_with_max_depth(&mut &payload[..], MAX_DEPTH + 4)
        .map_err(|e| WireError::new("DecodeError", e.to_string()))?;
    if depth(&value) > MAX_DEPTH + 2 {
        return Err(WireError::new("DecodeError", "nesting too deep"));
    }
    rmpv::ext::from_value(value).map_err(|e| WireError::new("DecodeError", e.to_string()))
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec(value).expect("encoding a response does not fail")
}
