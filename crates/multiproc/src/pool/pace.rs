//! How many chunks a worker should have in flight: enough that it never waits for its next one,
//! few enough that work does not queue behind a slow worker while another one idles.
//!
//! The driver estimates each worker's time per chunk from when their results come in, and gives
//! it about [`QUEUED_WORK`] of chunks: for tasks of microseconds, many (a wake-up costs more than
//! the task); for tasks of milliseconds, two (one running, one ready).

use std::time::{Duration, Instant};

/// The work a worker should have queued, by the estimate.
const QUEUED_WORK: Duration = Duration::from_micros(100);

/// Chunks in flight before anything is known.
const START: usize = 4;

/// Chunks in flight at least (one running, one ready) and at most.
const MIN: usize = 2;
const MAX: usize = 32;

/// One worker's pace.
#[derive(Debug, Default)]
pub(crate) struct Pace {
    /// Time per chunk, smoothed.
    per_chunk: Option<Duration>,
    last_done: Option<Instant>,
}

impl Pace {
    /// How many chunks the worker should have in flight now.
    pub(crate) fn depth(&self) -> usize {
        match self.per_chunk {
            None => START,
            Some(per_chunk) => {
                let depth = QUEUED_WORK.as_nanos() / per_chunk.as_nanos().max(1);
                usize::try_from(depth).unwrap_or(MAX).clamp(MIN, MAX)
            }
        }
    }

    /// A chunk sent at `sent` is done: it ran from then, or from the previous chunk's end if
    /// that came later (it waited behind it).
    pub(crate) fn chunk_done(&mut self, sent: Instant) {
        let now = Instant::now();
        let began = self.last_done.map_or(sent, |last| last.max(sent));
        let sample = now.saturating_duration_since(began);
        self.per_chunk = Some(match self.per_chunk {
            None => sample,
            Some(estimate) => (estimate * 7 + sample) / 8,
        });
        self.last_done = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paced(per_chunk: Duration) -> Pace {
        Pace {
            per_chunk: Some(per_chunk),
            last_done: None,
        }
    }

    #[test]
    fn fast_chunks_get_a_deep_queue_and_slow_ones_a_shallow_one() {
        assert_eq!(Pace::default().depth(), START);
        assert_eq!(paced(Duration::from_nanos(500)).depth(), MAX);
        assert_eq!(paced(Duration::from_micros(10)).depth(), 10);
        assert_eq!(paced(Duration::from_millis(5)).depth(), MIN);
        assert_eq!(paced(Duration::ZERO).depth(), MAX);
    }

    #[test]
    fn a_chunk_that_waited_behind_another_counts_from_that_ones_end() {
        let mut pace = Pace::default();
        let sent = Instant::now();
        pace.chunk_done(sent);
        let first = pace.per_chunk.expect("one sample");
        // Sent long before, but done right after the previous one: a short chunk.
        pace.chunk_done(sent - Duration::from_secs(1));
        assert!(pace.per_chunk.expect("two samples") < first + Duration::from_millis(100));
    }
}
