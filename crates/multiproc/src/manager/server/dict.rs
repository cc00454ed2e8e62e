//! [`Dict`]: the server's dict, which keeps its keys in the order they were first inserted, as
//! Python's `dict` does.
//!
//! # Implementation notes
//!
//! CPython's layout: the entries sit in a `Vec` in insertion order, and each key (its MessagePack
//! encoding) maps to its entry's slot. Setting an existing key writes its slot; a new key takes a
//! slot at the end; removing a key empties its slot (a hole that iteration skips), and once holes
//! are more than half the slots the entries are packed again, so every operation stays O(1)
//! amortized. `popitem` takes the last entry.

use std::collections::HashMap;

use rmpv::Value;

/// A dict's entries, in insertion order: each is the key and the value, under the key's encoding
/// ([`key_of`](super::data::key_of) of the key: every caller stores an entry so).
#[derive(Debug, Default)]
pub(crate) struct Dict {
    slots: HashMap<Vec<u8>, usize>,
    entries: Vec<Option<(Value, Value)>>,
    /// Emptied slots in `entries`.
    holes: usize,
    /// Changes so far: a client that reads it before and after reading the entries in pieces
    /// knows whether they changed meanwhile.
    version: u64,
}

impl Dict {
    pub(crate) fn new() -> Dict {
        Dict::default()
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// How many times the dict has changed: every set, removal and clearing counts one.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    pub(crate) fn contains_key(&self, key: &[u8]) -> bool {
        self.slots.contains_key(key)
    }

    /// The key and value stored under `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&(Value, Value)> {
        self.slots.get(key).and_then(|&i| self.entries[i].as_ref())
    }

    /// Stores `entry` under `key`: in its place if the key is there (giving back the old entry),
    /// at the end if not.
    pub(crate) fn insert(&mut self, key: Vec<u8>, entry: (Value, Value)) -> Option<(Value, Value)> {
        self.version += 1;
        match self.slots.get(&key) {
            Some(&i) => self.entries[i].replace(entry),
            None => {
                self.slots.insert(key, self.entries.len());
                self.entries.push(Some(entry));
                None
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<(Value, Value)> {
        let i = self.slots.remove(key)?;
        self.version += 1;
        let entry = self.entries[i].take();
        self.holes += 1;
        self.pack_if_sparse();
        entry
    }

    /// Removes the entry inserted last, Python's `popitem`.
    pub(crate) fn pop_last(&mut self) -> Option<(Value, Value)> {
        while let Some(slot) = self.entries.pop() {
            match slot {
                Some((key, value)) => {
                    self.version += 1;
                    self.slots.remove(&super::data::key_of(&key));
                    return Some((key, value));
                }
                None => self.holes -= 1,
            }
        }
        None
    }

    /// The entries, in insertion order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &(Value, Value)> {
        self.entries.iter().flatten()
    }

    /// Removes every entry; gives them, in insertion order.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (Value, Value)> {
        self.version += 1;
        self.slots.clear();
        self.holes = 0;
        std::mem::take(&mut self.entries).into_iter().flatten()
    }

    /// Packs the entries once holes are more than half the slots.
    fn pack_if_sparse(&mut self) {
        if self.holes * 2 <= self.entries.len() {
            return;
        }
        self.entries.retain(Option::is_some);
        self.holes = 0;
        for (i, (key, _)) in self.entries.iter().flatten().enumerate() {
            *self
                .slots
                .get_mut(&super::data::key_of(key))
                .expect("every entry's key has a slot") = i;
        }
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
        put(&mut dict, "d", 0);
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
        let before = dict.version();
        assert_eq!(dict.pop_last().unwrap().0, Value::from("z"));
        assert_eq!(dict.version(), before + 1);
        assert!(!dict.contains_key(&key_of(&"z".into())));
        let drained: Vec<_> = dict.drain().map(|(k, _)| k).collect();
        assert_eq!(drained, [Value::from("x"), Value::from("y")]);
        assert!(dict.len() == 0 && dict.pop_last().is_none());
        put(&mut dict, "x", 1);
        assert_eq!(keys(&dict), ["x"]);
    }

    #[test]
    fn removals_pack_the_entries_and_keep_the_order() {
        let mut dict = Dict::new();
        let names: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
        for name in &names {
            put(&mut dict, name, 0);
        }
        // Remove three in four (packing on the way), then check each survivor's slot.
        for name in names.iter().filter(|n| !n.ends_with(['0', '4', '8'])) {
            assert!(dict.remove(&key_of(&name.as_str().into())).is_some());
        }
        let left: Vec<String> = names
            .iter()
            .filter(|n| n.ends_with(['0', '4', '8']))
            .cloned()
            .collect();
        assert_eq!(keys(&dict), left);
        assert!(dict.entries.len() < 2 * left.len() + 2, "packed");
        for name in &left {
            let (key, _) = dict.get(&key_of(&name.as_str().into())).unwrap();
            assert_eq!(key.as_str(), Some(name.as_str()));
        }
        put(&mut dict, "new", 1);
        assert_eq!(dict.pop_last().unwrap().0, Value::from("new"));
        assert_eq!(dict.len(), left.len());
    }
}
