//! The two kinds of reference a stored value may hold, as MessagePack extension values of 8 bytes
//! (the object's id, big-endian):
//! - *nested* (type 1), made by the server alone for `dict.nested`: a parent's slot that reading
//!   replaces by a copy of the nested container (`Table::materialize`);
//! - *reference* (type 2), a proxy a client stored as a value (a dict's value, a list's item, a
//!   value, a queue's item): reading gives the reference back, and the reader a hold of its
//!   object.
//!
//! Both hold their object for as long as they are stored (`lifetime`).

use rmpv::Value;

/// The extension type of a nested container's slot.
const NESTED: i8 = 1;
/// The extension type of a stored proxy.
const REFERENCE: i8 = super::super::protocol::value::REFERENCE_TYPE;

/// A nested container's slot, for object `id`.
pub(crate) fn nested(id: u64) -> Value {
    Value::Ext(NESTED, id.to_be_bytes().to_vec())
}

/// The object of `value`, if it is a nested container's slot.
pub(crate) fn nested_id(value: &Value) -> Option<u64> {
    match value {
        Value::Ext(NESTED, bytes) => id_of(bytes),
        _ => None,
    }
}

fn id_of(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// Pushes onto `out` the ids of the objects `value` refers to, of either kind, at any depth.
pub(crate) fn collect(value: &Value, out: &mut Vec<u64>) {
    walk(value, &mut |tag, id| {
        if tag == NESTED || tag == REFERENCE {
            out.push(id);
        }
    });
}

/// Pushes onto `out` the ids of the stored proxies (references, not nested slots) in `value`.
pub(crate) fn collect_references(value: &Value, out: &mut Vec<u64>) {
    walk(value, &mut |tag, id| {
        if tag == REFERENCE {
            out.push(id);
        }
    });
}

/// Whether `value` holds a stored proxy, at any depth.
pub(crate) fn has_references(value: &Value) -> bool {
    let mut found = false;
    walk(value, &mut |tag, _| found |= tag == REFERENCE);
    found
}

fn walk(value: &Value, seen: &mut impl FnMut(i8, u64)) {
    super::super::protocol::value::extensions(value, seen);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_at_any_depth_and_told_from_nested_slots() {
        let reference = |id: u64| Value::Ext(REFERENCE, id.to_be_bytes().to_vec());
        let value = Value::Array(vec![
            nested(1),
            Value::Map(vec![("k".into(), Value::Array(vec![reference(2)]))]),
            reference(3),
            Value::Ext(REFERENCE, vec![1, 2]), // not an id: not a reference
        ]);
        let mut all = Vec::new();
        collect(&value, &mut all);
        assert_eq!(all, [1, 2, 3]);
        let mut stored = Vec::new();
        collect_references(&value, &mut stored);
        assert_eq!(stored, [2, 3]);
        assert!(has_references(&value));
        assert!(!has_references(&nested(1)));
        assert_eq!(nested_id(&nested(9)), Some(9));
        assert_eq!(nested_id(&reference(9)), None);
    }
}
