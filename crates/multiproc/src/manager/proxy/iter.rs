//! Dicts and lists as Rust collections: `for entry in &dict` (a snapshot, one round trip), `for
//! item in &list` (read lazily, a page at a time), and `Display` of their contents, as Python's
//! `str()` of a proxy shows the object.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ArrayProxy, DictProxy, ListProxy};
use crate::manager::ManagerError;

/// The entries of a [`DictProxy`] as they were when the first was asked for: one round trip
/// then, none after (changes made meanwhile are not seen: take another iterator). Each item is
/// a `Result`, the first one the round trip's error if it failed. Python: `iter(d.items())`.
#[derive(Debug)]
pub struct DictIter<'a, K, V> {
    dict: &'a DictProxy<K, V>,
    entries: Option<std::vec::IntoIter<(K, V)>>,
    failed: bool,
}

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> Iterator
    for DictIter<'_, K, V>
{
    type Item = Result<(K, V), ManagerError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.entries.is_none() {
            match self.dict.items() {
                Ok(items) => self.entries = Some(items.into_iter()),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        self.entries.as_mut()?.next().map(Ok)
    }
}

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> DictProxy<K, V> {
    /// The entries, a snapshot taken at the first `next` ([`DictIter`]); `for entry in &d`
    /// does the same.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// let manager = multiproc::Manager::start()?;
    /// let ages = manager.dict::<String, u32>()?;
    /// ages.insert("ann", 31)?;
    /// for entry in &ages {
    ///     let (name, age) = entry?;
    ///     assert_eq!((name.as_str(), age), ("ann", 31));
    /// }
    /// assert_eq!(ages.to_string(), r#"{"ann": 31}"#);
    /// # Ok(())
    /// # }
    /// ```
    pub fn iter(&self) -> DictIter<'_, K, V> {
        DictIter {
            dict: self,
            entries: None,
            failed: false,
        }
    }
}

impl<'a, K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> IntoIterator
    for &'a DictProxy<K, V>
{
    type Item = Result<(K, V), ManagerError>;
    type IntoIter = DictIter<'a, K, V>;

    fn into_iter(self) -> DictIter<'a, K, V> {
        self.iter()
    }
}

/// How many items a [`ListIter`] reads at a time.
const PAGE: usize = 256;

/// The items of a [`ListProxy`], read lazily, 256 at a time: a long list is never
/// copied whole, and an item changed before its page is read is seen as it is then (as Python's
/// list iterator sees changes). It ends at the first page that comes short: items pushed
/// meanwhile beyond it are seen, items removed shift what follows. Each item is a `Result`.
#[derive(Debug)]
pub struct ListIter<'a, T> {
    list: &'a ListProxy<T>,
    page: std::vec::IntoIter<T>,
    next_start: usize,
    done: bool,
}

impl<T: Serialize + DeserializeOwned> Iterator for ListIter<'_, T> {
    type Item = Result<T, ManagerError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(item) = self.page.next() {
            return Some(Ok(item));
        }
        if self.done {
            return None;
        }
        match self.list.range(self.next_start..self.next_start + PAGE) {
            Ok(page) => {
                self.done = page.len() < PAGE;
                self.next_start += page.len();
                self.page = page.into_iter();
                self.page.next().map(Ok)
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// The items, read lazily a page at a time ([`ListIter`]); `for item in &list` does the
    /// same.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// let manager = multiproc::Manager::start()?;
    /// let squares = manager.list_from(&(0..1000).map(|i| i * i).collect::<Vec<u64>>())?;
    /// let mut sum = 0;
    /// for square in &squares {
    ///     sum += square?; // four round trips in all, 256 items each
    /// }
    /// assert_eq!(sum, 332_833_500);
    /// assert_eq!(manager.list_from(&[1, 2])?.to_string(), "[1, 2]");
    /// # Ok(())
    /// # }
    /// ```
    pub fn iter(&self) -> ListIter<'_, T> {
        ListIter {
            list: self,
            page: Vec::new().into_iter(),
            next_start: 0,
            done: false,
        }
    }
}

impl<'a, T: Serialize + DeserializeOwned> IntoIterator for &'a ListProxy<T> {
    type Item = Result<T, ManagerError>;
    type IntoIter = ListIter<'a, T>;

    fn into_iter(self) -> ListIter<'a, T> {
        self.iter()
    }
}

impl<T: Serialize + DeserializeOwned> ArrayProxy<T> {
    /// The items, read lazily a page at a time, as a list's ([`ListProxy::iter`]).
    pub fn iter(&self) -> ListIter<'_, T> {
        self.0.iter()
    }
}

impl<'a, T: Serialize + DeserializeOwned> IntoIterator for &'a ArrayProxy<T> {
    type Item = Result<T, ManagerError>;
    type IntoIter = ListIter<'a, T>;

    fn into_iter(self) -> ListIter<'a, T> {
        self.iter()
    }
}

/// The dict's contents now, as Python's `str(d)` of a proxy (`{"ann": 31}`: keys and values as
/// `Debug` shows them); `<ManagerError>` if it cannot be read. (`Debug` says which object it
/// is: its manager and id, as Python's `repr`.)
impl<K, V> fmt::Display for DictProxy<K, V>
where
    K: Serialize + DeserializeOwned + fmt::Debug,
    V: Serialize + DeserializeOwned + fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.items() {
            Ok(items) => {
                f.write_str("{")?;
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k:?}: {v:?}")?;
                }
                f.write_str("}")
            }
            Err(e) => write!(f, "<{e}>"),
        }
    }
}

/// The list's items now, as Python's `str(l)` of a proxy (`[1, 2]`); `<ManagerError>` if it
/// cannot be read.
impl<T: Serialize + DeserializeOwned + fmt::Debug> fmt::Display for ListProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_vec() {
            Ok(items) => write!(f, "{items:?}"),
            Err(e) => write!(f, "<{e}>"),
        }
    }
}

/// The array's items now, as a list's.
impl<T: Serialize + DeserializeOwned + fmt::Debug> fmt::Display for ArrayProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
