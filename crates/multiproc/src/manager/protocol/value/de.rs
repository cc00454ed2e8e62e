//! A protocol value into a Rust value, read directly from the [`Value`] (which it consumes).

use rmpv::Value;
use serde::de::value::SeqDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Unexpected, Visitor};
use serde::forward_to_deserialize_any;

use super::Error;

/// Deserializes from a [`Value`].
pub(super) struct ValueDeserializer(pub(super) Value);

impl<'de> de::Deserializer<'de> for ValueDeserializer {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Nil => visitor.visit_unit(),
            Value::Boolean(v) => visitor.visit_bool(v),
            Value::Integer(n) => match (n.as_u64(), n.as_i64()) {
                (Some(v), _) => visitor.visit_u64(v),
                (None, Some(v)) => visitor.visit_i64(v),
                (None, None) => Err(Error(format!("{n} is not a 64-bit integer"))),
            },
            Value::F32(v) => visitor.visit_f32(v),
            Value::F64(v) => visitor.visit_f64(v),
            Value::String(s) => match s.into_str() {
                Some(s) => visitor.visit_string(s),
                None => Err(Error("a string that is not UTF-8".into())),
            },
            Value::Binary(bytes) => visitor.visit_byte_buf(bytes),
            Value::Array(items) => visit_array(items, visitor),
            Value::Map(entries) => visit_map(entries, visitor),
            Value::Ext(super::REFERENCE_TYPE, _) => Err(Error(
                "a proxy (a reference to an object) is read as a proxy type, not as this one"
                    .into(),
            )),
            Value::Ext(super::OPAQUE_TYPE, _) => Err(Error(
                "an opaque value another client's codec made (a Python pickle, say): Rust reads \
                 it as multiproc::rmpv::Value only (an extension of type 3, its bytes)"
                    .into(),
            )),
            Value::Ext(tag, _) => Err(Error(format!(
                "an extension value (type {tag}) is not a value of the data model"
            ))),
        }
    }

    /// Bytes are a sequence of `u8` too (so that a `Vec<u8>` reads them).
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Binary(bytes) => visit_bytes_as_seq(bytes, visitor),
            other => ValueDeserializer(other).deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Nil => visitor.visit_none(),
            other => visitor.visit_some(ValueDeserializer(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == super::REFERENCE {
            return match self.0 {
                Value::Ext(super::REFERENCE_TYPE, bytes) if bytes.len() == 8 => {
                    let id: [u8; 8] = bytes.as_slice().try_into().expect("8 bytes");
                    visitor.visit_u64(u64::from_be_bytes(id))
                }
                other => Err(Error(format!(
                    "expected a proxy (a reference), got {other}"
                ))),
            };
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            name @ Value::String(_) => visitor.visit_enum(Variant { name, data: None }),
            Value::Map(mut entries) if entries.len() == 1 => {
                let (name, data) = entries.remove(0);
                visitor.visit_enum(Variant {
                    name,
                    data: Some(data),
                })
            }
            other => Err(Error(format!(
                "an enum is its variant's name or a map of one entry from it to the data, not {other}"
            ))),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct tuple_struct map struct identifier ignored_any
    }
}

fn visit_array<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value, Error> {
    let len = items.len();
    let mut seq = SeqDeserializer::new(items.into_iter().map(ValueDeserializer));
    let value = visitor.visit_seq(&mut seq)?;
    seq.end()
        .map_err(|_| Error(format!("an array of {len} items has items left over")))?;
    Ok(value)
}

fn visit_bytes_as_seq<'de, V: Visitor<'de>>(bytes: Vec<u8>, visitor: V) -> Result<V::Value, Error> {
    let mut seq = SeqDeserializer::new(bytes.into_iter());
    let value = visitor.visit_seq(&mut seq)?;
    seq.end()?;
    Ok(value)
}

fn visit_map<'de, V: Visitor<'de>>(
    entries: Vec<(Value, Value)>,
    visitor: V,
) -> Result<V::Value, Error> {
    let mut map = de::value::MapDeserializer::new(
        entries
            .into_iter()
            .map(|(k, v)| (ValueDeserializer(k), ValueDeserializer(v))),
    );
    let value = visitor.visit_map(&mut map)?;
    map.end()?;
    Ok(value)
}

impl<'de> IntoDeserializer<'de, Error> for ValueDeserializer {
    type Deserializer = ValueDeserializer;
    fn into_deserializer(self) -> ValueDeserializer {
        self
    }
}

/// An enum's variant: its name, and its data unless it is a unit variant.
struct Variant {
    name: Value,
    data: Option<Value>,
}

impl<'de> de::EnumAccess<'de> for Variant {
    type Error = Error;
    type Variant = Data;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Data), Error> {
        let variant = seed.deserialize(ValueDeserializer(self.name))?;
        Ok((variant, Data(self.data)))
    }
}

/// A variant's data.
struct Data(Option<Value>);

impl Data {
    fn present(self, expected: &str) -> Result<Value, Error> {
        self.0
            .ok_or_else(|| de::Error::invalid_type(Unexpected::UnitVariant, &expected))
    }
}

impl<'de> de::VariantAccess<'de> for Data {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.0 {
            None | Some(Value::Nil) => Ok(()),
            Some(other) => Err(Error(format!("a unit variant has no data, not {other}"))),
        }
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        seed.deserialize(ValueDeserializer(self.present("a newtype variant")?))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_seq(
            ValueDeserializer(self.present("a tuple variant")?),
            visitor,
        )
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_any(
            ValueDeserializer(self.present("a struct variant")?),
            visitor,
        )
    }
}
