//! [`NamespaceProxy`]: named attributes that live in the manager.

use rmpv::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{from_value, proxy, to_value};
use crate::manager::ManagerError;
use crate::manager::protocol::{Kind, Op};

proxy! {
    /// Named attributes, each of its own type, that live in a [`Manager`](crate::Manager). Python:
    /// `manager.Namespace()`, where `ns.x = 1` is [`set`](Self::set) and `ns.x` is
    /// [`get`](Self::get). Unlike Python, every name is shared, those starting with `_` included.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// let manager = multiproc::Manager::start()?;
    /// let ns = manager.namespace()?;
    /// ns.set("epochs", &10u32)?;
    /// ns.set("name", &"resnet")?;
    /// assert_eq!(ns.get::<u32>("epochs")?, 10);
    /// assert!(ns.get::<u32>("missing").is_err()); // KeyMissing, as Python's AttributeError
    /// # Ok(())
    /// # }
    /// ```
    pub struct NamespaceProxy = Kind::Namespace;
}

impl NamespaceProxy {
    /// Sets attribute `name`. Python: `ns.name = value`.
    #[doc(alias = "setattr")]
    pub fn set(&self, name: &str, value: impl Serialize) -> Result<(), ManagerError> {
        self.handle
            .call(Op::DictSet, vec![Value::from(name), to_value(&value)?])
            .map(drop)
    }

    /// Attribute `name`; an absent one is [`ManagerError::Remote`] with code
    /// [`ErrorCode::KeyMissing`](crate::ErrorCode::KeyMissing). Python: `ns.name`.
    #[doc(alias = "getattr")]
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T, ManagerError> {
        from_value(self.handle.call(Op::DictGetItem, vec![Value::from(name)])?)
    }

    /// Whether attribute `name` is set. Python: `hasattr(ns, name)`.
    pub fn contains(&self, name: &str) -> Result<bool, ManagerError> {
        from_value(
            self.handle
                .call(Op::DictContains, vec![Value::from(name)])?,
        )
    }

    /// Removes attribute `name` (`KeyMissing` if absent). Python: `del ns.name`.
    #[doc(alias = "delattr")]
    pub fn remove(&self, name: &str) -> Result<(), ManagerError> {
        self.handle
            .call(Op::DictDel, vec![Value::from(name)])
            .map(drop)
    }

    /// The names of the attributes, in the order they were first set.
    pub fn names(&self) -> Result<Vec<String>, ManagerError> {
        from_value(self.handle.call(Op::DictKeys, Vec::new())?)
    }
}
