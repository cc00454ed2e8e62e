//! Jobs: where a submission's results arrive, chunk by chunk, and the handles that wait for them
//! ([`AsyncResult`], [`IMap`]). A chunk's results stay encoded until the waiting thread, which
//! knows their type, decodes them.

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::PoolError;
use crate::deadline::{self, Timeout};
use crate::transfer::{self, Message};

/// One chunk's results: `len` items, encoded together, or one error for all of them.
pub(crate) struct ChunkResult {
    pub(crate) len: usize,
    pub(crate) outcome: Result<Message, PoolError>,
}

impl ChunkResult {
    /// The chunk's results, one per item.
    fn decode<R: DeserializeOwned>(self) -> Vec<Result<R, PoolError>> {
        let decoded = self.outcome.and_then(|message| {
            transfer::decode::<Result<Vec<Result<R, PoolError>>, PoolError>>(message).map_err(
                |e| PoolError::ResultDecode {
                    message: e.message().to_owned(),
                },
            )?
        });
        let error = match decoded {
            Ok(results) if results.len() == self.len => return results,
            Ok(results) => PoolError::ResultDecode {
                message: format!("{} results for {} items", results.len(), self.len),
            },
            Err(error) => error,
        };
        (0..self.len).map(|_| Err(error.clone())).collect()
    }
}

/// The results of one submission (an `apply`, a `map`, an `imap`), filled by the driver.
#[derive(Default)]
pub(crate) struct Job {
    state: Mutex<JobState>,
    changed: Condvar,
}

#[derive(Default)]
struct JobState {
    /// Chunks in and not yet taken, by their first item's index.
    ready: HashMap<usize, ChunkResult>,
    /// First indexes in the order their chunks came (taken ones are skipped).
    order: VecDeque<usize>,
    /// Chunks arrived so far.
    arrived: usize,
    /// Threads waiting, and the arrival count that is worth waking them for.
    waiters: usize,
    wanted: usize,
}

impl Job {
    pub(crate) fn new() -> Arc<Job> {
        Arc::default()
    }

    fn lock(&self) -> MutexGuard<'_, JobState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores the results of the chunk starting at item `first` (the driver).
    pub(crate) fn complete(&self, first: usize, result: ChunkResult) {
        let mut state = self.lock();
        state.ready.insert(first, result);
        state.order.push_back(first);
        state.arrived += 1;
        if state.waiters > 0 && state.arrived >= state.wanted {
            self.changed.notify_all();
        }
    }

    /// Waits until `take` gives something, or `deadline`; `wanted`: the arrival count before
    /// which looking again is useless (0: look at every arrival).
    fn wait_for<T>(
        &self,
        deadline: Option<Instant>,
        wanted: usize,
        mut take: impl FnMut(&mut JobState) -> Option<T>,
    ) -> Option<T> {
        let mut state = self.lock();
        loop {
            if let Some(value) = take(&mut state) {
                return Some(value);
            }
            let left = deadline::remaining(deadline);
            if left == Some(Duration::ZERO) {
                return None;
            }
            state.waiters += 1;
            state.wanted = wanted;
            state = match left {
                None => self.changed.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(left) => {
                    self.changed
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            state.waiters -= 1;
        }
    }

    /// Takes the chunk starting at item `first`, waiting until `deadline`.
    fn take(&self, first: usize, deadline: Option<Instant>) -> Option<ChunkResult> {
        self.wait_for(deadline, 0, |state| state.ready.remove(&first))
    }

    /// Takes the chunk that came first, waiting until `deadline`.
    fn take_any(&self, deadline: Option<Instant>) -> Option<ChunkResult> {
        self.wait_for(deadline, 0, |state| {
            while let Some(first) = state.order.pop_front() {
                if let Some(result) = state.ready.remove(&first) {
                    return Some(result);
                }
            }
            None
        })
    }

    /// Waits until `count` chunks are in (the whole job of an `AsyncResult`, none taken yet),
    /// or `deadline`.
    fn wait_all(&self, count: usize, deadline: Option<Instant>) -> bool {
        self.wait_for(deadline, count, |state| {
            (state.arrived >= count).then_some(())
        })
        .is_some()
    }
}

/// A result to come: of [`Pool::apply_async`](super::Pool::apply_async) (an `R`) or
/// [`Pool::map_async`](super::Pool::map_async) (a `Vec`). Python's `AsyncResult`.
#[must_use = "the result is lost unless you get it"]
pub struct AsyncResult<R> {
    job: Arc<Job>,
    /// The first item of each chunk.
    firsts: Vec<usize>,
    taken: bool,
    finish: fn(&Job, &[usize]) -> Result<R, PoolError>,
    _result: PhantomData<fn() -> R>,
}

impl<R> AsyncResult<R> {
    pub(crate) fn new(
        job: Arc<Job>,
        firsts: Vec<usize>,
        finish: fn(&Job, &[usize]) -> Result<R, PoolError>,
    ) -> Self {
        AsyncResult {
            job,
            firsts,
            taken: false,
            finish,
            _result: PhantomData,
        }
    }

    /// Whether the result is in (Python's `ready()`; [`try_wait`](Self::try_wait) is the same in
    /// the shape of the waiting family).
    pub fn ready(&self) -> bool {
        self.try_wait().is_ok()
    }

    /// Waits until the result is in, as long as it takes.
    pub fn wait(&self) {
        self.job.wait_all(self.firsts.len(), None);
    }

    /// Succeeds if the result is in now, else [`Timeout`].
    pub fn try_wait(&self) -> Result<(), Timeout> {
        self.wait_until(Some(Instant::now()))
    }

    /// Waits at most `timeout` for the result (`Duration::MAX`: as long as it takes), else
    /// [`Timeout`]. Python: `wait(timeout)`, after which `ready()` says whether it came.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), Timeout> {
        self.wait_until(deadline::after(timeout))
    }

    /// Waits until `deadline` for the result, else [`Timeout`].
    pub fn wait_deadline(&self, deadline: Instant) -> Result<(), Timeout> {
        self.wait_until(Some(deadline))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<(), Timeout> {
        self.job
            .wait_all(self.firsts.len(), deadline)
            .then_some(())
            .ok_or(Timeout)
    }

    /// The result, waiting for it as long as it takes. A task that failed (panicked, or its worker
    /// died) is its error.
    pub fn get(mut self) -> Result<R, PoolError> {
        self.get_until(None)
    }

    /// The result if it is in now, else [`PoolError::Timeout`] (the task goes on; ask again). Once
    /// given, the result is taken: a later call is [`PoolError::AlreadyTaken`].
    pub fn try_get(&mut self) -> Result<R, PoolError> {
        self.get_until(Some(Instant::now()))
    }

    /// The result, waiting at most `timeout` (`Duration::MAX`: as long as it takes);
    /// [`PoolError::Timeout`] as for [`try_get`](Self::try_get). Python: `get(timeout)`.
    pub fn get_timeout(&mut self, timeout: Duration) -> Result<R, PoolError> {
        self.get_until(deadline::after(timeout))
    }

    /// The result, waiting until `deadline`; [`PoolError::Timeout`] as for
    /// [`try_get`](Self::try_get).
    pub fn get_deadline(&mut self, deadline: Instant) -> Result<R, PoolError> {
        self.get_until(Some(deadline))
    }

    fn get_until(&mut self, deadline: Option<Instant>) -> Result<R, PoolError> {
        if self.taken {
            return Err(PoolError::AlreadyTaken);
        }
        self.wait_until(deadline)
            .map_err(|Timeout| PoolError::Timeout)?;
        self.taken = true;
        (self.finish)(&self.job, &self.firsts)
    }
}

/// The result of a one-item job.
pub(crate) fn finish_one<R: DeserializeOwned>(
    job: &Job,
    _firsts: &[usize],
) -> Result<R, PoolError> {
    let chunk = job.take(0, None).expect("waited for");
    chunk
        .decode()
        .into_iter()
        .next()
        .unwrap_or(Err(PoolError::ResultDecode {
            message: "no result".into(),
        }))
}

/// The results of every item, in order; the first failure if any failed.
pub(crate) fn finish_all<R: DeserializeOwned>(
    job: &Job,
    firsts: &[usize],
) -> Result<Vec<R>, PoolError> {
    let mut all = Vec::new();
    for &first in firsts {
        for result in job.take(first, None).expect("waited for").decode() {
            all.push(result?);
        }
    }
    Ok(all)
}

/// Feeds a pool with the next items of an input; one per lazy map.
pub(crate) trait Feeder {
    /// Submits chunks until `items` items are submitted in all (or the input ends); returns how
    /// many are, and whether the input is exhausted.
    fn feed(&mut self, items: usize) -> Result<(usize, bool), PoolError>;
}

/// The results of [`Pool::imap`](super::Pool::imap) or
/// [`Pool::imap_unordered`](super::Pool::imap_unordered), as they come. Inputs are read and
/// submitted as results are taken, a few chunks ahead, so an input too large to hold works.
pub struct IMap<'a, R> {
    job: Arc<Job>,
    feeder: Box<dyn Feeder + 'a>,
    ordered: bool,
    /// Items submitted so far, and whether the input is exhausted.
    submitted: usize,
    exhausted: bool,
    /// Items whose chunk was taken (their results are given or in `decoded`).
    taken: usize,
    /// Items submitted ahead of the results taken.
    ahead: usize,
    decoded: VecDeque<Result<R, PoolError>>,
}

impl<'a, R: DeserializeOwned> IMap<'a, R> {
    pub(crate) fn new(
        job: Arc<Job>,
        feeder: Box<dyn Feeder + 'a>,
        ordered: bool,
        ahead: usize,
    ) -> Self {
        IMap {
            job,
            feeder,
            ordered,
            submitted: 0,
            exhausted: false,
            taken: 0,
            ahead,
            decoded: VecDeque::new(),
        }
    }

    /// The next result if it is in now ([`PoolError::Timeout`]: it is still to come, ask again).
    /// `None` at the end.
    pub fn try_next(&mut self) -> Option<Result<R, PoolError>> {
        self.next_until(Some(Instant::now()))
    }

    /// The next result, waiting at most `timeout` (`Duration::MAX`: as long as it takes;
    /// [`PoolError::Timeout`]: the item is still to come, ask again). `None` at the end. Python:
    /// `next(timeout)`.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<R, PoolError>> {
        self.next_until(deadline::after(timeout))
    }

    /// The next result, waiting until `deadline` (see [`next_timeout`](Self::next_timeout)).
    pub fn next_deadline(&mut self, deadline: Instant) -> Option<Result<R, PoolError>> {
        self.next_until(Some(deadline))
    }

    fn next_until(&mut self, deadline: Option<Instant>) -> Option<Result<R, PoolError>> {
        if let Some(result) = self.decoded.pop_front() {
            return Some(result);
        }
        if !self.exhausted {
            match self.feeder.feed(self.taken + self.ahead) {
                Ok((submitted, exhausted)) => {
                    self.submitted = submitted;
                    self.exhausted = exhausted;
                }
                Err(e) => {
                    // Nothing more can be submitted: report it once, then end after what is in.
                    self.exhausted = true;
                    return Some(Err(e));
                }
            }
        }
        if self.taken == self.submitted {
            return None;
        }
        let chunk = if self.ordered {
            self.job.take(self.taken, deadline)
        } else {
            self.job.take_any(deadline)
        };
        let Some(chunk) = chunk else {
            return Some(Err(PoolError::Timeout));
        };
        self.taken += chunk.len;
        self.decoded = chunk.decode().into();
        self.decoded.pop_front()
    }
}

impl<R: DeserializeOwned> Iterator for IMap<'_, R> {
    type Item = Result<R, PoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_until(None)
    }
}

impl<R> std::fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.ready())
            .field("taken", &self.taken)
            .finish_non_exhaustive()
    }
}

impl<R> std::fmt::Debug for IMap<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IMap")
            .field("ordered", &self.ordered)
            .field("submitted", &self.submitted)
            .field("taken", &self.taken)
            .field("exhausted", &self.exhausted)
            .finish_non_exhaustive()
    }
}
