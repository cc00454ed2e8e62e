//! [`Dict`]: the server's dict, which keeps its keys in the order they were first inserted, as
//! Python's `dict` does.
//!
//! # Implementation notes
//!
//! Each key (its MessagePack encoding) maps to a sequence number, and the entries sit in a
//! `BTreeMap` by sequence number: lookups are a hash lookup and a tree lookup, a new key takes the
//! next number (the end of the order), setting an existing key keeps its place, and removing a key
//! leaves no hole to skip. `popitem` takes the last entry.

use std::collections::{BTreeMap, HashMap};

use rmpv::Value;

/// A dict's entries, in insertion order: each is the key and the value, under the key's encoding
/// ([`key_of`](super::data::key_of) of the key: every caller stores an entry so).
#[derive(Debug, Default)]
pub(crate) struct Dict {
    order: HashMap<Vec<u8>, u64>,
    entries: BTreeMap<u64, (Value, Value)>,
    next: u64,
}

impl Dict {
    pub(crate) fn new() -> Dict {
        Dict::default()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn contains_key(&self, key: &[u8]) -> bool {
        self.order.contains_key(key)
    }

    /// The key and value stored under `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&(Value, Value)> {
        self.order.get(key).and_then(|n| self.entries.get(n))
    }

    /// Stores `entry` under `key`: in its place if the key is there (giving back the old entry),
    /// at the end if not.
    pub(crate) fn insert(&mut self, key: Vec<u8>, entry: (Value, Value)) -> Option<(Value, Value)> {
        match self.order.get(&key) {
            Some(n) => self.entries.insert(*n, entry),
            None => {
                let n = self.next;
                self.next += 1;
                self.order.insert(key, n);
                self.entries.insert(n, entry)
            }
        }
    }

    /// The entry under `key`, made with `make` at the end if there is none.
    pub(crate) fn get_or_insert_with(
        &mut self,
        key: Vec<u8>,
        make: impl FnOnce() -> (Value, Value),
    ) -> &mut (Value, Value) {
        let next = &mut self.next;
        let n = *self.order.entry(key).or_insert_with(|| {
            *next += 1;
            *next - 1
        });
        self.entries.entry(n).or_insert_with(make)
    }

    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<(Value, Value)> {
        let n = self.order.remove(key)?;
        self.entries.remove(&n)
    }

    /// Removes the entry inserted last, Python's `popitem`.
    pub(crate) fn pop_last(&mut self) -> Option<(Value, Value)> {
        let (_, (key, value)) = self.entries.pop_last()?;
        self.order.remove(&super::data::key_of(&key));
        Some((key, value))
    }

    /// The entries, in insertion order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &(Value, Value)> {
        self.entries.values()
    }

    /// Removes every entry; gives them, in insertion order.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (Value, Value)> {
        self.order.clear();
        std::mem::take(&mut self.entries).into_values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manager::server::data::key_of;

    fn put(dict: &mut Dict, key: &str, value: i64) -> Option<(Value, Value)> {
        dict.insert(key_of(&key.into()), (key.into(), value.into()))
    }

    fn keys(dict: &Dict) -> Vec<String> {
        dict.values()
            .map(|(k, _)| k.as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn keys_keep_the_order_of_their_first_insertion() {
        let mut dict = Dict::new();
        for (i, key) in ["b", "a", "c"].into_iter().enumerate() {
            assert!(put(&mut dict, key, i as i64).is_none());
        }
        assert_eq!(keys(&dict), ["b", "a", "c"]);
        // Setting a key keeps its place; removing one and setting it again moves it to the end.
        assert_eq!(put(&mut dict, "b", 9).unwrap().1, Value::from(0));
        assert_eq!(keys(&dict), ["b", "a", "c"]);
        assert_eq!(dict.remove(&key_of(&"b".into())).unwrap().1, Value::from(9));
        put(&mut dict, "b", 1);
        assert_eq!(keys(&dict), ["a", "c", "b"]);
        dict.get_or_insert_with(key_of(&"d".into()), || ("d".into(), 0.into()));
        dict.get_or_insert_with(key_of(&"a".into()), || unreachable!("a is there"));
        assert_eq!(keys(&dict), ["a", "c", "b", "d"]);
        assert_eq!(dict.len(), 4);
        assert!(dict.contains_key(&key_of(&"c".into())));
    }

    #[test]
    fn pop_last_takes_the_last_inserted_and_drain_gives_the_rest_in_order() {
        let mut dict = Dict::new();
        for key in ["x", "y", "z"] {
            put(&mut dict, key, 0);
        }
        assert_eq!(dict.pop_last().unwrap().0, Value::from("z"));
        assert!(!dict.contains_key(&key_of(&"z".into())));
        let drained: Vec<_> = dict.drain().map(|(k, _)| k).collect();
        assert_eq!(drained, [Value::from("x"), Value::from("y")]);
        assert!(dict.len() == 0 && dict.pop_last().is_none());
        put(&mut dict, "x", 1);
        assert_eq!(keys(&dict), ["x"]);
    }
}
