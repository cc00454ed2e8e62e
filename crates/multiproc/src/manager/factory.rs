//! The manager's factories: one per kind of object, and its `_named` twin, all through
//! [`Manager::make`]. The arguments are those of the shared-memory twins; the server checks them
//! (for clients in every language), and refuses what the twins refuse.

use rmpv::Value;
use serde::Serialize;

use super::handle::Handle;
use super::protocol::{Kind, Op};
use super::proxy::{
    ArrayProxy, BarrierProxy, BoundedSemaphoreProxy, ConditionProxy, DictProxy, EventProxy,
    JoinableQueueProxy, ListProxy, LockProxy, NamespaceProxy, ObjectProxy, Proxy, QueueProxy,
    RLockProxy, SemaphoreProxy, Shared, ValueProxy, to_value,
};
use super::{Manager, ManagerError};

/// The items of a new list or array: an array of values, one per item (a `&[u8]` alone would
/// travel as bytes).
fn items_value<T: Serialize>(items: &[T]) -> Result<Value, ManagerError> {
    items
        .iter()
        .map(to_value)
        .collect::<Result<_, _>>()
        .map(Value::Array)
}

impl Manager {
    /// A new object of `P`'s kind made from `args`, or with a `name`, the object of that name
    /// (made from `args` by the first caller).
    fn make<P: Proxy>(&self, name: Option<&str>, args: Vec<Value>) -> Result<P, ManagerError> {
        self.make_handle(P::KIND, name, args).map(P::from_handle)
    }

    /// A new object of `kind` made from `args`, or the object called `name`: its handle, holding
    /// it.
    pub(crate) fn make_handle(
        &self,
        kind: Kind,
        name: Option<&str>,
        args: Vec<Value>,
    ) -> Result<Handle, ManagerError> {
        let answer = match name {
            None => self.session.call(Op::Create(kind), 0, args, 0)?,
            Some(name) => {
                let named = [Value::from(name), Value::from(kind.name())]
                    .into_iter()
                    .chain(args)
                    .collect();
                self.session.call(Op::Named, 0, named, 0)?
            }
        };
        let id = answer.as_u64().ok_or_else(|| {
            ManagerError::Protocol(format!("expected an object id, got {answer}"))
        })?;
        Ok(Handle::adopt(self.session.clone(), id, kind.waits()))
    }

    /// A new, empty shared dict. Python: `manager.dict()`.
    pub fn dict<K, V>(&self) -> Result<DictProxy<K, V>, ManagerError> {
        self.make(None, Vec::new())
    }

    /// The shared dict named `name`: created empty by the first caller, the same one for every
    /// later caller, whatever process it is in. Each kind of object has such a `_named` twin; a
    /// name already given to another kind is [`ErrorCode::WrongKind`](crate::ErrorCode).
    pub fn dict_named<K, V>(&self, name: &str) -> Result<DictProxy<K, V>, ManagerError> {
        self.make(Some(name), Vec::new())
    }

    /// A new, empty namespace. Python: `manager.Namespace()`.
    #[doc(alias = "Namespace")]
    pub fn namespace(&self) -> Result<NamespaceProxy, ManagerError> {
        self.make(None, Vec::new())
    }

    /// The namespace named `name`.
    pub fn namespace_named(&self, name: &str) -> Result<NamespaceProxy, ManagerError> {
        self.make(Some(name), Vec::new())
    }

    /// A new shared list, empty. Python: `manager.list()`.
    ///
    /// ```
    /// # fn main() -> multiproc::Result<()> {
    /// # multiproc::init();
    /// let manager = multiproc::Manager::start()?;
    /// let empty = manager.list::<u32>()?;
    /// let full = manager.list_from(&[1, 2, 3])?;
    /// assert_eq!((empty.len()?, full.len()?), (0, 3));
    /// # Ok(())
    /// # }
    /// ```
    pub fn list<T>(&self) -> Result<ListProxy<T>, ManagerError> {
        self.make(None, vec![Value::Array(Vec::new())])
    }

    /// A new shared list holding `items`. Python: `manager.list(items)`.
    #[doc(alias = "list")]
    pub fn list_from<T: Serialize>(&self, items: &[T]) -> Result<ListProxy<T>, ManagerError> {
        self.make(None, vec![items_value(items)?])
    }

    /// The shared list named `name` (created empty).
    pub fn list_named<T>(&self, name: &str) -> Result<ListProxy<T>, ManagerError> {
        self.make(Some(name), Vec::new())
    }

    /// A new shared array of fixed length, holding `items`, as
    /// [`Array::from_slice`](crate::Array::from_slice). Python: `manager.Array`.
    #[doc(alias = "Array")]
    pub fn array<T: Serialize>(&self, items: &[T]) -> Result<ArrayProxy<T>, ManagerError> {
        self.make(None, vec![items_value(items)?])
    }

    /// The shared array named `name`, holding `items` if this call creates it.
    pub fn array_named<T: Serialize>(
        &self,
        name: &str,
        items: &[T],
    ) -> Result<ArrayProxy<T>, ManagerError> {
        self.make(Some(name), vec![items_value(items)?])
    }

    /// A new shared value holding `value`, as [`Value::new`](crate::Value::new). Python:
    /// `manager.Value`.
    #[doc(alias = "Value")]
    pub fn value<T: Serialize>(&self, value: &T) -> Result<ValueProxy<T>, ManagerError> {
        self.make(None, vec![to_value(value)?])
    }

    /// The shared value named `name`, holding `initial` if this call creates it.
    pub fn value_named<T: Serialize>(
        &self,
        name: &str,
        initial: &T,
    ) -> Result<ValueProxy<T>, ManagerError> {
        self.make(Some(name), vec![to_value(initial)?])
    }

    /// A new queue with no limit on its items, as [`Queue::new`](crate::Queue::new). Python:
    /// `manager.Queue()`.
    #[doc(alias = "Queue")]
    pub fn queue<T>(&self) -> Result<QueueProxy<T>, ManagerError> {
        self.make(None, vec![Value::Nil])
    }

    /// A new queue holding at most `max_items` items, as
    /// [`Queue::bounded`](crate::Queue::bounded): 0 is refused
    /// ([`ErrorCode::BadArguments`](crate::ErrorCode::BadArguments); Python would make it
    /// unbounded: use [`queue`](Self::queue)). Python: `manager.Queue(maxsize)`.
    pub fn queue_bounded<T>(&self, max_items: usize) -> Result<QueueProxy<T>, ManagerError> {
        self.make(None, vec![Value::from(max_items)])
    }

    /// The queue named `name` (created without a limit).
    pub fn queue_named<T>(&self, name: &str) -> Result<QueueProxy<T>, ManagerError> {
        self.make(Some(name), vec![Value::Nil])
    }

    /// A new joinable queue with no limit, as [`JoinableQueue::new`](crate::JoinableQueue::new).
    /// Python: `manager.JoinableQueue()`.
    #[doc(alias = "JoinableQueue")]
    pub fn joinable_queue<T>(&self) -> Result<JoinableQueueProxy<T>, ManagerError> {
        self.make(None, vec![Value::Nil])
    }

    /// A new joinable queue holding at most `max_items` items (0 is refused, as for
    /// [`queue_bounded`](Self::queue_bounded)).
    pub fn joinable_queue_bounded<T>(
        &self,
        max_items: usize,
    ) -> Result<JoinableQueueProxy<T>, ManagerError> {
        self.make(None, vec![Value::from(max_items)])
    }

    /// The joinable queue named `name` (created without a limit). It is the queue of that name:
    /// a [`queue_named`](Self::queue_named) of the same name reaches it too.
    pub fn joinable_queue_named<T>(
        &self,
        name: &str,
    ) -> Result<JoinableQueueProxy<T>, ManagerError> {
        self.make(Some(name), vec![Value::Nil])
    }

    /// A new lock, owned by the handle that takes it (see [`LockProxy`]). Python:
    /// `manager.Lock()`.
    #[doc(alias = "Lock")]
    pub fn lock(&self) -> Result<LockProxy, ManagerError> {
        self.make(None, Vec::new())
    }

    /// The lock named `name`.
    pub fn lock_named(&self, name: &str) -> Result<LockProxy, ManagerError> {
        self.make(Some(name), Vec::new())
    }

    /// A new recursive lock. Python: `manager.RLock()`.
    #[doc(alias = "RLock")]
    pub fn rlock(&self) -> Result<RLockProxy, ManagerError> {
        self.make(None, Vec::new())
    }

    /// The recursive lock named `name`.
    pub fn rlock_named(&self, name: &str) -> Result<RLockProxy, ManagerError> {
        self.make(Some(name), Vec::new())
    }

    /// A new semaphore with `value` permits, as [`Semaphore::new`](crate::Semaphore::new).
    /// Python: `manager.Semaphore(value)`.
    #[doc(alias = "Semaphore")]
    pub fn semaphore(&self, value: u32) -> Result<SemaphoreProxy, ManagerError> {
        self.make(None, vec![Value::from(value)])
    }

    /// The semaphore named `name`, with `value` permits if this call creates it.
    pub fn semaphore_named(&self, name: &str, value: u32) -> Result<SemaphoreProxy, ManagerError> {
        self.make(Some(name), vec![Value::from(value)])
    }

    /// A new semaphore that refuses to be released above `value`, as
    /// [`BoundedSemaphore::new`](crate::BoundedSemaphore::new). Python:
    /// `manager.BoundedSemaphore(value)`.
    #[doc(alias = "BoundedSemaphore")]
    pub fn bounded_semaphore(&self, value: u32) -> Result<BoundedSemaphoreProxy, ManagerError> {
        self.make(None, vec![Value::from(value)])
    }

    /// The bounded semaphore named `name`.
    pub fn bounded_semaphore_named(
        &self,
        name: &str,
        value: u32,
    ) -> Result<BoundedSemaphoreProxy, ManagerError> {
        self.make(Some(name), vec![Value::from(value)])
    }

    /// A new condition, with a recursive lock of its own. Python: `manager.Condition()`.
    #[doc(alias = "Condition")]
    pub fn condition(&self) -> Result<ConditionProxy, ManagerError> {
        self.make(None, Vec::new())
    }

    /// The condition named `name`.
    pub fn condition_named(&self, name: &str) -> Result<ConditionProxy, ManagerError> {
        self.make(Some(name), Vec::new())
    }

    /// A new event, not set. Python: `manager.Event()`.
    #[doc(alias = "Event")]
    pub fn event(&self) -> Result<EventProxy, ManagerError> {
        self.make(None, Vec::new())
    }

    /// The event named `name`.
    pub fn event_named(&self, name: &str) -> Result<EventProxy, ManagerError> {
        self.make(Some(name), Vec::new())
    }

    /// A new barrier for `parties` parties, as [`Barrier::new`](crate::Barrier::new): 0 is
    /// refused ([`ErrorCode::BadArguments`](crate::ErrorCode::BadArguments)). Python:
    /// `manager.Barrier(parties)`.
    #[doc(alias = "Barrier")]
    pub fn barrier(&self, parties: usize) -> Result<BarrierProxy, ManagerError> {
        self.make(None, vec![Value::from(parties)])
    }

    /// The barrier named `name`, for `parties` parties if this call creates it.
    pub fn barrier_named(&self, name: &str, parties: usize) -> Result<BarrierProxy, ManagerError> {
        self.make(Some(name), vec![Value::from(parties)])
    }

    /// A new object of a registered user type `T`
    /// ([`ManagerBuilder::register`](crate::ManagerBuilder::register)), holding `value`; an
    /// unregistered type is [`ManagerError::Remote`] with code
    /// [`ErrorCode::NotExposed`](crate::ErrorCode::NotExposed).
    pub fn create<T: Shared>(&self, value: &T) -> Result<ObjectProxy<T>, ManagerError> {
        self.make(None, vec![Value::from(T::TYPE_NAME), to_value(value)?])
    }

    /// The object of type `T` named `name`, holding `value` if this call creates it.
    pub fn create_named<T: Shared>(
        &self,
        name: &str,
        value: &T,
    ) -> Result<ObjectProxy<T>, ManagerError> {
        self.make(
            Some(name),
            vec![Value::from(T::TYPE_NAME), to_value(value)?],
        )
    }
}
