//! Whole-suite mode: run a test binary's tests in parallel and check for leaks once, after
//! all of them, like goleak's `VerifyTestMain`.
//!
//! Per-test guards cannot attribute resources while tests run in parallel in one process,
//! and serialising every test is slow. Checking once at the end still catches what any
//! test left behind, at the cost of not saying which one; rerun the suite with a filter
//! (or per-test guards) to find it.

use crate::guard::{Config, Guard, Report};
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

type TestFn = Box<dyn Fn() + Send + Sync>;

/// A minimal test runner for a `harness = false` test target that checks the whole process
/// for leaks after the last test.
///
/// In `Cargo.toml`:
/// ```toml
/// [[test]]
/// name = "suite"
/// harness = false
/// ```
/// and in `tests/suite.rs`:
/// ```no_run
/// fn parses() { assert_eq!("42".parse::<u32>().unwrap(), 42); }
/// fn round_trips_a_file() {
///     let file = tempfile::tempfile().unwrap();
///     drop(file);
/// }
///
/// fn main() -> std::process::ExitCode {
///     leakcheck::Suite::new()
///         .test("parses", parses)
///         .test("round_trips_a_file", round_trips_a_file)
///         .run()
/// }
/// ```
/// `cargo test --test suite -- FILTER` runs the tests whose name contains `FILTER`;
/// `--test-threads N` bounds how many run at once (default: the number of CPUs). The exit
/// code is 1 when a test failed or something leaked, 0 otherwise.
pub struct Suite {
    config: Config,
    tests: Vec<(String, TestFn)>,
    threads: Option<usize>,
}

impl Default for Suite {
    fn default() -> Self {
        Suite::new()
    }
}

/// What a suite run found.
#[derive(Debug)]
pub struct Outcome {
    pub passed: Vec<String>,
    pub failed: Vec<String>,
    pub filtered_out: usize,
    /// What the tests left behind, all together.
    pub leaks: Option<Report>,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.failed.is_empty() && self.leaks.is_none()
    }
}

impl Suite {
    pub fn new() -> Suite {
        Suite::with_config(Config::default())
    }

    /// Settle time, ignore rules and checked classes come from `config`.
    pub fn with_config(config: Config) -> Suite {
        Suite {
            config,
            tests: Vec::new(),
            threads: None,
        }
    }

    pub fn test(mut self, name: &str, test: impl Fn() + Send + Sync + 'static) -> Suite {
        self.tests.push((name.to_string(), Box::new(test)));
        self
    }

    /// At most this many tests at once (overridden by `--test-threads`).
    pub fn threads(mut self, threads: usize) -> Suite {
        self.threads = Some(threads.max(1));
        self
    }

    /// Runs with this process's arguments, prints results like `cargo test` does, and
    /// returns the exit code for `main`.
    pub fn run(self) -> ExitCode {
        let (filter, threads) = parse_args(std::env::args().skip(1));
        let outcome = self.run_filtered(filter.as_deref(), threads);
        if outcome.success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }

    /// Runs the tests whose name contains `filter`, printing as it goes.
    pub fn run_filtered(self, filter: Option<&str>, threads: Option<usize>) -> Outcome {
        let started = Instant::now();
        // The baseline comes before the first test and the check after the last; the
        // per-test lock is not taken, so tests may use their own guards.
        let guard: Guard = self.config.clone().shared().guard();
        let selected: Vec<&(String, TestFn)> = self
            .tests
            .iter()
            .filter(|(name, _)| filter.is_none_or(|f| name.contains(f)))
            .collect();
        let filtered_out = self.tests.len() - selected.len();
        let threads = threads
            .or(self.threads)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .clamp(1, selected.len().max(1));
        println!("\nrunning {} tests (leakcheck suite)", selected.len());
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<(String, bool)>> = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some((name, test)) = selected.get(index) else {
                        break;
                    };
                    // One thread per test, named after it, as libtest does: a panic
                    // message then names the test.
                    let passed = std::thread::Builder::new()
                        .name(name.clone())
                        .spawn_scoped(scope, test)
                        .map(|handle| handle.join().is_ok())
                        .unwrap_or(false);
                    println!("test {name} ... {}", if passed { "ok" } else { "FAILED" });
                    let _ = std::io::stdout().flush();
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((name.clone(), passed));
                });
            }
        });
        let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
        let (passed, failed): (Vec<_>, Vec<_>) = results.into_iter().partition(|(_, ok)| *ok);
        let leaks = guard.check().err();
        let outcome = Outcome {
            passed: passed.into_iter().map(|(name, _)| name).collect(),
            failed: failed.into_iter().map(|(name, _)| name).collect(),
            filtered_out,
            leaks,
            elapsed: started.elapsed(),
        };
        print_summary(&outcome);
        outcome
    }
}

fn print_summary(outcome: &Outcome) {
    if !outcome.failed.is_empty() {
        println!("\nfailures:");
        for name in &outcome.failed {
            println!("    {name}");
        }
    }
    match &outcome.leaks {
        Some(report) => println!("\nleaks after all tests:\n{report}"),
        None => println!("\nleaks after all tests: none"),
    }
    println!(
        "test result: {}. {} passed; {} failed; 0 ignored; 0 measured; {} filtered out; \
         finished in {:.2}s\n",
        if outcome.success() { "ok" } else { "FAILED" },
        outcome.passed.len(),
        outcome.failed.len(),
        outcome.filtered_out,
        outcome.elapsed.as_secs_f64()
    );
}

/// The filter (first argument that is not a flag) and `--test-threads`; other libtest
/// flags are accepted and ignored, so `cargo test -- --nocapture` still works.
fn parse_args(args: impl IntoIterator<Item = String>) -> (Option<String>, Option<usize>) {
    let mut filter = None;
    let mut threads = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if let Some(value) = arg.strip_prefix("--test-threads=") {
            threads = value.parse().ok();
        } else if arg == "--test-threads" {
            threads = args.next().and_then(|value| value.parse().ok());
        } else if !arg.starts_with('-') && filter.is_none() {
            filter = Some(arg);
        }
    }
    (filter, threads)
}

#[cfg(test)]
mod tests {
    use super::parse_args;

    fn parse(args: &[&str]) -> (Option<String>, Option<usize>) {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments_like_libtest() {
        assert_eq!(parse(&[]), (None, None));
        assert_eq!(parse(&["files"]), (Some("files".into()), None));
        assert_eq!(
            parse(&["--nocapture", "--test-threads", "2", "files"]),
            (Some("files".into()), Some(2))
        );
        assert_eq!(parse(&["--test-threads=3"]), (None, Some(3)));
    }
}
