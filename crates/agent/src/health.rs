//! Stage heartbeats: each stage thread beats every time around its loop (idle waits
//! included, in steps of at most a second), and a stage whose last beat is older than its
//! bound is *stalled*: stuck in a call that does not return, a lock, an endless loop.
//! `/healthz` answers 503 naming it, `/api/v1/agent` lists each stage's state and age,
//! `/metrics` has `leakwatch_agent_stage_stalled{stage}` and
//! `leakwatch_agent_stage_heartbeat_age_seconds{stage}`.
//!
//! A stage beats through [`beat`], which finds its heartbeat in a thread-local set by
//! [`enter`] when the stage thread starts, so code shared by several stages (a capture
//! command, a scrape) can beat without being handed anything.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The smallest default stall bound: below it a busy host's ordinary pauses (a detection
/// pass over a large history, retention, a swapping host) could be mistaken for a stuck
/// stage.
pub const DEFAULT_STALL_FLOOR: Duration = Duration::from_secs(60);

/// The default bound of a stage's heartbeat: ten intervals, and at least a minute.
pub fn default_stall_after(interval: Duration) -> Duration {
    interval.saturating_mul(10).max(DEFAULT_STALL_FLOOR)
}

/// One stage's heartbeat.
#[derive(Debug)]
pub struct Heartbeat {
    pub name: String,
    /// Beyond this since the last beat, the stage is stalled.
    pub bound: Duration,
    /// Milliseconds from [`Heartbeats::started`] to the last beat.
    last_ms: AtomicU64,
    /// The stage's loop returned (the agent is stopping, or the stage has nothing to do,
    /// e.g. no gauge endpoints configured): no longer expected to beat.
    finished: AtomicBool,
    started: Instant,
}

impl Heartbeat {
    fn beat(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }
}

/// A stage's state as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageState {
    Running,
    Stalled,
    Finished,
}

impl StageState {
    pub fn as_str(self) -> &'static str {
        match self {
            StageState::Running => "running",
            StageState::Stalled => "stalled",
            StageState::Finished => "finished",
        }
    }
}

/// One stage in a report.
#[derive(Debug, Clone)]
pub struct StageReport {
    pub name: String,
    pub state: StageState,
    /// Since the last beat.
    pub age: Duration,
    pub bound: Duration,
}

/// Every stage's heartbeat.
#[derive(Debug)]
pub struct Heartbeats {
    started: Instant,
    stages: Mutex<Vec<Arc<Heartbeat>>>,
}

impl Default for Heartbeats {
    fn default() -> Self {
        Heartbeats {
            started: Instant::now(),
            stages: Mutex::default(),
        }
    }
}

impl Heartbeats {
    /// A new stage, beating now.
    pub fn register(&self, name: &str, bound: Duration) -> Arc<Heartbeat> {
        let heartbeat = Arc::new(Heartbeat {
            name: name.to_string(),
            bound,
            last_ms: AtomicU64::new(0),
            finished: AtomicBool::new(false),
            started: self.started,
        });
        heartbeat.beat();
        let mut stages = self.stages.lock().unwrap_or_else(|e| e.into_inner());
        stages.push(heartbeat.clone());
        heartbeat
    }

    /// Every stage, in the order they started.
    pub fn report(&self) -> Vec<StageReport> {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let stages = self.stages.lock().unwrap_or_else(|e| e.into_inner());
        stages
            .iter()
            .map(|h| {
                let age =
                    Duration::from_millis(now.saturating_sub(h.last_ms.load(Ordering::Relaxed)));
                let state = if h.finished.load(Ordering::Relaxed) {
                    StageState::Finished
                } else if age > h.bound {
                    StageState::Stalled
                } else {
                    StageState::Running
                };
                StageReport {
                    name: h.name.clone(),
                    state,
                    age,
                    bound: h.bound,
                }
            })
            .collect()
    }

    /// The stalled stages, if any.
    pub fn stalled(&self) -> Vec<StageReport> {
        self.report()
            .into_iter()
            .filter(|s| s.state == StageState::Stalled)
            .collect()
    }
}

thread_local! {
    /// This thread's stage, and (the `stall:` failpoint) when its stall ends.
    static CURRENT: RefCell<Option<(Arc<Heartbeat>, Option<Stall>)>> = const { RefCell::new(None) };
}

/// The test failpoint `LEAKWATCH_FAILPOINT=stall:NAME`: the stage's first beat does not
/// return, as if stuck, until this says the agent is stopping (so it can still exit).
pub type Stall = Box<dyn Fn() -> bool>;

/// Makes this thread the stage of `heartbeat` (for [`beat`]).
pub fn enter(heartbeat: Arc<Heartbeat>, stall: Option<Stall>) {
    CURRENT.with(|current| *current.borrow_mut() = Some((heartbeat, stall)));
}

/// Marks this thread's stage finished: its loop returned.
pub fn finish() {
    CURRENT.with(|current| {
        if let Some((heartbeat, _)) = current.borrow_mut().take() {
            heartbeat.finished.store(true, Ordering::Relaxed);
        }
    });
}

/// This thread's stage is alive. Called every time around a stage's loop and between the
/// slow steps of one pass; does nothing on a thread that is not a stage.
pub fn beat() {
    CURRENT.with(|current| {
        if let Some((heartbeat, stall)) = current.borrow().as_ref() {
            if let Some(stopping) = stall {
                while !stopping() {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            heartbeat.beat();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_that_stops_beating_is_stalled_and_a_finished_one_is_not() {
        let beats = Heartbeats::default();
        let quick = beats.register("quick", Duration::from_millis(50));
        let done = beats.register("done", Duration::from_millis(50));
        done.finished.store(true, Ordering::Relaxed);
        assert_eq!(beats.report()[0].state, StageState::Running);
        std::thread::sleep(Duration::from_millis(120));
        let report = beats.report();
        assert_eq!(report[0].state, StageState::Stalled);
        assert!(report[0].age >= Duration::from_millis(100));
        assert_eq!(report[1].state, StageState::Finished);
        quick.beat();
        assert!(beats.stalled().is_empty());
    }

    #[test]
    fn the_default_bound_is_ten_intervals_and_at_least_a_minute() {
        assert_eq!(
            default_stall_after(Duration::from_secs(1)),
            Duration::from_secs(60)
        );
        assert_eq!(
            default_stall_after(Duration::from_secs(30)),
            Duration::from_secs(300)
        );
    }
}
