//! [`ValueProxy`]: a single value that lives in the manager.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Proxy, from_value, proxy, to_value};
use crate::EncodesAs;
use crate::manager::ManagerError;
use crate::manager::protocol::{Kind, Op};

proxy! {
    /// A single value that lives in a [`Manager`](crate::Manager): [`Value`](crate::Value)'s `get`,
    /// `set`, `fetch_add` and `compare_exchange`, each one atomic round trip, for any value the
    /// protocol carries (numbers for `fetch_add`). A closure cannot travel, so there is no `lock`
    /// or `update`: use `fetch_add`, `compare_exchange`, or a [`LockProxy`](crate::LockProxy)
    /// around `get` and `set`. Python: `manager.Value`.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// let manager = multiproc::Manager::start()?;
    /// let counter = manager.value(&10i64)?;
    /// assert_eq!(counter.fetch_add(5)?, 10); // the value before
    /// assert_eq!(counter.get()?, 15);
    /// assert_eq!(counter.compare_exchange(15, 0)?, Ok(15));
    /// assert_eq!(counter.compare_exchange(15, 1)?, Err(0)); // it was 0
    /// # Ok(())
    /// # }
    /// ```
    pub struct ValueProxy<T> = Kind::Value;
}

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    /// A view of the value whose calls carry the fencing token `token`: as
    /// [`DictProxy::fenced`](crate::DictProxy::fenced).
    pub fn fenced(&self, token: u64) -> ValueProxy<T> {
        ValueProxy::from_handle(self.handle.fenced(token))
    }

    /// The value.
    pub fn get(&self) -> Result<T, ManagerError> {
        from_value(self.handle.call(Op::ValueGet, Vec::new())?)
    }

    /// Sets the value.
    pub fn set(&self, value: impl EncodesAs<T>) -> Result<(), ManagerError> {
        self.handle
            .call(Op::ValueSet, vec![to_value(value.encoded())?])
            .map(drop)
    }

    /// Adds `delta` to the number, atomically; returns the value before. Integers are checked
    /// ([`ErrorCode::Overflow`](crate::ErrorCode::Overflow)), floats add up; anything else is
    /// [`ErrorCode::TypeError`](crate::ErrorCode::TypeError).
    pub fn fetch_add(&self, delta: T) -> Result<T, ManagerError> {
        from_value(
            self.handle
                .call(Op::ValueFetchAdd, vec![to_value(&delta)?])?,
        )
    }

    /// Stores `new` if the value is `current`, atomically: `Ok(previous)` if it was stored,
    /// `Err(actual)` if not, as [`Value::compare_exchange`](crate::Value::compare_exchange).
    pub fn compare_exchange<E: EncodesAs<T>>(
        &self,
        current: E,
        new: E,
    ) -> Result<Result<T, T>, ManagerError> {
        let answer = self.handle.call(
            Op::ValueCompareExchange,
            vec![to_value(current.encoded())?, to_value(new.encoded())?],
        )?;
        let (stored, value): (bool, rmpv::Value) = from_value(answer)?;
        let value = from_value(value)?;
        Ok(if stored { Ok(value) } else { Err(value) })
    }
}
