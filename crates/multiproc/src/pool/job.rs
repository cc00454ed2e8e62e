//! Jobs: where a submission's results arrive, and the handles that wait for them
//! ([`AsyncResult`], [`IMap`]).

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::PoolError;
use crate::transfer::{self, Message};

/// The results of one submission (an `apply`, a `map`, an `imap`), filled by the driver.
#[derive(Default)]
pub(crate) struct Job {
    state: Mutex<JobState>,
    changed: Condvar,
}

#[derive(Default)]
struct JobState {
    /// Results not yet taken, by item index.
    ready: HashMap<usize, Result<Message, PoolError>>,
    /// Indexes in the order their results came.
    order: VecDeque<usize>,
}

impl Job {
    pub(crate) fn new() -> Arc<Job> {
        Arc::default()
    }

    fn lock(&self) -> MutexGuard<'_, JobState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores the results of items `first..` (the driver), waking waiters once.
    pub(crate) fn complete_all(
        &self,
        first: usize,
        results: impl IntoIterator<Item = Result<Message, PoolError>>,
    ) {
        let mut state = self.lock();
        for (i, result) in results.into_iter().enumerate() {
            state.ready.insert(first + i, result);
            state.order.push_back(first + i);
        }
        self.changed.notify_all();
    }

    /// Waits until `ready` holds for the state, or `deadline`; returns what `take` made of it.
    fn wait_for<T>(
        &self,
        deadline: Option<Instant>,
        mut take: impl FnMut(&mut JobState) -> Option<T>,
    ) -> Option<T> {
        let mut state = self.lock();
        loop {
            if let Some(value) = take(&mut state) {
                return Some(value);
            }
            state = match deadline {
                None => self.changed.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    self.changed
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// Takes item `index`'s result, waiting until `deadline`.
    pub(crate) fn take(
        &self,
        index: usize,
        deadline: Option<Instant>,
    ) -> Option<Result<Message, PoolError>> {
        // `order` keeps the index: `take_any` skips the indexes already taken.
        self.wait_for(deadline, |state| state.ready.remove(&index))
    }

    /// Takes the result that came first, with its index, waiting until `deadline`.
    pub(crate) fn take_any(
        &self,
        deadline: Option<Instant>,
    ) -> Option<(usize, Result<Message, PoolError>)> {
        self.wait_for(deadline, |state| {
            while let Some(index) = state.order.pop_front() {
                if let Some(result) = state.ready.remove(&index) {
                    return Some((index, result));
                }
            }
            None
        })
    }

    /// Whether results for items `0..count` are all in.
    fn has_all(&self, count: usize) -> bool {
        let state = self.lock();
        (0..count).all(|i| state.ready.contains_key(&i))
    }

    /// Waits until results for items `0..count` are all in, or `deadline`.
    fn wait_all(&self, count: usize, deadline: Option<Instant>) -> bool {
        self.wait_for(deadline, |state| {
            (0..count)
                .all(|i| state.ready.contains_key(&i))
                .then_some(())
        })
        .is_some()
    }
}

/// Decodes one item's result as an `R`.
pub(crate) fn decode<R: DeserializeOwned>(
    result: Result<Message, PoolError>,
) -> Result<R, PoolError> {
    transfer::decode(result?).map_err(|e| PoolError::ResultDecode {
        message: e.message().to_owned(),
    })
}

/// A result to come: of [`Pool::apply_async`](super::Pool::apply_async) (an `R`) or
/// [`Pool::map_async`](super::Pool::map_async) (a `Vec`). Python's `AsyncResult`.
#[must_use = "the result is lost unless you get it"]
pub struct AsyncResult<R> {
    job: Arc<Job>,
    count: usize,
    taken: bool,
    finish: fn(&Job, usize) -> Result<R, PoolError>,
    _result: PhantomData<fn() -> R>,
}

impl<R> AsyncResult<R> {
    pub(crate) fn new(
        job: Arc<Job>,
        count: usize,
        finish: fn(&Job, usize) -> Result<R, PoolError>,
    ) -> Self {
        AsyncResult {
            job,
            count,
            taken: false,
            finish,
            _result: PhantomData,
        }
    }

    /// Whether the result is in.
    pub fn ready(&self) -> bool {
        self.job.has_all(self.count)
    }

    /// Waits until the result is in.
    pub fn wait(&self) {
        self.job.wait_all(self.count, None);
    }

    /// Waits at most `timeout` for the result; returns whether it is in.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.job
            .wait_all(self.count, Some(Instant::now() + timeout))
    }

    /// The result, waiting for it as long as it takes. A task that failed (panicked, or its worker
    /// died) is its error.
    pub fn get(self) -> Result<R, PoolError> {
        if self.taken {
            return Err(PoolError::AlreadyTaken);
        }
        self.wait();
        (self.finish)(&self.job, self.count)
    }

    /// The result, waiting at most `timeout` ([`PoolError::Timeout`]: the task goes on; ask
    /// again). Once given, the result is taken: a later call is [`PoolError::AlreadyTaken`].
    pub fn get_timeout(&mut self, timeout: Duration) -> Result<R, PoolError> {
        if self.taken {
            return Err(PoolError::AlreadyTaken);
        }
        if !self.wait_timeout(timeout) {
            return Err(PoolError::Timeout);
        }
        self.taken = true;
        (self.finish)(&self.job, self.count)
    }
}

/// The result of one item.
pub(crate) fn finish_one<R: DeserializeOwned>(job: &Job, _count: usize) -> Result<R, PoolError> {
    decode(job.take(0, None).expect("waited for"))
}

/// The results of items `0..count`, in order; the first failure if any failed.
pub(crate) fn finish_all<R: DeserializeOwned>(
    job: &Job,
    count: usize,
) -> Result<Vec<R>, PoolError> {
    (0..count)
        .map(|i| decode(job.take(i, None).expect("waited for")))
        .collect()
}

/// Feeds a pool with the next items of an input; one per lazy map.
pub(crate) trait Feeder {
    /// Submits up to `chunks` more chunks; returns how many items were submitted in all so far,
    /// and whether the input is exhausted.
    fn feed(&mut self, chunks: usize) -> Result<(usize, bool), PoolError>;
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
    /// Results taken so far.
    taken: usize,
    ahead: usize,
    _result: PhantomData<fn() -> R>,
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
            _result: PhantomData,
        }
    }

    /// The next result, waiting at most `timeout` ([`PoolError::Timeout`]: the item is still to
    /// come, ask again). `None` at the end. Python: `next(timeout)`.
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<R, PoolError>> {
        self.next_until(Some(Instant::now() + timeout))
    }

    fn next_until(&mut self, deadline: Option<Instant>) -> Option<Result<R, PoolError>> {
        if !self.exhausted && self.submitted < self.taken + self.ahead {
            match self.feeder.feed(self.ahead) {
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
        let result = if self.ordered {
            self.job.take(self.taken, deadline)
        } else {
            self.job.take_any(deadline).map(|(_, result)| result)
        };
        let Some(result) = result else {
            return Some(Err(PoolError::Timeout));
        };
        self.taken += 1;
        Some(decode(result))
    }
}

impl<R: DeserializeOwned> Iterator for IMap<'_, R> {
    type Item = Result<R, PoolError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_until(None)
    }
}
