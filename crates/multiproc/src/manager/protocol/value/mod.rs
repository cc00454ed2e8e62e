//! How a Rust value becomes one of the protocol's MessagePack values and back: one codec for the
//! proxies and the user types' dispatch, built directly on [`rmpv::Value`].
//!
//! The data model, as other languages see it:
//!
//! | Rust | MessagePack |
//! |---|---|
//! | `bool`, integers, `f32`, `f64` | bool, int, float 32, float 64 |
//! | `String`, `&str`, `char` | str |
//! | `Vec<u8>`, `&[u8]`, and any other non-empty sequence of `u8` | bin (one value, not an array of integers, so a large buffer stays within the server's value budget) |
//! | other sequences, tuples, an empty `Vec<u8>` | array |
//! | maps | map |
//! | a struct | a map from its field names to their values, in the order declared (a skipped field is absent) |
//! | a tuple struct | the array of its fields |
//! | `()`, a unit struct, `None` | nil |
//! | `Some(v)`, a newtype struct | `v` itself |
//! | a unit variant | str: its name |
//! | a variant with data | a map of one entry, from its name to its data: the value (newtype variant), the array of its fields (tuple variant), the map of its fields by name (struct variant) |
//! | a proxy of the same manager | a reference: extension type 2, the object's id in 8 bytes big-endian |
//!
//! A proxy is encoded as a reference by its handle: it serializes as the newtype struct named
//! [`REFERENCE`], with its object's id and its manager's fingerprint, which this serializer turns
//! into the extension value (16 bytes: the client checks the fingerprint and cuts it before
//! sending). Reading, the deserializer gives the id of a reference to a handle that asks for that
//! newtype.

mod de;
mod ser;

use std::cell::Cell;

use rmpv::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The name of the newtype struct a proxy's handle serializes as, in a protocol value.
pub(crate) const REFERENCE: &str = "$multiproc::Reference";

/// The extension type of a reference.
pub(crate) const REFERENCE_TYPE: i8 = 2;

/// The extension type of a client's opaque value (`docs/manager-protocol.md`, "Opaque values").
pub(crate) const OPAQUE_TYPE: i8 = 3;

thread_local! {
    /// How many [`to_value`] calls this thread is inside.
    static ENCODING: Cell<u32> = const { Cell::new(0) };
    /// Whether a reference was encoded since [`took_references`] last said so.
    static TOOK: Cell<bool> = const { Cell::new(false) };
}

/// `value` as a protocol value, or why it has none.
pub(crate) fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, String> {
    struct Inside;
    impl Drop for Inside {
        fn drop(&mut self) {
            ENCODING.with(|depth| depth.set(depth.get() - 1));
        }
    }
    ENCODING.with(|depth| depth.set(depth.get() + 1));
    let _inside = Inside;
    value.serialize(ser::ValueSerializer).map_err(|e| e.0)
}

/// Whether this thread is encoding a protocol value (a handle then serializes as a reference).
pub(crate) fn encoding() -> bool {
    ENCODING.with(|depth| depth.get() > 0)
}

/// Whether a reference was encoded on this thread since the last call.
pub(crate) fn took_references() -> bool {
    TOOK.with(|took| took.replace(false))
}

/// Calls `seen` with the id of every reference in `value`, at any depth, and (for the server's
/// own) the other extension values of 8 bytes, with their type.
pub(crate) fn extensions(value: &Value, seen: &mut impl FnMut(i8, u64)) {
    match value {
        Value::Ext(tag, bytes) => {
            if let Ok(id) = <[u8; 8]>::try_from(bytes.as_slice()) {
                seen(*tag, u64::from_be_bytes(id));
            }
        }
        Value::Array(items) => items.iter().for_each(|item| extensions(item, seen)),
        Value::Map(entries) => entries.iter().for_each(|(k, v)| {
            extensions(k, seen);
            extensions(v, seen);
        }),
        _ => {}
    }
}

/// A protocol value as a `T`, or why it is not one.
pub(crate) fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, String> {
    T::deserialize(de::ValueDeserializer(value)).map_err(|e| e.0)
}

/// Why a value did not convert.
#[derive(Debug)]
struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl serde::ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Error {
        Error(msg.to_string())
    }
}

impl serde::de::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Error {
        Error(msg.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use serde::Deserialize;

    use super::*;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
        value: T,
    ) -> Value {
        let encoded = to_value(&value).unwrap();
        assert_eq!(
            from_value::<T>(encoded.clone()).unwrap(),
            value,
            "{encoded}"
        );
        encoded
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Dot,
        Circle(f64),
        Pair(u8, u8),
        Box { w: u8, h: u8 },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Thing {
        name: String,
        shapes: Vec<Shape>,
        tag: Option<u64>,
        raw: Vec<u8>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Meters(f64);

    #[test]
    fn bytes_are_one_value_and_come_back() {
        let buffer = vec![7u8; 1000];
        assert!(matches!(round_trip(buffer), Value::Binary(b) if b.len() == 1000));
        assert!(matches!(
            round_trip(serde_bytes::ByteBuf::from(vec![1, 2])),
            Value::Binary(_)
        ));
        assert!(matches!(round_trip(HashSet::from([3u8])), Value::Binary(_)));
        // An empty one has no element to tell; it is an empty array, which reads back as well.
        assert_eq!(round_trip(Vec::<u8>::new()), Value::Array(vec![]));
        // Sequences of anything else, and of u8 inside something else, stay arrays.
        assert!(matches!(round_trip(vec![1u32, 2]), Value::Array(_)));
        assert!(matches!(round_trip(vec![Some(1u8)]), Value::Array(_)));
        assert!(matches!(round_trip((1u8, 2u8)), Value::Array(_)));
        assert!(matches!(round_trip(vec![vec![1u8]]), Value::Array(a) if a[0].is_bin()));
    }

    #[test]
    fn the_data_model_of_the_table() {
        assert_eq!(round_trip(Shape::Dot), Value::from("Dot"));
        assert_eq!(
            round_trip(Shape::Circle(1.5)),
            Value::Map(vec![(Value::from("Circle"), Value::F64(1.5))])
        );
        assert_eq!(
            round_trip(Shape::Box { w: 1, h: 2 }),
            Value::Map(vec![(
                Value::from("Box"),
                Value::Map(vec![
                    (Value::from("w"), Value::from(1)),
                    (Value::from("h"), Value::from(2))
                ])
            )])
        );
        assert_eq!(
            round_trip(Shape::Pair(3, 4)),
            Value::Map(vec![(
                Value::from("Pair"),
                Value::Array(vec![Value::from(3), Value::from(4)])
            )])
        );
        assert_eq!(round_trip(Meters(2.0)), Value::F64(2.0));
        assert_eq!(round_trip(()), Value::Nil);
        assert_eq!(round_trip(None::<u8>), Value::Nil);
        assert_eq!(round_trip(Some('x')), Value::from("x"));
        assert_eq!(round_trip(-5i64), Value::from(-5));
        assert_eq!(round_trip(u64::MAX), Value::from(u64::MAX));
        let thing = Thing {
            name: "t".into(),
            shapes: vec![Shape::Dot, Shape::Circle(1.5), Shape::Box { w: 1, h: 2 }],
            tag: None,
            raw: vec![1, 2, 3],
        };
        // A struct is a map by field name, as another language reads it.
        let Value::Map(fields) = round_trip(thing) else {
            panic!("a struct is a map")
        };
        let names: Vec<_> = fields.iter().map(|(k, _)| k.as_str().unwrap()).collect();
        assert_eq!(names, ["name", "shapes", "tag", "raw"]);
        round_trip(BTreeMap::from([
            ("a".to_string(), vec![1i32]),
            ("b".into(), vec![]),
        ]));
        // A struct sent as a map by another language reads, and as the array of its fields too.
        let sent = Value::Map(vec![
            (Value::from("name"), Value::from("m")),
            (Value::from("shapes"), Value::Array(vec![])),
            (Value::from("tag"), Value::from(4)),
            (Value::from("raw"), Value::Binary(vec![9])),
        ]);
        assert_eq!(from_value::<Thing>(sent).unwrap().raw, vec![9]);
        let positional = Value::Array(vec![
            Value::from("p"),
            Value::Array(vec![]),
            Value::Nil,
            Value::Binary(vec![8]),
        ]);
        assert_eq!(from_value::<Thing>(positional).unwrap().raw, vec![8]);
        // A field skipped when empty is absent, and the map still reads.
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Sparse {
            #[serde(default, skip_serializing_if = "Option::is_none")]
            note: Option<String>,
            n: u8,
        }
        let sparse = round_trip(Sparse { note: None, n: 1 });
        assert_eq!(sparse, Value::Map(vec![(Value::from("n"), Value::from(1))]));
    }

    #[test]
    fn what_does_not_fit_is_an_error_that_says_so() {
        assert!(to_value(&(1u128 << 64)).unwrap_err().contains("64 bits"));
        assert!(from_value::<u8>(Value::from(300)).is_err());
        assert!(from_value::<Vec<u8>>(Value::from("no")).is_err());
        assert!(from_value::<(u8, u8)>(Value::Array(vec![Value::from(1)])).is_err());
        assert!(
            from_value::<(u8,)>(Value::Array(vec![Value::from(1), Value::from(2)]))
                .unwrap_err()
                .contains("left over")
        );
        assert!(
            from_value::<Shape>(Value::from(1))
                .unwrap_err()
                .contains("enum")
        );
        assert!(from_value::<Shape>(Value::from("Square")).is_err());
        assert!(
            from_value::<u8>(Value::Ext(1, vec![]))
                .unwrap_err()
                .contains("extension")
        );
    }
}
