//! [`DictProxy`]: a dict that lives in the manager.

use rmpv::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{DictWatcher, ListProxy, Proxy, from_value, optional, proxy, to_value};
use crate::EncodesAs;
use crate::manager::ManagerError;
use crate::manager::handle::Handle;
use crate::manager::protocol::{Kind, Op};

proxy! {
    /// A dict that lives in a [`Manager`](crate::Manager): every method is one round trip, and runs
    /// atomically on the server. Clones, and copies passed to other processes, are the same dict.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// use multiproc::{DictProxy, Manager, Process};
    ///
    /// let manager = Manager::start()?;
    /// let scores = manager.dict::<String, i64>()?;
    /// let per_player = scores.dict_in::<String, i64>("by player")?; // nested, live
    /// Process::spawn(per_player.clone(), |d: DictProxy<String, i64>| {
    ///     d.incr("ann", 3).unwrap();
    /// })?
    /// .join()?;
    /// assert_eq!(per_player.get("ann")?, Some(3));
    /// scores.insert("total", 3)?;
    /// assert_eq!(scores.pop("total")?, 3);
    /// assert!(scores.pop("total").is_err()); // KeyMissing, as Python's KeyError
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// A proxy is a value too: stored in a dict (or a list, a namespace, a value, a queue) of its
    /// own manager, it is kept as a reference, and reads back as a live proxy of the same object,
    /// in any process, as Python's `d["config"] = manager.dict()`. The stored reference keeps the
    /// object alive; references may form cycles, which the manager frees once unreachable.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// use multiproc::{DictProxy, Manager};
    ///
    /// let manager = Manager::start()?;
    /// let settings = manager.dict::<String, DictProxy<String, u32>>()?;
    /// let limits = manager.dict::<String, u32>()?;
    /// settings.insert("limits", &limits)?;
    /// drop(limits); // the dict holds it now
    /// let limits = settings.get("limits")?.expect("stored");
    /// limits.insert("workers", 4)?; // writes to the shared dict, not to a copy
    /// assert_eq!(manager.stats()?.objects, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub struct DictProxy<K, V> = Kind::Dict;
}

impl<K, V> DictProxy<K, V> {
    fn call(&self, op: Op, args: Vec<Value>) -> Result<Value, ManagerError> {
        self.handle.call(op, args)
    }

    /// A view of the dict whose calls carry the fencing token `token` (a lock guard's
    /// [`fencing_token`](crate::LockProxyGuard::fencing_token)): the dict refuses them with
    /// [`ErrorCode::StaleFence`](crate::ErrorCode::StaleFence), changing nothing, once a call with
    /// a larger token reached it. So a holder that lost its lock without knowing (its Redis lease
    /// lapsed while it was stopped) cannot overwrite what the next holder wrote. Unfenced calls
    /// are not checked.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// let manager = multiproc::Manager::start()?;
    /// let lock = manager.lock()?;
    /// let d = manager.dict::<String, u32>()?;
    /// let old = lock.acquire()?.fencing_token();
    /// let new = lock.acquire()?.fencing_token(); // a later holder
    /// d.fenced(new).insert("k", 2)?;
    /// let stale = d.fenced(old).insert("k", 1);
    /// assert_eq!(stale.unwrap_err().code(), Some(&multiproc::ErrorCode::StaleFence));
    /// assert_eq!(d.get("k")?, Some(2));
    /// # Ok(())
    /// # }
    /// ```
    pub fn fenced(&self, token: u64) -> DictProxy<K, V> {
        DictProxy::from_handle(self.handle.fenced(token))
    }

    /// The number of entries.
    pub fn len(&self) -> Result<usize, ManagerError> {
        from_value(self.call(Op::DictLen, Vec::new())?)
    }

    /// Whether it has no entry.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// Removes every entry (and gives up its hold of the containers nested in them and the
    /// proxies stored in them: what nothing else holds is freed).
    pub fn clear(&self) -> Result<(), ManagerError> {
        self.call(Op::DictClear, Vec::new()).map(drop)
    }
}

/// Keys and values are taken as a user has them, owned or borrowed, or as what they borrow as
/// (`&str` for a `String`): `d.insert("ann", 31)` on a `DictProxy<String, u32>` (see
/// [`EncodesAs`]). A key is its encoding, and every form encodes as the key itself.
impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> DictProxy<K, V> {
    /// Sets `key` to `value`. Python: `d[key] = value`.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// let manager = multiproc::Manager::start()?;
    /// let names = manager.dict::<String, String>()?;
    /// names.insert("ann", "Ann Smith")?; // &str for String, keys and values alike
    /// assert_eq!(names.get("ann")?.as_deref(), Some("Ann Smith"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn insert(
        &self,
        key: impl EncodesAs<K>,
        value: impl EncodesAs<V>,
    ) -> Result<(), ManagerError> {
        self.call(
            Op::DictSet,
            vec![to_value(key.encoded())?, to_value(value.encoded())?],
        )
        .map(drop)
    }

    /// The value of `key`, if any. Python: `d.get(key)`.
    pub fn get(&self, key: impl EncodesAs<K>) -> Result<Option<V>, ManagerError> {
        optional(self.call(Op::DictGet, vec![to_value(key.encoded())?])?)
    }

    /// Whether `key` has a value. Python: `key in d`.
    pub fn contains_key(&self, key: impl EncodesAs<K>) -> Result<bool, ManagerError> {
        from_value(self.call(Op::DictContains, vec![to_value(key.encoded())?])?)
    }

    /// Removes `key` and returns its value, if any. Python: `d.pop(key, None)`.
    pub fn remove(&self, key: impl EncodesAs<K>) -> Result<Option<V>, ManagerError> {
        optional(self.call(Op::DictPop, vec![to_value(key.encoded())?])?)
    }

    /// Removes `key` and returns its value; an absent key is [`ManagerError::Remote`] with code
    /// [`ErrorCode::KeyMissing`](crate::ErrorCode::KeyMissing). Python: `d.pop(key)`, `del d[key]`.
    #[doc(alias = "del")]
    pub fn pop(&self, key: impl EncodesAs<K>) -> Result<V, ManagerError> {
        from_value(self.call(Op::DictDel, vec![to_value(key.encoded())?])?)
    }

    /// Removes the entry inserted last and returns it; an empty dict is [`ManagerError::Remote`]
    /// with code [`ErrorCode::KeyMissing`](crate::ErrorCode::KeyMissing). Python: `d.popitem()`.
    ///
    /// ```
    /// # fn main() -> Result<(), multiproc::ManagerError> {
    /// # multiproc::init();
    /// let manager = multiproc::Manager::start()?;
    /// let d = manager.dict::<String, u32>()?;
    /// d.insert("a", 1)?;
    /// d.insert("b", 2)?;
    /// assert_eq!(d.pop_last()?, ("b".to_string(), 2));
    /// assert_eq!(d.keys()?, ["a"]);
    /// # Ok(())
    /// # }
    /// ```
    #[doc(alias = "popitem")]
    pub fn pop_last(&self) -> Result<(K, V), ManagerError> {
        from_value(self.call(Op::DictPopItem, Vec::new())?)
    }

    /// The dict nested at `key`, created empty if the key is absent: a proxy of its own, whose
    /// changes every process sees (Python loses a change made to a plain dict stored in a
    /// managed one). Reading `key` from this dict gives a copy of the nested one, as a map;
    /// replacing or removing `key` detaches the nested dict: it lives on while its proxies do, as
    /// in Python, and is freed with the last. A value of another kind at `key` is
    /// [`ErrorCode::TypeError`](crate::ErrorCode::TypeError).
    pub fn dict_in<K2, V2>(
        &self,
        key: impl EncodesAs<K>,
    ) -> Result<DictProxy<K2, V2>, ManagerError> {
        self.nested(key)
    }

    /// The list nested at `key`, created empty if the key is absent; as
    /// [`dict_in`](Self::dict_in).
    pub fn list_in<T>(&self, key: impl EncodesAs<K>) -> Result<ListProxy<T>, ManagerError> {
        self.nested(key)
    }

    fn nested<P: Proxy>(&self, key: impl EncodesAs<K>) -> Result<P, ManagerError> {
        let args = vec![to_value(key.encoded())?, Value::from(P::KIND.name())];
        let id = self.call(Op::DictNested, args)?;
        let id = id
            .as_u64()
            .ok_or_else(|| ManagerError::Protocol(format!("expected an object id, got {id}")))?;
        Ok(P::from_handle(Handle::adopt(
            self.handle.session.clone(),
            id,
            false,
        )))
    }

    /// Watches the dict: the changes made from now on, by any process, in order.
    pub fn watch(&self) -> Result<DictWatcher<K, V>, ManagerError> {
        DictWatcher::start(&self.handle)
    }

    /// The value of `key`, set to `default` first if it had none, atomically.
    pub fn setdefault(
        &self,
        key: impl EncodesAs<K>,
        default: impl EncodesAs<V>,
    ) -> Result<V, ManagerError> {
        from_value(self.call(
            Op::DictSetDefault,
            vec![to_value(key.encoded())?, to_value(default.encoded())?],
        )?)
    }

    /// Adds `delta` to the number at `key` (0 if absent) on the server, atomically, and returns
    /// the sum: the `d[k] += 1` that loses no update. A value that is not a number is
    /// [`ManagerError::Remote`] with code `TypeError`.
    pub fn incr<D: Serialize + DeserializeOwned>(
        &self,
        key: impl EncodesAs<K>,
        delta: D,
    ) -> Result<D, ManagerError> {
        from_value(self.call(
            Op::DictIncr,
            vec![to_value(key.encoded())?, to_value(&delta)?],
        )?)
    }

    /// Sets `key` to `new` if its value is `expected` (`None`: absent), atomically; returns
    /// whether it did.
    pub fn compare_and_swap<E: EncodesAs<V>>(
        &self,
        key: impl EncodesAs<K>,
        expected: Option<E>,
        new: E,
    ) -> Result<bool, ManagerError> {
        let expected = match expected {
            Some(value) => to_value(value.encoded())?,
            None => Value::Nil,
        };
        from_value(self.call(
            Op::DictCompareAndSwap,
            vec![to_value(key.encoded())?, expected, to_value(new.encoded())?],
        )?)
    }

    /// Sets every pair, in one round trip, atomically.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// let manager = multiproc::Manager::start()?;
    /// let ages = manager.dict::<String, u32>()?;
    /// ages.update([("ann", 31), ("bob", 42)])?;
    /// let more = std::collections::HashMap::from([("cy".to_string(), 27)]);
    /// ages.update(&more)?; // a map's own pairs, borrowed
    /// assert_eq!(ages.get_many(["ann", "cy", "dan"])?, [Some(31), Some(27), None]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn update<Q: EncodesAs<K>, W: EncodesAs<V>>(
        &self,
        pairs: impl IntoIterator<Item = (Q, W)>,
    ) -> Result<(), ManagerError> {
        let pairs = pairs
            .into_iter()
            .map(|(k, v)| {
                Ok(Value::Array(vec![
                    to_value(k.encoded())?,
                    to_value(v.encoded())?,
                ]))
            })
            .collect::<Result<Vec<_>, ManagerError>>()?;
        self.call(Op::DictUpdate, vec![Value::Array(pairs)])
            .map(drop)
    }

    /// The values of `keys`, in one round trip.
    pub fn get_many(
        &self,
        keys: impl IntoIterator<Item = impl EncodesAs<K>>,
    ) -> Result<Vec<Option<V>>, ManagerError> {
        let keys = keys
            .into_iter()
            .map(|key| to_value(key.encoded()))
            .collect::<Result<Vec<_>, _>>()?;
        let Value::Array(values) = self.call(Op::DictGetMany, vec![Value::Array(keys)])? else {
            return Err(ManagerError::Protocol("get_many gives an array".into()));
        };
        values.into_iter().map(optional).collect()
    }

    /// How many times the dict has changed: every set (even to the same value), removal and
    /// clearing counts one. The same version before and after reading a dict in several calls
    /// says that it did not change in between (Python's "dictionary changed during iteration",
    /// for a reader in another process).
    ///
    /// ```
    /// # fn main() -> Result<(), multiproc::ManagerError> {
    /// # multiproc::init();
    /// let manager = multiproc::Manager::start()?;
    /// let d = manager.dict::<String, u32>()?;
    /// let before = d.version()?;
    /// let keys = d.keys()?;
    /// let values = d.values()?;
    /// if d.version()? == before {
    ///     assert_eq!(keys.len(), values.len()); // one consistent view
    /// }
    /// d.insert("a", 1)?;
    /// assert!(d.version()? > before);
    /// # Ok(())
    /// # }
    /// ```
    pub fn version(&self) -> Result<u64, ManagerError> {
        from_value(self.call(Op::DictVersion, Vec::new())?)
    }

    /// The keys, in the order they were first inserted (a key removed and set again goes to the
    /// end), as Python's `dict` keeps them.
    pub fn keys(&self) -> Result<Vec<K>, ManagerError> {
        from_value(self.call(Op::DictKeys, Vec::new())?)
    }

    /// The values, in their keys' insertion order.
    pub fn values(&self) -> Result<Vec<V>, ManagerError> {
        from_value(self.call(Op::DictValues, Vec::new())?)
    }

    /// The entries, in their keys' insertion order.
    pub fn items(&self) -> Result<Vec<(K, V)>, ManagerError> {
        from_value(self.call(Op::DictItems, Vec::new())?)
    }
}
