//! `memory{cgroup}` only for a target that owns its cgroup, on real processes: a `leaky`
//! child sampled with the whole host (as the agent does) and grouped by `targets::group`.
//! In the cgroup it shares with this test (and, as root, in the root cgroup) its target gets
//! no cgroup memory; moved, as root, into a memory cgroup of its own, it does.

use leakwatch_agent::config::TargetRule;
use leakwatch_agent::targets::{cgroup_ownership, group, CgroupOwnership, Targeting};
use leakwatch_model::{Attribution, MemoryKind, Resource, SeriesKey};
use leakwatch_proc::parse::cgroup::{parse_mountinfo, Mount};
use leakwatch_proc::{MemoryCgroup, Options, Sampler, Selection};
use leakwatch_testkit::Leaky;
use std::path::PathBuf;

/// A `leaky` with a comm of its own, and a rule that takes it (and only it) as a target.
/// `tag` tells the tests of this file apart (they run in parallel).
fn leaky_with_rule(tag: char) -> (Leaky, Targeting, String) {
    let comm = format!("lwcg{}{tag}", std::process::id());
    let leaky = Leaky::start(&[&format!("comm={comm}")]);
    let rule: TargetRule =
        toml::from_str(&format!("name = \"{comm}\"\ncomm = \"^{comm}$\"")).unwrap();
    (leaky, Targeting::new(&[rule]), comm)
}

/// What the agent would store for the target `name`: its cgroup memory value, if any, with
/// the ownership decision and the process's memory cgroup as the sampler read them.
fn sample_target(
    targeting: &mut Targeting,
    name: &str,
    pid: u32,
) -> (Option<f64>, CgroupOwnership, MemoryCgroup) {
    // A fresh sampler: a cached identity would keep the cgroup the process was in before.
    let mut sampler = Sampler::new(Options::default(), Selection::All).unwrap();
    let sample = sampler.sample().unwrap();
    let process = sample
        .processes
        .iter()
        .find(|p| p.identity.pid == pid)
        .expect("leaky sampled");
    let memory_cgroup = process.memory.cgroup.clone();
    let targets = group(targeting, &sample);
    let (target, grouped) = targets
        .iter()
        .find(|(target, _)| target.name == name)
        .expect("leaky's target");
    assert_eq!(grouped.processes.len(), 1, "the rule takes leaky only");
    let holders = |path: &str| {
        targets
            .values()
            .filter(|t| t.memory_cgroups.iter().any(|c| c.path() == Some(path)))
            .count()
    };
    let ownership = cgroup_ownership(target.kind, &grouped.memory_cgroups, holders);
    let key = SeriesKey::new(
        name,
        Resource::Memory,
        Attribution::Memory(MemoryKind::Cgroup),
    );
    let points = grouped.points(name, 8, 8, 8);
    let value = points.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let limit = points.iter().any(|(k, _)| *k == key.limit());
    assert!(value.is_some() || !limit, "no limit without the value");
    (value, ownership, memory_cgroup)
}

/// The mount that holds memory: the v1 `memory` controller's, else the unified one.
fn memory_mount() -> Option<Mount> {
    let mounts = parse_mountinfo(&std::fs::read("/proc/self/mountinfo").ok()?);
    mounts.memory_v1.or(mounts.unified)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_process_in_a_shared_or_root_cgroup_gets_no_cgroup_memory() {
    let (leaky, mut targeting, name) = leaky_with_rule('s');
    let pid = leaky.pid();
    // Where this test runs: a cgroup it shares with its own process (another target), or
    // the root; either way not leaky's own.
    let (value, ownership, cgroup) = sample_target(&mut targeting, &name, pid);
    eprintln!("leaky in {cgroup:?}: {ownership:?}");
    assert_eq!(value, None, "{cgroup:?}: {ownership:?}");
    assert_ne!(ownership, CgroupOwnership::Owned);
    if let MemoryCgroup::Path(_) = cgroup {
        // Shared with this test's own process (this machine: a per-command v1 memory
        // cgroup), or a login's scope.
        assert!(
            matches!(
                ownership,
                CgroupOwnership::Shared | CgroupOwnership::NotOwnable(_)
            ),
            "{cgroup:?}: {ownership:?}"
        );
    }

    // As root: moved into the root cgroup, alone there as a target or not, still none.
    let Some(mount) = memory_mount().filter(|_| is_root()) else {
        eprintln!("skipped the root cgroup case: not root or no memory hierarchy");
        return;
    };
    let procs = PathBuf::from(&mount.mount_point).join("cgroup.procs");
    if std::fs::write(&procs, pid.to_string()).is_err() {
        eprintln!(
            "skipped the root cgroup case: {} not writable",
            procs.display()
        );
        return;
    }
    let (value, ownership, cgroup) = sample_target(&mut targeting, &name, pid);
    assert_eq!(cgroup, MemoryCgroup::Root);
    assert_eq!(ownership, CgroupOwnership::Root);
    assert_eq!(value, None);
}

/// A memory cgroup made for the test, removed (once empty) when dropped.
struct TestCgroup(PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        eprintln!("could not remove {}", self.0.display());
    }
}

#[test]
fn a_process_in_a_memory_cgroup_of_its_own_gets_it() {
    let Some(mount) = memory_mount().filter(|_| is_root()) else {
        eprintln!("skipped: not root or no memory hierarchy");
        return;
    };
    let relative = format!("lw-test-{}", std::process::id());
    let dir = PathBuf::from(&mount.mount_point).join(&relative);
    if std::fs::create_dir(&dir).is_err() {
        eprintln!("skipped: cannot create {}", dir.display());
        return;
    }
    // Declared before leaky, so dropped after it: the cgroup is empty by then.
    let cgroup_dir = TestCgroup(dir);
    let usage_file = ["memory.usage_in_bytes", "memory.current"]
        .into_iter()
        .map(|file| cgroup_dir.0.join(file))
        .find(|file| file.exists());
    let Some(usage_file) = usage_file else {
        eprintln!("skipped: the memory controller is not enabled in the new cgroup");
        return;
    };
    let (mut leaky, mut targeting, name) = leaky_with_rule('o');
    let pid = leaky.pid();
    std::fs::write(cgroup_dir.0.join("cgroup.procs"), pid.to_string()).unwrap();
    // Memory charged before the move stays where it was (v1): new threads' stacks are
    // charged here.
    for _ in 0..4 {
        leaky.command("thread grow");
    }
    let (value, ownership, cgroup) = sample_target(&mut targeting, &name, pid);
    let expected_path = format!("{}/{relative}", mount.root.trim_end_matches('/'));
    assert_eq!(cgroup, MemoryCgroup::Path(expected_path));
    assert_eq!(ownership, CgroupOwnership::Owned);
    let value = value.expect("memory{cgroup} for a rule alone in its own cgroup");
    // The oracle: the cgroup's own file, read with std::fs after the sample.
    let usage: f64 = std::fs::read_to_string(&usage_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(value > 0.0, "{value}");
    // Memory charged after the move only, not leaky's whole RSS: same order of magnitude
    // as what the file says a moment later.
    assert!(
        value <= usage * 4.0 + 1e6 && usage <= value * 4.0 + 1e6,
        "sampled {value}, file {usage}"
    );
    drop(leaky);
}
