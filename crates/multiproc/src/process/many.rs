//! [`join_all`]: processes started together and joined together.

use super::{Process, SpawnError};

/// Starts every process `processes` yields, then joins them all, in order, and returns what each
/// returned: the "start them all, join them all" of Python's
/// `ps = [Process(...) for i in ...]; for p in ps: p.start(); for p in ps: p.join()`, in one
/// call. The iterator is drained before the first join, so the processes run side by side (a lazy
/// `map(|i| Process::spawn(..))` is the usual argument).
///
/// A start that fails is returned at once: the processes already started run on, detached, as
/// when a [`Process`] is dropped (joining them could wait forever for one that waits for its
/// siblings, a barrier of all of them). A join that fails does not stop the others from being
/// joined; the first failure is returned.
///
/// ```
/// # fn main() -> multiproc::Result<()> {
/// # multiproc::init();
/// use multiproc::Process;
///
/// fn square(n: u64) -> u64 {
///     n * n
/// }
/// let squares = multiproc::join_all((1..=4).map(|n| Process::spawn(n, square)))?;
/// assert_eq!(squares, [1, 4, 9, 16]);
/// # Ok(())
/// # }
/// ```
#[doc(alias = "join")]
pub fn join_all<R: serde::de::DeserializeOwned>(
    processes: impl IntoIterator<Item = Result<Process<R>, SpawnError>>,
) -> crate::Result<Vec<R>> {
    let started = processes.into_iter().collect::<Result<Vec<_>, _>>()?;
    let mut results = Vec::with_capacity(started.len());
    let mut failed_join = None;
    for process in started {
        match process.join() {
            Ok(result) => results.push(result),
            Err(e) => {
                failed_join.get_or_insert(e);
            }
        }
    }
    match failed_join {
        Some(e) => Err(e.into()),
        None => Ok(results),
    }
}
