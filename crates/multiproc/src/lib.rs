//! Share data between processes: what Python's `multiprocessing` gives Python programs, for Rust,
//! without its traps.
//!
//! ```
//! use multiproc::{Process, SharedMemory};
//!
//! fn main() -> multiproc::Result<()> {
//!     multiproc::init(); // first line of main: in a child, runs its task and exits
//!
//!     let child = Process::spawn((6, 7), |(a, b): (i32, i32)| a * b)?;
//!     assert_eq!(child.join()?, 42); // the function's return value comes back
//!
//!     let shm = SharedMemory::create(5)?; // a handle: passes to a child like any argument
//!     Process::spawn(shm.clone(), |shm: SharedMemory| shm.write_at(0, b"hello").unwrap())?.join()?;
//!     let mut out = [0; 5];
//!     shm.read_at(0, &mut out)?;
//!     assert_eq!(&out, b"hello");
//!     Ok(())
//! }
//! ```
//!
//! # Which piece do I need?
//!
//! | to | use |
//! |---|---|
//! | run a function in another process and get its result | [`Process::spawn`], [`Process::join`] |
//! | choose fork, or a fork server safe with threads, instead of a fresh process | [`Process::builder`], [`StartMethod`] |
//! | share a number or a struct | [`Value`] (`get`, `set`, `update`, `lock`; `fetch_add` for integers) |
//! | share a fixed-length array | [`Array`] |
//! | share raw bytes, or meet unrelated processes by name | [`SharedMemory`] |
//! | mutual exclusion | [`Lock`], [`RLock`] (re-entrant) |
//! | count a resource | [`Semaphore`], [`BoundedSemaphore`] |
//! | wait for a state change | [`Condition`] |
//! | signal "ready" | [`Event`] |
//! | meet at a point | [`Barrier`] |
//! | send messages between two processes | [`pipe`], [`Pipe::one_way`] |
//! | hand out work or collect results, many producers and consumers | [`Queue`], [`JoinableQueue`] (with `task_done`/`join`), [`SimpleQueue`] |
//! | connect unrelated processes, over a Unix socket or TCP, with a key | [`Listener`], [`Client`] |
//! | run a function over many inputs on worker processes | [`Pool`] (`map`, `imap`, `apply_async`) |
//! | share dicts, lists and namespaces through a server process, with atomic updates, nesting and watching | [`Manager`], [`DictProxy`], [`ListProxy`], [`NamespaceProxy`] |
//! | locks, queues, events, barriers, ... that reach other machines (TCP), through that server | [`LockProxy`], [`QueueProxy`], [`JoinableQueueProxy`], [`EventProxy`], [`BarrierProxy`], ... (the twins' methods; see the table on [`Manager`]) |
//! | host your own type in that server, its methods callable from any process | [`Shared`], [`ObjectProxy`] |
//! | the same proxies on Redis or Valkey, for programs on many machines (cargo feature `redis`; `redis-tls` for `rediss://`, `redis-cluster` for a Redis Cluster) | `Manager::connect_redis`, `RedisOptions` (`docs/redis.md`) |
//! | start processes from `cargo test` | [`test_support!`] |
//!
//! Every handle (values, arrays, locks, ...) is an ordinary argument of a process: pass a clone,
//! and the child reaches the same memory. When a process dies holding a lock, the next one to take
//! it gets [`AcquireError::OwnerDied`] with the guard, so it can repair the data: nobody
//! deadlocks.
//!
//! # Waiting
//!
//! Every operation that can wait comes as one family, whatever it waits for: `op` waits as long as
//! it takes, `try_op` does not wait, `op_timeout(Duration)` waits at most that long and
//! `op_deadline(Instant)` until then. `op_timeout(d)` is `op_deadline(now + d)`, and a timeout
//! too far to add to `Instant::now()` (`Duration::MAX`) waits as long as it takes. The three last
//! share one error type, whose "not ready" variant is named for what was missing, `Full` or
//! `Empty` for queues (as Python's `queue.Full` and `queue.Empty`) and `Timeout` everywhere else,
//! and answers `is_timeout()`. Where the blocking form cannot fail, they give [`Timeout`].
//!
//! ```
//! # fn main() -> multiproc::Result<()> {
//! # multiproc::init();
//! use std::time::Duration;
//! use multiproc::{Lock, Queue};
//!
//! let queue = Queue::<u32>::bounded(1)?;
//! queue.put(1)?;
//! assert!(queue.try_put(&2).unwrap_err().is_full());
//! assert!(queue.put_timeout(&2, Duration::from_millis(1)).unwrap_err().is_timeout());
//! assert_eq!(queue.get_timeout(Duration::MAX)?, 1); // there: no wait
//!
//! let lock = Lock::new()?;
//! let held = lock.acquire().expect("free");
//! let other = lock.clone();
//! let busy = std::thread::spawn(move || other.try_acquire().map(drop).unwrap_err().is_timeout());
//! assert!(busy.join().unwrap());
//! drop(held);
//! # Ok(())
//! # }
//! ```
//!
//! | family | blocking form's error | the others' error | not ready |
//! |---|---|---|---|
//! | `Lock`, `RLock`, `Condition`: `acquire`; `Value`, `Array`: `lock` | [`AcquireError`] | [`AcquireTimeoutError`] | `Timeout` |
//! | `ConditionGuard::wait` (no `try_wait`) | [`WaitError`] | [`WaitTimeoutError`] | `Timeout` |
//! | `Semaphore`, `BoundedSemaphore`: `acquire`; `Event::wait`; `AsyncResult::wait` | none | [`Timeout`] | `Timeout` |
//! | `JoinableQueue::join` | [`TasksLost`] | [`JoinTimeoutError`] | `Timeout` |
//! | `Barrier::wait` (no `try_wait`: arriving cannot be undone) | [`BrokenBarrier`] | [`BarrierTimeoutError`] | `Timeout` |
//! | `Queue`, `SimpleQueue`: `put`, `get` | [`PutError`], [`GetError`] | [`PutTimeoutError`], [`GetTimeoutError`] | `Full`, `Empty` |
//! | `Connection`, `Receiver`, `Sender`: `recv`, `send` (and `_bytes`) | [`RecvError`], [`SendError`] | [`RecvTimeoutError`], [`SendTimeoutError`] | `Timeout` |
//! | `Listener::accept` | [`ConnectError`] | [`ConnectError`] | `Timeout` |
//! | `Process::join` | [`JoinError`] | [`JoinError`] | `Timeout` |
//! | `AsyncResult::get`, `IMap::next` | [`PoolError`] | [`PoolError`] | `Timeout` |
//! | the manager's proxies and watchers | [`ManagerError`] | [`ManagerError`] | `Timeout`, `Full`, `Empty` |
//!
//! # How a child starts
//!
//! By default a child is this same program executed again. [`init`], the first line of `main`,
//! notices it is a child, runs the function its parent chose, sends back the result and exits; the
//! rest of `main` never runs in the child. A child never outlives its parent: if the parent dies,
//! even by SIGKILL, its children are killed too.
#![warn(missing_docs)]
// `unsafe_code` is denied by the workspace's lints; the three modules below allow it.

mod address;
mod channel;
mod colocate;
mod deadline;
mod encodes_as;
mod error;
#[doc(hidden)]
pub mod failpoint;
mod manager;
mod pool;
mod process;
mod shared;
#[allow(unsafe_code)] // segments: raw pointers into shared memory
mod shm;
mod spin;
mod sweep;
mod sync;
#[allow(unsafe_code)] // the operating system
mod sys;
mod test_support;
mod transfer;

/// Entry points for the fuzzers of `fuzz/` (cargo-fuzz, `--features fuzzing`): not part of the
/// API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// Decodes `bytes` as a manager request, as the server does.
    pub fn manager_request(bytes: &[u8]) {
        crate::manager::fuzz::request(bytes);
    }

    /// Reads manager frames from `bytes` and decodes each, as the server does.
    pub fn manager_frames(bytes: &[u8]) {
        crate::manager::fuzz::frames(bytes);
    }
}

/// The README's examples, run as doctests so they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use address::Address;
pub use channel::{
    Client, ConnectError, Connection, DEFAULT_MAX_MESSAGE, GetError, GetTimeoutError,
    HANDSHAKE_TIMEOUT, JoinTimeoutError, JoinableQueue, Listener, Pipe, PutError, PutTimeoutError,
    Queue, RING_BYTES, RING_ITEM_MAX, Receiver, RecvError, RecvTimeoutError, SIDE_BYTES_MAX,
    SendError, SendTimeoutError, Sender, SimpleQueue, TaskDoneError, TasksLost, pipe,
};
pub use deadline::Timeout;
pub use encodes_as::EncodesAs;
pub use error::{Error, Result};
#[cfg(feature = "redis")]
pub use manager::RedisOptions;
pub use manager::{
    Args, ArrayProxy, Backend, BarrierProxy, BoundedSemaphoreProxy, CallError, ConditionProxy,
    ConditionProxyGuard, DEFAULT_MAX_FRAME, DictChange, DictIter, DictProxy, DictWatcher,
    ErrorCode, EventProxy, JoinableQueueProxy, ListChange, ListIter, ListProxy, ListWatcher,
    LockProxy, LockProxyGuard, Manager, ManagerBuilder, ManagerError, ManagerServer, ManagerStats,
    NamespaceProxy, ObjectProxy, QueueProxy, RLockProxy, RLockProxyGuard, Reply, SemaphoreProxy,
    Shared, Token, ValueProxy,
};
/// Makes a type's `impl` block one a manager serves, with a typed proxy: each `pub` method with a
/// `self` receiver runs on the server, one call at a time per object (no update is lost), and is
/// called through `ObjectProxy<T>` by the same name, with the same arguments, returning
/// `Result<its result, ManagerError>` (the methods of the trait `<Type>Methods` it makes). A
/// method returning `Result<T, E>` answers `T`, or fails the call with `E`'s message. The type
/// is `Serialize + Deserialize` (its state between calls); register it with
/// [`ManagerBuilder::register`]. Python: `BaseManager.register("Employee", Employee)` and its
/// auto proxy, without the string dispatch of a hand-written [`Shared`].
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::{Manager, Process};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Employee {
///     name: String,
///     salary: i64,
/// }
///
/// #[multiproc::shared]
/// impl Employee {
///     pub fn increase(&mut self) {
///         self.salary += 100;
///     }
///
///     pub fn get_pay(&self) -> String {
///         format!("{}:{}", self.name, self.salary)
///     }
/// }
///
/// let manager = Manager::builder().register::<Employee>().start()?;
/// let emp = manager.create(&Employee { name: "zhangsan".into(), salary: 1000 })?;
/// emp.increase()?;
/// assert_eq!(emp.get_pay()?, "zhangsan:1100");
/// # Ok(())
/// # }
/// ```
///
/// A method that is not there is a compile error, not a refusal at run time:
///
/// ```compile_fail,E0599
/// # fn main() -> multiproc::Result<()> {
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct Employee { salary: i64 }
/// # #[multiproc::shared]
/// # impl Employee { pub fn increase(&mut self) { self.salary += 100; } }
/// # let manager = multiproc::Manager::builder().register::<Employee>().start()?;
/// # let emp = manager.create(&Employee { salary: 1000 })?;
/// emp.increse()?; // misspelt: no method `increse` on ObjectProxy<Employee>
/// # Ok(())
/// # }
/// ```
pub use multiproc_macros::shared;
pub use pool::{AsyncResult, IMap, Pool, PoolBuilder, PoolError};
pub use process::{
    Builder, CurrentProcess, ExitStatus, JoinError, Process, SpawnError, StartMethod,
    current_process, init, join_all,
};
/// The MessagePack values of the manager protocol, for untyped clients ([`Token`]).
pub use rmpv;
pub use shared::{Array, ArrayGuard, IndexOutOfRange, SharedMemory, Value, ValueGuard};
pub use shm::{AtomicInteger, ShmError, ShmSafe};
pub use sweep::{Resource, ResourceKind, resources};
pub use sync::{
    AcquireError, AcquireTimeoutError, Barrier, BarrierTimeoutError, BoundedSemaphore,
    BrokenBarrier, Condition, ConditionGuard, Event, Lock, LockFailure, LockGuard, RLock,
    RLockGuard, ReleaseError, Semaphore, WaitError, WaitTimeoutError,
};
pub use transfer::{DecodeError, EncodeError};
