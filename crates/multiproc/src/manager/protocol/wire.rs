//! The messages of the manager protocol, as MessagePack: a request is the array
//! `[id, op, object, args]`, or `[id, op, object, args, context]` with a map of who asks
//! ([`Context`]: the owner of what the request takes, the call chain of a hosted method, the
//! client's CPU on a busy machine), a
//! response `[id, {"Ok": value}]` or `[id, {"Err": [code, message]}]`.
//! Values are plain MessagePack values, so the server computes on them without knowing Rust types.
//!
//! A request is scanned before it is decoded ([`scan`]): the scan allocates nothing, and refuses
//! nesting deeper than [`MAX_DEPTH`], more than [`MAX_VALUES`] values, lengths that run past the
//! frame, and extension types other than a stored proxy's reference (type 2, 8 bytes: the server's
//! own nested slots, type 1, never come from a client).

use rmpv::Value;
use serde::{Deserialize, Serialize};

use super::super::ErrorCode;
use super::frame::Frame;

/// Nesting deeper than this in a request is refused (no stack overflow on a hostile payload).
pub(crate) const MAX_DEPTH: usize = 64;

/// Values in one request, at most: each costs the server tens of bytes once decoded, so a frame
/// of one-byte values could otherwise cost thirty times its size.
pub(crate) const MAX_VALUES: usize = 1 << 22;

#[derive(Debug, Serialize)]
pub(crate) struct Request {
    /// Echoed in the response, so requests can be pipelined.
    pub(crate) id: u64,
    pub(crate) op: String,
    /// The object the operation applies to (0 for the manager itself).
    pub(crate) object: u64,
    pub(crate) args: Vec<Value>,
    /// Who asks, beyond the connection.
    #[serde(skip_serializing_if = "Context::is_empty")]
    pub(crate) context: Context,
    /// Whether the arguments hold references to objects (stored proxies), as the scan found.
    #[serde(skip)]
    pub(crate) references: bool,
}

/// Who asks, beyond the connection: a map of the entries present.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Context {
    /// The owner, among the client's, of what the request takes (a lock): each proxy handle is
    /// one. 0 (absent): the client's own.
    pub(crate) owner: u64,
    /// The call chain a request made from inside a hosted method belongs to
    /// ([`chain`](crate::manager::chain)).
    pub(crate) chain: Option<u64>,
    /// The CPU the client ran on as it sent, said by a client on this machine while every CPU is
    /// wanted, for the thread that serves it to follow ([`crate::colocate`]).
    pub(crate) cpu: Option<u32>,
    /// A fencing token (a lock acquisition's): the object refuses the request if it has seen a
    /// larger one (`StaleFence`), else remembers it.
    pub(crate) fence: Option<u64>,
}

impl Context {
    fn is_empty(&self) -> bool {
        *self == Context::default()
    }
}

/// A map with the entries present, so that a client in another language reads it by name.
impl Serialize for Context {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let entries = usize::from(self.owner != 0)
            + usize::from(self.chain.is_some())
            + usize::from(self.cpu.is_some())
            + usize::from(self.fence.is_some());
        let mut map = serializer.serialize_map(Some(entries))?;
        if self.owner != 0 {
            map.serialize_entry("owner", &self.owner)?;
        }
        if let Some(chain) = self.chain {
            map.serialize_entry("chain", &chain)?;
        }
        if let Some(cpu) = self.cpu {
            map.serialize_entry("cpu", &cpu)?;
        }
        if let Some(fence) = self.fence {
            map.serialize_entry("fence", &fence)?;
        }
        map.end()
    }
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
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> WireError {
        WireError {
            code: code.as_str().to_owned(),
            message: message.into(),
        }
    }
}

fn refused(message: impl Into<String>) -> WireError {
    WireError::new(ErrorCode::DecodeError, message)
}

/// Reads a big-endian length of `n` bytes at `at`.
fn length(bytes: &[u8], at: usize, n: usize) -> Result<u64, WireError> {
    let field = bytes
        .get(at..at + n)
        .ok_or_else(|| refused("the payload ends inside a length"))?;
    Ok(field.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// The extension type of a reference to an object (a stored proxy).
const REFERENCE: u8 = 2;

/// The extension type of a client's opaque value (one its own codec made, a pickle say): stored
/// and returned byte for byte, never read by the server.
const OPAQUE: u8 = 3;

/// Checks the structure of a MessagePack payload without building it: one value, nothing after
/// it, within the limits above. Says whether it holds references (extension type 2).
pub(crate) fn scan(bytes: &[u8]) -> Result<bool, WireError> {
    let mut references = false;
    let mut at = 0usize;
    let mut values = 0usize;
    // Values still expected at each open level.
    let mut open: Vec<u64> = vec![1];
    while let Some(expected) = open.last_mut() {
        if *expected == 0 {
            open.pop();
            continue;
        }
        *expected -= 1;
        values += 1;
        if values > MAX_VALUES {
            return Err(refused(format!("more than {MAX_VALUES} values")));
        }
        let marker = *bytes
            .get(at)
            .ok_or_else(|| refused("the payload ends inside a value"))?;
        at += 1;
        // (bytes to skip after the marker, values it contains)
        let (skip, children): (u64, u64) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * u64::from(marker & 0x0f)),
            0x90..=0x9f => (0, u64::from(marker & 0x0f)),
            0xa0..=0xbf => (u64::from(marker & 0x1f), 0),
            0xc4 | 0xd9 => (1 + length(bytes, at, 1)?, 0),
            0xc5 | 0xda => (2 + length(bytes, at, 2)?, 0),
            0xc6 | 0xdb => (4 + length(bytes, at, 4)?, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xca | 0xce | 0xd2 => (4, 0),
            0xcb | 0xcf | 0xd3 => (8, 0),
            0xdc => (2, length(bytes, at, 2)?),
            0xdd => (4, length(bytes, at, 4)?),
            0xde => (2, 2 * length(bytes, at, 2)?),
            0xdf => (4, 2 * length(bytes, at, 4)?),
            // fixext 8 of type 2: a reference, an object's id.
            0xd7 if bytes.get(at) == Some(&REFERENCE) => {
                references = true;
                (9, 0)
            }
            // An opaque value (type 3), of any length: its type follows its length.
            0xc7..=0xc9 if bytes.get(at + (1 << (marker - 0xc7))) == Some(&OPAQUE) => {
                let width = 1 << (marker - 0xc7);
                (width as u64 + 1 + length(bytes, at, width)?, 0)
            }
            0xd4..=0xd8 if bytes.get(at) == Some(&OPAQUE) => (1 + (1 << (marker - 0xd4)), 0),
            0xc7..=0xc9 | 0xd4..=0xd8 => {
                return Err(refused(
                    "extension types are not accepted, but for references (type 2, 8 bytes) and \
                     clients' opaque values (type 3)",
                ));
            }
            0xc1 => return Err(refused("0xc1 is not a MessagePack marker")),
        };
        at = usize::try_from(skip)
            .ok()
            .and_then(|skip| at.checked_add(skip))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| refused("a length runs past the end of the payload"))?;
        if children > 0 {
            if open.len() > MAX_DEPTH {
                return Err(WireError::new(
                    ErrorCode::NestingTooDeep,
                    format!("values nest {MAX_DEPTH} deep at most"),
                ));
            }
            // Every value takes a byte at least: a count beyond the bytes left is a lie.
            if children > (bytes.len() - at) as u64 {
                return Err(refused("a count runs past the end of the payload"));
            }
            open.push(children);
        }
    }
    if at != bytes.len() {
        return Err(refused("bytes after the request"));
    }
    Ok(references)
}

/// The id of a request that may not decode: the unsigned integer that begins its array, if the
/// payload begins so. The server answers a request it refuses with that id, so that the client
/// stays in step and gets the refusal for that call.
pub(crate) fn request_id(payload: &[u8]) -> Option<u64> {
    let rest = match *payload.first()? {
        0x90..=0x9f => &payload[1..],
        0xdc => payload.get(3..)?,
        0xdd => payload.get(5..)?,
        _ => return None,
    };
    let marker = *rest.first()?;
    let bytes = |n: usize| -> Option<u64> {
        let field = rest.get(1..1 + n)?;
        Some(field.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    };
    match marker {
        0x00..=0x7f => Some(u64::from(marker)),
        0xcc => bytes(1),
        0xcd => bytes(2),
        0xce => bytes(4),
        0xcf => bytes(8),
        _ => None,
    }
}

/// Decodes a request, after [`scan`].
pub(crate) fn decode_request(payload: &[u8]) -> Result<Request, WireError> {
    let references = scan(payload)?;
    // The scan bounded the depth; rmpv's own limit is a second guard.
    let value = rmpv::decode::read_value_with_max_depth(&mut &payload[..], MAX_DEPTH + 4)
        .map_err(|e| refused(e.to_string()))?;
    let mut request = request_of(value)?;
    request.references = references;
    Ok(request)
}

/// The request a decoded array is: its parts moved out, not copied (the arguments may be large).
fn request_of(value: Value) -> Result<Request, WireError> {
    let Value::Array(mut fields) = value else {
        return Err(refused(
            "a request is an array [id, op, object, args] or [id, op, object, args, context]",
        ));
    };
    if !(4..=5).contains(&fields.len()) {
        return Err(refused(format!(
            "a request has 4 or 5 fields, not {}",
            fields.len()
        )));
    }
    let context = match fields.len() {
        5 => context_of(fields.pop().expect("5 fields"))?,
        _ => Context::default(),
    };
    let [id, op, object, args]: [Value; 4] = fields.try_into().expect("4 fields");
    let unsigned = |value: &Value, what: &str| {
        value.as_u64().ok_or_else(|| {
            refused(format!(
                "a request's {what} is an unsigned integer, not {value}"
            ))
        })
    };
    let id = unsigned(&id, "id")?;
    let object = unsigned(&object, "object")?;
    let op = match op {
        Value::String(op) => op
            .into_str()
            .ok_or_else(|| refused("a request's op is not UTF-8"))?,
        other => return Err(refused(format!("a request's op is a string, not {other}"))),
    };
    let args = match args {
        Value::Array(args) => args,
        other => {
            return Err(refused(format!(
                "a request's args are an array, not {other}"
            )));
        }
    };
    Ok(Request {
        id,
        op,
        object,
        args,
        context,
        references: false,
    })
}

/// A request's context: a map of the entries present; entries of other names are ignored (a
/// newer client's, say).
fn context_of(value: Value) -> Result<Context, WireError> {
    let Value::Map(entries) = value else {
        return Err(refused(format!(
            "a request's context is a map, not {value}"
        )));
    };
    let mut context = Context::default();
    for (key, value) in entries {
        let Some(name) = key.as_str() else { continue };
        let number = || {
            value.as_u64().ok_or_else(|| {
                refused(format!(
                    "the context's {name} is an unsigned integer, not {value}"
                ))
            })
        };
        let optional = || {
            if value.is_nil() {
                Ok(None)
            } else {
                number().map(Some)
            }
        };
        match name {
            "owner" => context.owner = number()?,
            "chain" => context.chain = optional()?,
            "fence" => context.fence = optional()?,
            "cpu" => {
                context.cpu = optional()?
                    .map(u32::try_from)
                    .transpose()
                    .map_err(|_| refused(format!("the context's cpu {value} is not a CPU")))?;
            }
            _ => {}
        }
    }
    Ok(context)
}

/// The frame of a request or a response.
pub(crate) fn framed<T: Serialize>(message: &T) -> Frame {
    Frame::of(|bytes| {
        rmp_serde::encode::write(bytes, message).expect("encoding a message does not fail");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: &Value) -> Vec<u8> {
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, value).unwrap();
        bytes
    }

    #[test]
    fn a_well_formed_request_scans_and_decodes() {
        let request = Value::Array(vec![
            7.into(),
            "dict.set".into(),
            3.into(),
            Value::Array(vec![
                "key".into(),
                Value::Map(vec![(1.into(), (-2.5).into())]),
                Value::Binary(vec![0; 300]),
                u64::MAX.into(),
                i64::MIN.into(),
                Value::String("x".repeat(70_000).into()),
            ]),
        ]);
        let request = decode_request(&encoded(&request)).unwrap();
        assert_eq!((request.id, request.op.as_str()), (7, "dict.set"));
    }

    #[test]
    fn a_context_gives_the_entries_it_names_and_ignores_others() {
        let with = |context: Value| {
            let request = Value::Array(vec![
                1.into(),
                "lock.acquire".into(),
                2.into(),
                Value::Array(vec![]),
                context,
            ]);
            decode_request(&encoded(&request))
        };
        let entries = |pairs: Vec<(&str, Value)>| {
            Value::Map(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
        };
        let context = with(entries(vec![
            ("owner", 5.into()),
            ("cpu", 3.into()),
            ("later", "a newer client's".into()),
            ("chain", Value::Nil),
            ("fence", 7.into()),
        ]))
        .unwrap()
        .context;
        assert_eq!(
            context,
            Context {
                owner: 5,
                chain: None,
                cpu: Some(3),
                fence: Some(7),
            }
        );
        // What the client sends decodes to what it meant.
        let sent = Request {
            id: 1,
            op: "x".into(),
            object: 2,
            args: vec![],
            context,
            references: false,
        };
        let mut bytes = Vec::new();
        framed(&sent).write_to(&mut bytes).unwrap();
        assert_eq!(decode_request(&bytes[8..]).unwrap().context, context);
        for bad in [
            entries(vec![("cpu", (-1).into())]),
            entries(vec![("cpu", (u64::from(u32::MAX) + 1).into())]),
            entries(vec![("owner", "me".into())]),
            Value::Array(vec![]),
        ] {
            let refused = with(bad.clone()).unwrap_err();
            assert_eq!(refused.code, ErrorCode::DecodeError.as_str(), "{bad}");
        }
    }

    #[test]
    fn a_refused_request_still_gives_its_id() {
        let deep = (0..100).fold(Value::Nil, |inner, _| Value::Array(vec![inner]));
        for id in [0u64, 7, 200, 70_000, u64::MAX] {
            let request = encoded(&Value::Array(vec![
                id.into(),
                "dict.set".into(),
                1.into(),
                Value::Array(vec![deep.clone()]),
            ]));
            assert_eq!(decode_request(&request).unwrap_err().code, "NestingTooDeep");
            assert_eq!(request_id(&request), Some(id));
        }
        assert_eq!(request_id(b""), None);
        assert_eq!(request_id(&[0x94, 0xa1]), None);
    }

    #[test]
    fn lies_and_bombs_are_refused_before_anything_is_built() {
        let refuses = |bytes: &[u8]| {
            let code = decode_request(bytes).unwrap_err().code;
            code == "DecodeError" || code == "NestingTooDeep"
        };
        // An array of 2^32 - 1 items in a few bytes.
        assert!(refuses(&[0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0]));
        // A string of 4 GiB.
        assert!(refuses(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'a']));
        // 100 000 levels of nesting.
        let mut deep = vec![0x91u8; 100_000];
        deep.push(0xc0);
        assert!(refuses(&deep));
        // More values than allowed, each one byte.
        let mut many = vec![0xdd];
        many.extend_from_slice(&(MAX_VALUES as u32 + 1).to_be_bytes());
        many.resize(many.len() + MAX_VALUES + 1, 0xc0);
        assert!(refuses(&many));
        // An extension type (the server's own nested slots), and a reference of the wrong size.
        assert!(refuses(&[
            0x94, 0x01, 0xa1, b'x', 0x01, 0x91, 0xd7, 0x01, 0, 0, 0, 0, 0, 0, 0, 1
        ]));
        assert!(refuses(&[
            0x94, 0x01, 0xa1, b'x', 0x01, 0x91, 0xd6, 0x02, 0, 0, 0, 1
        ]));
        // Opaque values (type 3) of every length form are accepted, as values, not references.
        let request = |value: &[u8]| {
            let mut bytes = vec![0x94, 0x01, 0xa1, b'x', 0x01, 0x91];
            bytes.extend_from_slice(value);
            bytes
        };
        for opaque in [
            &[0xd4, 3, 9][..],
            &[
                0xd8, 3, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
            ],
            &[0xc7, 2, 3, 7, 7],
            &[0xc8, 0, 2, 3, 7, 7],
            &[0xc9, 0, 0, 0, 2, 3, 7, 7],
        ] {
            let decoded = decode_request(&request(opaque)).unwrap();
            assert!(!decoded.references, "{opaque:?}");
            assert!(matches!(&decoded.args[0], Value::Ext(3, _)), "{opaque:?}");
        }
        // One whose length runs past the end, and another type in the same form.
        assert!(refuses(&request(&[0xc7, 9, 3, 7])));
        assert!(refuses(&request(&[0xc7, 1, 4, 7])));
        // A reference is accepted, and noted.
        let reference = [
            0x94, 0x01, 0xa1, b'x', 0x01, 0x91, 0xd7, 0x02, 0, 0, 0, 0, 0, 0, 0, 1,
        ];
        assert!(decode_request(&reference).unwrap().references);
        // The unused marker, trailing bytes, and desync seeds.
        assert!(refuses(&[0xc1]));
        assert!(refuses(&[0xc0, 0xc0]));
        for seed in [&b"\x00"[..], b"*\x00", b"$\x00", b"", b"\x94"] {
            assert!(refuses(seed), "{seed:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = decode_request(&bytes);
        }

        #[test]
        fn a_request_cut_short_is_refused(cut in 0usize..40) {
            let request = encoded(&Value::Array(vec![
                1.into(), "dict.update".into(), 2.into(),
                Value::Array(vec![Value::Array(vec![Value::Array(vec!["k".into(), 1.into()])])]),
            ]));
            let cut = cut.min(request.len() - 1);
            proptest::prop_assert!(decode_request(&request[..cut]).is_err());
        }
    }
}
