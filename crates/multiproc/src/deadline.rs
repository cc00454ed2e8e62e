//! What every blocking family shares: a timeout is a deadline, and a deadline too far to represent
//! is none.
//!
//! Each operation that can wait comes as `op`, `try_op`, `op_timeout(Duration)` and
//! `op_deadline(Instant)`. `op_timeout(d)` is `op_deadline(now + d)` and `try_op` is the same wait
//! with a deadline that has already come; all three give the same error type, whose "not ready"
//! variant is `Full` or `Empty` for queues (as Python's `queue.Full` and `queue.Empty`) and
//! `Timeout` everywhere else. An operation whose blocking form cannot fail gives [`Timeout`].

use std::time::{Duration, Instant};

/// `now + timeout`, or `None` (no deadline: wait as long as it takes) when that instant is too far
/// to represent: `Duration::MAX` waits forever instead of panicking.
pub(crate) fn after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// How long until `deadline` (`None`: forever); `Some(ZERO)` once it has passed.
pub(crate) fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// Whether `deadline` has come (never, for no deadline).
pub(crate) fn passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// The `_while` form of a condition's wait: waits with `wait` (until `deadline`) as long as
/// `condition` holds. A wait that ends at the deadline after the condition stopped holding is a
/// success; one that ends with the condition still holding is its timeout error.
pub(crate) fn wait_while<E>(
    deadline: Option<Instant>,
    mut condition: impl FnMut() -> bool,
    mut wait: impl FnMut(Option<Instant>) -> Result<(), E>,
    is_timeout: impl Fn(&E) -> bool,
) -> Result<(), E> {
    while condition() {
        match wait(deadline) {
            Err(e) if is_timeout(&e) && !condition() => return Ok(()),
            other => other?,
        }
    }
    Ok(())
}

/// A wait ended at its deadline before what it waited for happened: the error of `try_op`,
/// `op_timeout` and `op_deadline` where the blocking `op` cannot fail
/// ([`Semaphore`](crate::Semaphore), [`Event`](crate::Event),
/// [`JoinableQueue::join`](crate::JoinableQueue::join),
/// [`AsyncResult::wait`](crate::AsyncResult::wait)). For a `try_` form, the deadline is now.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error, serde::Serialize, serde::Deserialize,
)]
#[error("the wait ended at its deadline")]
#[doc(alias = "WouldBlock")]
pub struct Timeout;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_too_far_to_represent_is_no_deadline() {
        assert_eq!(after(Duration::MAX), None);
        assert!(after(Duration::from_secs(1)).is_some());
        assert_eq!(remaining(None), None);
        assert!(!passed(None));
        assert!(passed(Some(Instant::now())));
        assert_eq!(remaining(Some(Instant::now())), Some(Duration::ZERO));
    }
}
