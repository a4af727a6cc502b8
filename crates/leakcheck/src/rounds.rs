//! Repeating code in rounds and flagging what grows round after round, with the same rules
//! (and the same settle loop) as `leakwatch check` applies to a whole process.
//!
//! A before/after guard flags a thread pool started lazily on first use; repeating the
//! code after warm-up rounds does not, while a leak of one connection per call still grows
//! in every round. It is the in-process form of CPython's `regrtest -R`.

use crate::guard::{evidence, Config, Report, Turn};
use crate::inventory::{Inventory, Reader};
use crate::rules::{judge, Class, Counts, Key, Policy, Verdict};
use crate::settle::settle;
use leakwatch_proc::FdKind;
use std::time::Instant;

impl Config {
    /// Runs `work` for the warm-up rounds, takes a baseline, runs it for the measured
    /// rounds (settling after each), and fails if a thread group, fd kind, socket state or
    /// peer grew round after round (rules: [`crate::rules`]). The report names each growing
    /// resource with its series and the new threads and fds behind it.
    ///
    /// ```
    /// use std::sync::OnceLock;
    ///
    /// // A pool started on first use is one-time growth, absorbed by the warm-up.
    /// static POOL: OnceLock<std::sync::mpsc::Sender<()>> = OnceLock::new();
    /// fn call() {
    ///     POOL.get_or_init(|| {
    ///         let (tx, rx) = std::sync::mpsc::channel::<()>();
    ///         std::thread::Builder::new()
    ///             .name("lazy-pool".into())
    ///             .spawn(move || for _ in rx {})
    ///             .unwrap();
    ///         tx
    ///     });
    /// }
    /// leakcheck::Config::new().repeat(call).expect("no growth per call");
    /// ```
    pub fn repeat(self, mut work: impl FnMut()) -> Result<(), Report> {
        let _turn = if self.exclusive { Turn::take() } else { None };
        let pid = std::process::id();
        let mut reader = self.reader();
        for _ in 0..self.warmup {
            work();
        }
        let started = Instant::now();
        let (baseline_counts, baseline) = self.settled_sample(&mut reader, pid);
        let mut samples = vec![baseline_counts];
        let mut after = baseline.clone();
        for _ in 0..self.rounds {
            work();
            let (counts, inventory) = self.settled_sample(&mut reader, pid);
            samples.push(counts);
            after = inventory;
        }
        let growing: Vec<_> = judge(&samples, &self.ignores, &Policy::default())
            .into_iter()
            .filter(|finding| finding.verdict == Verdict::Leak)
            .collect();
        if growing.is_empty() {
            return Ok(());
        }
        let mut leaked = Vec::new();
        for finding in &growing {
            for item in evidence(&finding.key, &baseline, &after) {
                if !leaked.contains(&item) {
                    leaked.push(item);
                }
            }
        }
        Err(Report {
            leaked,
            growing,
            waited: started.elapsed(),
        })
    }

    /// The counts once this process settled, and the inventory they came from.
    fn settled_sample(&self, reader: &mut Reader, pid: u32) -> (Counts, Inventory) {
        let mut last = None;
        let settled = settle(self.settle, || {
            let inventory = reader.read(pid)?;
            let counts = self.keep(inventory.counts());
            last = Some(inventory);
            Ok(counts)
        })
        .unwrap_or_else(|error| panic!("leakcheck: cannot read /proc/self: {error}"));
        (settled.counts, last.expect("settle samples at least once"))
    }

    /// Drops the counts of classes this config does not check.
    fn keep(&self, mut counts: Counts) -> Counts {
        let socket_fds = Key::fd_kind(FdKind::Socket);
        counts.retain(|key, _| match key.class {
            Class::Threads => self.threads,
            Class::Fds if *key == socket_fds => self.sockets,
            Class::Fds => self.fds,
            Class::Sockets => self.sockets,
            Class::Memory => false,
        });
        counts
    }
}

/// [`Config::repeat`] with the defaults: 2 warm-up rounds, 5 measured rounds, 1 s settle.
pub fn repeat(work: impl FnMut()) -> Result<(), Report> {
    Config::new().repeat(work)
}
