//! A real JVM with 40 leaked "Analytics-N" threads (incident 000): leakwatch's thread-name
//! histogram must match what `jstack` says, thread for thread.

use leakwatch_proc::{Options, Sampler, Selection};
use leakwatch_testkit::{collapse_digits, Jvm};
use std::collections::{BTreeMap, HashSet};
use std::process::Command;

#[test]
fn thread_groups_match_jstack() {
    let java = Jvm::analytics(&["40"]);
    let pid = java.pid();

    let jstack = Command::new("jstack")
        .arg(pid.to_string())
        .output()
        .unwrap();
    assert!(jstack.status.success(), "jstack failed: {jstack:?}");
    // Thread headers look like: "Analytics-12" #25 daemon prio=5 os_prio=0 ...
    let mut from_jstack: BTreeMap<String, u32> = BTreeMap::new();
    for header in String::from_utf8_lossy(&jstack.stdout).lines() {
        let Some(rest) = header.strip_prefix('"') else {
            continue;
        };
        let Some(end) = rest.find('"') else { continue };
        // Linux keeps 15 bytes of a thread name; the JVM names native threads after the
        // Java name, so compare on the truncated name.
        let name: String = rest[..end].chars().take(15).collect();
        *from_jstack.entry(collapse_digits(&name)).or_insert(0) += 1;
    }
    assert_eq!(from_jstack.get("Analytics-#"), Some(&40), "{from_jstack:?}");

    let mut sampler =
        Sampler::new(Options::default(), Selection::Pids(HashSet::from([pid]))).unwrap();
    let sample = sampler.sample().unwrap();
    let process = &sample.processes[0];
    let ours: BTreeMap<String, u32> = process
        .threads
        .groups
        .iter()
        .map(|g| (g.name.clone(), g.count))
        .collect();
    assert_eq!(ours.get("Analytics-#"), Some(&40));
    // Every group jstack names, leakwatch names with the same count, with one documented
    // exception: HotSpot never sets the native name of the "main" Java thread, which keeps
    // the launcher's name "java"; the launcher's own first thread (waiting for main, not
    // listed by jstack) is also "java".
    let main = from_jstack.remove("main").unwrap_or(0);
    assert_eq!(ours.get("java"), Some(&(main + 1)), "{ours:?}");
    let mut mismatches = Vec::new();
    for (group, count) in &from_jstack {
        if ours.get(group) != Some(count) {
            mismatches.push(format!(
                "{group}: jstack {count}, leakwatch {:?}",
                ours.get(group)
            ));
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}\nours: {ours:?}");
    drop(java);
}
