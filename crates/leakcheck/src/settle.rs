//! Waiting for a process to settle after a round of work: sample with backoff until two
//! consecutive samples agree, within a time budget.
//!
//! A round ends when the workload returns, but the process under test may still be
//! finishing it: a worker thread exiting, a FIN arriving that turns ESTABLISHED into
//! CLOSE_WAIT, a pool closing an idle connection. Comparing the first sample after a round
//! would count those as growth or miss them; waiting a fixed time is either slow or flaky.

use crate::rules::{agree, differing, Counts, Key};
use std::io;
use std::time::{Duration, Instant};

/// The first pause between samples; it doubles up to [`MAX_DELAY`].
pub const FIRST_DELAY: Duration = Duration::from_millis(25);
pub const MAX_DELAY: Duration = Duration::from_millis(400);

/// The counts a settle loop ended with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub counts: Counts,
    /// Whether two consecutive samples agreed before the budget ran out.
    pub settled: bool,
    /// When it did not settle: the resources that were still changing.
    pub still_changing: Vec<Key>,
    pub waited: Duration,
}

/// Samples until two consecutive samples agree on every count but memory, or `budget` is
/// spent; then returns the last sample either way. An error from `sample` ends the wait.
pub fn settle(
    budget: Duration,
    mut sample: impl FnMut() -> io::Result<Counts>,
) -> io::Result<Settled> {
    let started = Instant::now();
    let mut previous = sample()?;
    let mut delay = FIRST_DELAY;
    let mut still_changing = Vec::new();
    loop {
        let remaining = budget.saturating_sub(started.elapsed());
        if remaining.is_zero() {
            return Ok(Settled {
                counts: previous,
                settled: false,
                still_changing,
                waited: started.elapsed(),
            });
        }
        std::thread::sleep(delay.min(remaining));
        let current = sample()?;
        if agree(&previous, &current) {
            return Ok(Settled {
                counts: current,
                settled: true,
                still_changing: Vec::new(),
                waited: started.elapsed(),
            });
        }
        still_changing = differing(&previous, &current);
        previous = current;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Key;

    fn threads(n: u64) -> Counts {
        [(Key::thread_group("worker-#"), n)].into_iter().collect()
    }

    #[test]
    fn returns_once_two_samples_agree() {
        let mut series = [5, 4, 3, 3, 3].into_iter();
        let settled = settle(Duration::from_secs(10), || {
            Ok(threads(series.next().unwrap()))
        })
        .unwrap();
        assert!(settled.settled);
        assert_eq!(settled.counts, threads(3));
        // 25 + 50 + 100 ms of pauses, far below the budget.
        assert!(settled.waited < Duration::from_secs(2), "{settled:?}");
    }

    #[test]
    fn gives_up_at_the_budget_and_says_what_kept_changing() {
        let mut n = 0;
        let settled = settle(Duration::from_millis(200), || {
            n += 1;
            Ok(threads(n))
        })
        .unwrap();
        assert!(!settled.settled);
        assert_eq!(settled.still_changing, vec![Key::thread_group("worker-#")]);
        assert!(settled.waited >= Duration::from_millis(200));
        assert!(settled.waited < Duration::from_secs(2));
    }

    #[test]
    fn a_sampling_error_ends_the_wait() {
        let mut calls = 0;
        let error = settle(Duration::from_secs(10), || {
            calls += 1;
            if calls == 2 {
                Err(io::Error::other("process exited"))
            } else {
                Ok(threads(calls))
            }
        })
        .unwrap_err();
        assert_eq!(error.to_string(), "process exited");
    }
}
