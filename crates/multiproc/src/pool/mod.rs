//! [`Pool`]: worker processes that run tasks, and survive the death of one of them.
//!
//! # Implementation notes
//!
//! A driver thread in the parent owns the workers (see `driver`), each a
//! [`Process`](crate::Process) running `worker::run` with a task queue of its own. Submitting encodes the arguments in the caller (so an
//! unserializable one fails there), cuts them into chunks, and hands the chunks to the driver;
//! results come back into a [`job::Job`] that the returned handle waits on. A function travels as
//! an entry point, as for [`Process::spawn`](crate::Process::spawn).

mod driver;
mod error;
mod job;
mod pace;
mod worker;

pub use error::PoolError;
pub use job::{AsyncResult, IMap};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::process::StartMethod;
use crate::transfer::{self, Message};
use driver::{Command, Settings, Work};
use job::{Feeder, Job};
use worker::{ChunkEntry, InitEntry};

/// Worker processes that run functions on arguments: Python's `multiprocessing.Pool`, without its
/// hangs. A task that panics is that task's error; a worker that dies fails the task it was
/// running with [`PoolError::WorkerDied`] and is replaced, and the rest of the work completes.
/// Dropping the pool terminates it (as Python's `with Pool() as p:` does) and leaves no process
/// behind.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::Pool;
///
/// let pool = Pool::new(2)?;
/// let squares = pool.map(|x: u64| x * x, 0..10)?;
/// assert_eq!(squares, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
///
/// let pending = pool.apply_async(21, |x: u64| x * 2)?;
/// assert_eq!(pending.get()?, 42);
/// # Ok(())
/// # }
/// ```
pub struct Pool {
    handle: driver::Handle,
    thread: Option<JoinHandle<()>>,
    processes: usize,
    chunksize: Option<usize>,
    closed: AtomicBool,
}

/// Settings for a [`Pool`]: the number of workers, the chunk size, a task limit per worker, an
/// initializer, the start method.
#[must_use]
pub struct PoolBuilder {
    processes: Option<usize>,
    chunksize: Option<usize>,
    max_tasks_per_child: Option<u64>,
    initializer: Option<Result<(InitEntry, Message), PoolError>>,
    start_method: StartMethod,
}

impl Pool {
    /// A pool of `processes` workers (at least 1).
    pub fn new(processes: usize) -> Result<Pool, PoolError> {
        Pool::builder().processes(processes).build()
    }

    /// A builder; its defaults: as many workers as CPUs, Python's chunk sizes, no task limit, no
    /// initializer, [`StartMethod::Spawn`].
    pub fn builder() -> PoolBuilder {
        PoolBuilder {
            processes: None,
            chunksize: None,
            max_tasks_per_child: None,
            initializer: None,
            start_method: StartMethod::default(),
        }
    }

    /// The number of worker processes.
    pub fn processes(&self) -> usize {
        self.processes
    }

    /// Runs `f(args)` in a worker and waits for its result.
    pub fn apply<A, R>(&self, args: A, f: fn(A) -> R) -> Result<R, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        self.apply_async(args, f)?.get()
    }

    /// Runs `f(args)` in a worker; the result comes later. Errors here are the submission's (the
    /// arguments did not serialize, the pool is closed).
    pub fn apply_async<A, R>(&self, args: A, f: fn(A) -> R) -> Result<AsyncResult<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let job = Job::new();
        let args = encode(std::slice::from_ref(&args))?;
        self.submit(&job, worker::chunk_entry(f), vec![(0, 1, args)])?;
        Ok(AsyncResult::new(job, vec![0], job::finish_one::<R>))
    }

    /// Runs `f` on every item of `items` and returns the results in order; the first failed
    /// task's error if any failed (the others still ran).
    pub fn map<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Vec<R>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.map_async(f, items)?.get()
    }

    /// [`map`](Self::map) whose results come later.
    pub fn map_async<A, R, I>(
        &self,
        f: fn(A) -> R,
        items: I,
    ) -> Result<AsyncResult<Vec<R>>, PoolError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        let items: Vec<A> = items.into_iter().collect();
        let count = items.len();
        // Python's default: four chunks per worker.
        let chunksize = self
            .chunksize
            .unwrap_or_else(|| count.div_ceil(4 * self.processes).max(1));
        let job = Job::new();
        let chunks = items
            .chunks(chunksize)
            .enumerate()
            .map(|(i, chunk)| Ok((i * chunksize, chunk.len(), encode(chunk)?)))
            .collect::<Result<Vec<_>, PoolError>>()?;
        let firsts = chunks.iter().map(|(first, _, _)| *first).collect();
        if !chunks.is_empty() {
            self.submit(&job, worker::chunk_entry(f), chunks)?;
        }
        Ok(AsyncResult::new(job, firsts, job::finish_all::<R>))
    }

    /// Runs `f` on the items of `items`, giving results in order as they come. The input is read
    /// lazily, a few chunks ahead of the results taken, so it may be endless or too large to
    /// hold. Chunks of one item unless the builder says otherwise.
    pub fn imap<'a, A, R, I>(&'a self, f: fn(A) -> R, items: I) -> IMap<'a, R>
    where
        A: Serialize + DeserializeOwned + 'a,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A> + 'a,
    {
        self.lazy_map(f, items, true)
    }

    /// [`imap`](Self::imap), giving each result as soon as it is in, whatever its place.
    pub fn imap_unordered<'a, A, R, I>(&'a self, f: fn(A) -> R, items: I) -> IMap<'a, R>
    where
        A: Serialize + DeserializeOwned + 'a,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A> + 'a,
    {
        self.lazy_map(f, items, false)
    }

    fn lazy_map<'a, A, R, I>(&'a self, f: fn(A) -> R, items: I, ordered: bool) -> IMap<'a, R>
    where
        A: Serialize + DeserializeOwned + 'a,
        R: Serialize + DeserializeOwned,
        I: IntoIterator<Item = A> + 'a,
    {
        let job = Job::new();
        let chunksize = self.chunksize.unwrap_or(1);
        let feeder = LazyFeeder {
            pool: self,
            job: job.clone(),
            entry: worker::chunk_entry(f),
            items: items.into_iter(),
            chunksize,
            submitted: 0,
        };
        // Enough to keep every worker busy, few enough to bound what waits.
        let ahead = chunksize * self.processes * 4;
        IMap::new(job, Box::new(feeder), ordered, ahead)
    }

    /// Takes no more tasks; the ones submitted still run. Later submissions fail with
    /// [`PoolError::Closed`].
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            let _ = self.handle.send(Command::Close);
        }
    }

    /// Closes the pool, waits for every submitted task to finish, and stops the workers.
    /// (Python requires `close()` first; here `join` closes.)
    pub fn join(&mut self) {
        self.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Stops the workers now (SIGTERM, then SIGKILL after a second), failing unfinished tasks
    /// with [`PoolError::Terminated`]; returns when every worker is gone.
    pub fn terminate(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        let _ = self.handle.send(Command::Terminate);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Submits chunks of one job: each its first item's index, its length, and its encoded
    /// arguments.
    fn submit(
        &self,
        job: &Arc<Job>,
        entry: ChunkEntry,
        chunks: Vec<(usize, usize, Message)>,
    ) -> Result<(), PoolError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(PoolError::Closed);
        }
        let works = chunks
            .into_iter()
            .map(|(first, len, args)| Work {
                job: job.clone(),
                first,
                len,
                entry,
                args,
            })
            .collect();
        if self.handle.send(Command::Submit(works)).is_err() {
            return Err(if self.closed.load(Ordering::SeqCst) {
                PoolError::Closed
            } else {
                PoolError::Terminated
            });
        }
        Ok(())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.terminate();
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("processes", &self.processes)
            .field("closed", &self.closed.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

impl PoolBuilder {
    /// The number of worker processes (at least 1; default: the number of CPUs).
    pub fn processes(mut self, processes: usize) -> Self {
        self.processes = Some(processes);
        self
    }

    /// Items per task sent to a worker (at least 1). Default: for `map`, a quarter of the items
    /// per worker, as Python; for `imap`, 1.
    pub fn chunksize(mut self, chunksize: usize) -> Self {
        self.chunksize = Some(chunksize.max(1));
        self
    }

    /// A worker exits after this many tasks (chunks) and a new one takes its place. Python:
    /// `maxtasksperchild`.
    #[doc(alias = "maxtasksperchild")]
    pub fn max_tasks_per_child(mut self, tasks: u64) -> Self {
        self.max_tasks_per_child = Some(tasks.max(1));
        self
    }

    /// Runs `f(args)` in each worker before its first task. If it panics, the pool runs no task:
    /// every one fails with [`PoolError::InitializerFailed`] (Python restarts workers forever).
    pub fn initializer<A>(mut self, args: A, f: fn(A)) -> Self
    where
        A: Serialize + DeserializeOwned,
    {
        self.initializer = Some(encode(&args).map(|message| (worker::init_entry(f), message)));
        self
    }

    /// How workers start (default [`StartMethod::Spawn`]).
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = method;
        self
    }

    /// Starts the workers.
    pub fn build(self) -> Result<Pool, PoolError> {
        let processes = self.processes.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        if processes == 0 {
            return Err(PoolError::Spawn {
                message: "a pool needs at least one process".into(),
            });
        }
        if !crate::process::is_initialized() {
            return Err(PoolError::Spawn {
                message: crate::SpawnError::NotInitialized.to_string(),
            });
        }
        let initializer = self.initializer.transpose()?;
        let (handle, thread) = driver::start(Settings {
            processes,
            max_tasks_per_child: self.max_tasks_per_child,
            initializer,
            start_method: self.start_method,
        })?;
        Ok(Pool {
            handle,
            thread: Some(thread),
            processes,
            chunksize: self.chunksize,
            closed: AtomicBool::new(false),
        })
    }
}

impl std::fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("processes", &self.processes)
            .field("chunksize", &self.chunksize)
            .field("max_tasks_per_child", &self.max_tasks_per_child)
            .field("initializer", &self.initializer.is_some())
            .field("start_method", &self.start_method)
            .finish()
    }
}

fn encode<A: Serialize + ?Sized>(args: &A) -> Result<Message, PoolError> {
    transfer::encode(args).map_err(|e| PoolError::Encode {
        message: e.message().to_owned(),
    })
}

/// Reads a lazy map's input and submits it, chunk by chunk.
struct LazyFeeder<'a, I> {
    pool: &'a Pool,
    job: Arc<Job>,
    entry: ChunkEntry,
    items: I,
    chunksize: usize,
    submitted: usize,
}

impl<A: Serialize, I: Iterator<Item = A>> Feeder for LazyFeeder<'_, I> {
    fn feed(&mut self, items: usize) -> Result<(usize, bool), PoolError> {
        let mut batch = Vec::new();
        let mut exhausted = false;
        let mut next = self.submitted;
        while next < items {
            let chunk: Vec<A> = self.items.by_ref().take(self.chunksize).collect();
            if chunk.is_empty() {
                exhausted = true;
                break;
            }
            batch.push((next, chunk.len(), encode(&chunk)?));
            next += chunk.len();
        }
        if !batch.is_empty() {
            self.pool.submit(&self.job, self.entry, batch)?;
            self.submitted = next;
        }
        Ok((self.submitted, exhausted))
    }
}
