//! The operations of the protocol and the kinds of objects, each named once: the proxies send
//! these, the server dispatches on these (with an exhaustive `match`), and the protocol page
//! documents these (a test checks all three).

/// What an object is: its creation op (on object 0) and the kind `named` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Dict,
    Namespace,
    List,
    Array,
    Value,
    Queue,
    Lock,
    RLock,
    Semaphore,
    BoundedSemaphore,
    Condition,
    Event,
    Barrier,
    /// A value of a user type registered with the server.
    Object,
}

impl Kind {
    #[cfg(test)]
    pub(crate) const ALL: [Kind; 14] = [
        Kind::Dict,
        Kind::Namespace,
        Kind::List,
        Kind::Array,
        Kind::Value,
        Kind::Queue,
        Kind::Lock,
        Kind::RLock,
        Kind::Semaphore,
        Kind::BoundedSemaphore,
        Kind::Condition,
        Kind::Event,
        Kind::Barrier,
        Kind::Object,
    ];

    /// The kind as it travels.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Dict => "dict",
            Kind::Namespace => "namespace",
            Kind::List => "list",
            Kind::Array => "array",
            Kind::Value => "value",
            Kind::Queue => "queue",
            Kind::Lock => "lock",
            Kind::RLock => "rlock",
            Kind::Semaphore => "semaphore",
            Kind::BoundedSemaphore => "bounded_semaphore",
            Kind::Condition => "condition",
            Kind::Event => "event",
            Kind::Barrier => "barrier",
            Kind::Object => "object",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Kind> {
        Some(match name {
            "dict" => Kind::Dict,
            "namespace" => Kind::Namespace,
            "list" => Kind::List,
            "array" => Kind::Array,
            "value" => Kind::Value,
            "queue" => Kind::Queue,
            "lock" => Kind::Lock,
            "rlock" => Kind::RLock,
            "semaphore" => Kind::Semaphore,
            "bounded_semaphore" => Kind::BoundedSemaphore,
            "condition" => Kind::Condition,
            "event" => Kind::Event,
            "barrier" => Kind::Barrier,
            "object" => Kind::Object,
            _ => return None,
        })
    }

    /// Whether operations on it wait: its proxies then have a connection of their own, so that a
    /// wait holds up nothing else. (A user object's method call waits for the call running before
    /// it, and for as long as its method runs.)
    pub(crate) fn waits(self) -> bool {
        matches!(
            self,
            Kind::Object
                | Kind::Queue
                | Kind::Lock
                | Kind::RLock
                | Kind::Semaphore
                | Kind::BoundedSemaphore
                | Kind::Condition
                | Kind::Event
                | Kind::Barrier
        )
    }
}

/// `pub(crate) enum Op` with its wire names and the kinds each applies to.
macro_rules! ops {
    ($($name:ident = $wire:literal on [$($kind:ident),*],)*) => {
        /// An operation. `Create(kind)` travels as the kind's name, on object 0.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum Op {
            Create(Kind),
            $($name,)*
        }

        impl Op {
            /// The operations other than `Create`.
            #[cfg(test)]
            const NAMED: &[Op] = &[$(Op::$name,)*];

            /// The operation as it travels.
            pub(crate) fn name(self) -> &'static str {
                match self {
                    Op::Create(kind) => kind.name(),
                    $(Op::$name => $wire,)*
                }
            }

            /// The operation that travels as `name` (a `match`: this runs for every request).
            pub(crate) fn parse(name: &str) -> Option<Op> {
                match name {
                    $($wire => Some(Op::$name),)*
                    other => Kind::parse(other).map(Op::Create),
                }
            }

            /// The kinds of objects it applies to; none for the manager's own (object 0).
            pub(crate) fn targets(self) -> &'static [Kind] {
                match self {
                    Op::Create(_) => &[],
                    $(Op::$name => &[$(Kind::$kind),*],)*
                }
            }
        }
    };
}

ops! {
    Hello = "hello" on [],
    OwnerEnd = "owner.end" on [],
    Ping = "ping" on [],
    Stats = "stats" on [],
    Named = "named" on [],
    RemoveNamed = "remove_named" on [],
    Hold = "hold" on [],
    Release = "release" on [],
    Lend = "lend" on [],
    KindOf = "kind" on [],
    Shutdown = "shutdown" on [],

    DictLen = "dict.len" on [Dict],
    DictGet = "dict.get" on [Dict],
    DictGetItem = "dict.getitem" on [Dict, Namespace],
    DictSet = "dict.set" on [Dict, Namespace],
    DictContains = "dict.contains" on [Dict, Namespace],
    DictPop = "dict.pop" on [Dict],
    DictDel = "dict.del" on [Dict, Namespace],
    DictPopItem = "dict.popitem" on [Dict],
    DictVersion = "dict.version" on [Dict],
    DictKeys = "dict.keys" on [Dict, Namespace],
    DictValues = "dict.values" on [Dict],
    DictItems = "dict.items" on [Dict, Namespace],
    DictClear = "dict.clear" on [Dict],
    DictSetDefault = "dict.setdefault" on [Dict],
    DictIncr = "dict.incr" on [Dict],
    DictCompareAndSwap = "dict.compare_and_swap" on [Dict],
    DictUpdate = "dict.update" on [Dict],
    DictGetMany = "dict.get_many" on [Dict],
    DictNested = "dict.nested" on [Dict],

    ListLen = "list.len" on [List, Array],
    ListAll = "list.all" on [List, Array],
    ListRange = "list.range" on [List, Array],
    ListGet = "list.get" on [List, Array],
    ListSet = "list.set" on [List, Array],
    ListIncr = "list.incr" on [List, Array],
    ListContains = "list.contains" on [List, Array],
    ListCount = "list.count" on [List, Array],
    ListIndex = "list.index" on [List, Array],
    ListAppend = "list.append" on [List],
    ListExtend = "list.extend" on [List],
    ListInsert = "list.insert" on [List],
    ListPop = "list.pop" on [List],
    ListRemove = "list.remove" on [List],
    ListClear = "list.clear" on [List],
    ListSlice = "list.slice" on [List, Array],
    ListSetSlice = "list.set_slice" on [List, Array],
    ListDelSlice = "list.del_slice" on [List],
    ListRemoveItem = "list.remove_item" on [List],
    ListReverse = "list.reverse" on [List, Array],
    ListSort = "list.sort" on [List, Array],
    ListRepeat = "list.repeat" on [List],

    ValueGet = "value.get" on [Value],
    ValueSet = "value.set" on [Value],
    ValueFetchAdd = "value.fetch_add" on [Value],
    ValueCompareExchange = "value.compare_exchange" on [Value],

    Watch = "watch" on [Dict, List],

    LockAcquire = "lock.acquire" on [Lock, RLock, Condition],
    LockRelease = "lock.release" on [Lock, RLock, Condition],
    LockState = "lock.state" on [Lock, RLock, Condition],

    SemaphoreAcquire = "semaphore.acquire" on [Semaphore, BoundedSemaphore],
    SemaphoreRelease = "semaphore.release" on [Semaphore, BoundedSemaphore],
    SemaphoreValue = "semaphore.value" on [Semaphore, BoundedSemaphore],

    ConditionWait = "condition.wait" on [Condition],
    ConditionNotify = "condition.notify" on [Condition],

    EventSet = "event.set" on [Event],
    EventClear = "event.clear" on [Event],
    EventIsSet = "event.is_set" on [Event],
    EventWait = "event.wait" on [Event],

    BarrierWait = "barrier.wait" on [Barrier],
    BarrierAbort = "barrier.abort" on [Barrier],
    BarrierReset = "barrier.reset" on [Barrier],
    BarrierState = "barrier.state" on [Barrier],

    QueuePut = "queue.put" on [Queue],
    QueueGet = "queue.get" on [Queue],
    QueueState = "queue.state" on [Queue],
    QueueClose = "queue.close" on [Queue],
    QueueTaskDone = "queue.task_done" on [Queue],
    QueueJoin = "queue.join" on [Queue],

    ObjectCall = "object.call" on [Object],
    ObjectGet = "object.get" on [Object],
}

impl Op {
    /// Every operation, creations included.
    #[cfg(test)]
    pub(crate) fn all() -> impl Iterator<Item = Op> {
        Kind::ALL
            .into_iter()
            .map(Op::Create)
            .chain(Op::NAMED.iter().copied())
    }

    /// Whether it may wait (for a lock, an item, a change, a method running before it): it then
    /// takes a connection of its own, so that it holds up no other call.
    pub(crate) fn may_wait(self) -> bool {
        matches!(
            self,
            Op::LockAcquire
                | Op::SemaphoreAcquire
                | Op::ConditionWait
                | Op::EventWait
                | Op::BarrierWait
                | Op::QueuePut
                | Op::QueueGet
                | Op::QueueJoin
                | Op::Watch
                | Op::ObjectCall
        )
    }

    /// Whether it applies to the manager itself (object 0).
    pub(crate) fn on_manager(self) -> bool {
        self.targets().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_name_is_one_operation_and_the_protocol_page_has_it() {
        let page = include_str!("../../../../../docs/manager-protocol.md");
        let mut names = HashSet::new();
        for op in Op::all() {
            assert!(names.insert(op.name()), "{} is named twice", op.name());
            assert_eq!(Op::parse(op.name()), Some(op));
            assert!(
                page.contains(&format!("`{}`", op.name())),
                "docs/manager-protocol.md does not document {}",
                op.name()
            );
        }
        assert_eq!(Op::parse("dict.nope"), None);
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.name()), Some(kind));
        }
    }
}
