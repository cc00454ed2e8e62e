//! `Send` and `Sync` of every public type, pinned: a change to either is an API change, and this
//! file stops compiling. (Tokio does the same in `tests/async_send_sync.rs`.)
//!
//! Handles, proxies, errors and builders go to other threads and are shared by them. A guard of a
//! lock owned by its process (`LockGuard`, `ConditionGuard`) or by its handle (the manager's
//! guards) may be released by another thread; a guard of a lock owned by its thread
//! (`RLockGuard`), or of a value's lock (`ValueGuard`, `ArrayGuard`, released by the thread that
//! took it), stays on its thread. `IMap` holds the caller's input iterator, which may be neither.
#![allow(dead_code)]

use multiproc::*;

fn is_send<T: Send>() {}
fn is_sync<T: Sync>() {}

/// Compiles only if `T` is not `Send`: with `T: Send`, both impls apply and the call is ambiguous.
trait NotSend<A> {
    fn check() {}
}
impl<T: ?Sized> NotSend<()> for T {}
impl<T: ?Sized + Send> NotSend<u8> for T {}

/// Compiles only if `T` is not `Sync` (as [`NotSend`]).
trait NotSync<A> {
    fn check() {}
}
impl<T: ?Sized> NotSync<()> for T {}
impl<T: ?Sized + Sync> NotSync<u8> for T {}

macro_rules! send_and_sync {
    ($($t:ty),* $(,)?) => {
        #[test]
        fn these_are_send_and_sync() {
            $( is_send::<$t>(); is_sync::<$t>(); )*
        }
    };
}

macro_rules! neither_send_nor_sync {
    ($($t:ty),* $(,)?) => {
        #[test]
        fn these_stay_on_their_thread() {
            $( <$t as NotSend<_>>::check(); <$t as NotSync<_>>::check(); )*
        }
    };
}

send_and_sync!(
    // Processes and pools.
    Process<u8>,
    Builder,
    CurrentProcess,
    StartMethod,
    ExitStatus,
    Pool,
    PoolBuilder,
    AsyncResult<u8>,
    // Shared memory and the primitives.
    SharedMemory,
    Value<u8>,
    Array<u8>,
    Lock,
    LockGuard<'static>,
    RLock,
    Semaphore,
    BoundedSemaphore,
    Condition,
    ConditionGuard<'static>,
    Event,
    Barrier,
    // Messages.
    Connection<u8>,
    Receiver<u8>,
    Sender<u8>,
    Pipe,
    Queue<u8>,
    SimpleQueue<u8>,
    JoinableQueue<u8>,
    Listener,
    Client,
    Address,
    // The manager and its proxies.
    Manager,
    ManagerBuilder,
    ManagerStats,
    DictProxy<u8, u8>,
    DictWatcher<u8, u8>,
    DictChange<u8, u8>,
    ListProxy<u8>,
    ListWatcher<u8>,
    ListChange<u8>,
    ArrayProxy<u8>,
    ValueProxy<u8>,
    NamespaceProxy,
    QueueProxy<u8>,
    JoinableQueueProxy<u8>,
    LockProxy,
    LockProxyGuard<'static>,
    RLockProxy,
    RLockProxyGuard<'static>,
    SemaphoreProxy,
    BoundedSemaphoreProxy,
    ConditionProxy,
    ConditionProxyGuard<'static>,
    EventProxy,
    BarrierProxy,
    ObjectProxy<u8>,
    Args,
    Reply,
    // Errors.
    Error,
    SpawnError,
    JoinError,
    PoolError,
    ShmError,
    IndexOutOfRange,
    AcquireError<u8>,
    AcquireTimeoutError<u8>,
    LockFailure,
    WaitError,
    WaitTimeoutError,
    ReleaseError,
    BrokenBarrier,
    BarrierTimeoutError,
    Timeout,
    SendError,
    SendTimeoutError,
    RecvError,
    RecvTimeoutError,
    PutError,
    PutTimeoutError,
    GetError,
    GetTimeoutError,
    TaskDoneError,
    ConnectError,
    ManagerError,
    ErrorCode,
    CallError,
    EncodeError,
    DecodeError,
);

neither_send_nor_sync!(
    RLockGuard<'static>,
    ValueGuard<'static, u8>,
    ArrayGuard<'static, u8>,
    IMap<'static, u8>,
);
