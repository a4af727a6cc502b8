//! Kubernetes names for container targets (issue 15): a container of a pod is the target
//! `NAMESPACE/POD/CONTAINER` instead of `container-ID`. The names come from the kubelet's
//! `/var/log/containers` ([`leakwatch_proc::parse::kubelet`]): the host's own record of
//! which pod and container each container id is, readable without the Kubernetes API or
//! the runtime's socket (a DaemonSet mounts it read-only). Re-read when an id is not
//! known, at most every [`REREAD`]; a re-read replaces what was known, so containers that
//! are gone are forgotten; at most [`MAX_ENTRIES`] entries.

use leakwatch_proc::parse::kubelet::{container_log_name, PodContainer};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where the kubelet keeps its container log links.
pub const DEFAULT_DIR: &str = "/var/log/containers";
/// The shortest time between two reads of the directory.
pub const REREAD: Duration = Duration::from_secs(10);
/// Entries read at most (a node runs at most a few hundred containers).
pub const MAX_ENTRIES: usize = 20_000;

/// The pods and containers of this node, by container id.
#[derive(Debug)]
pub struct Kubelet {
    dir: PathBuf,
    known: HashMap<String, PodContainer>,
    read_at: Option<Instant>,
}

impl Kubelet {
    pub fn new(dir: impl Into<PathBuf>) -> Kubelet {
        Kubelet {
            dir: dir.into(),
            known: HashMap::new(),
            read_at: None,
        }
    }

    /// `NAMESPACE/POD/CONTAINER` of a container id (64 hex digits), when the kubelet
    /// names it.
    pub fn name_of(&mut self, container_id: &str) -> Option<String> {
        let stale = self.read_at.is_none_or(|at| at.elapsed() >= REREAD);
        if !self.known.contains_key(container_id) && stale {
            self.reread();
        }
        let pc = self.known.get(container_id)?;
        Some(format!("{}/{}/{}", pc.namespace, pc.pod, pc.container))
    }

    fn reread(&mut self) {
        self.read_at = Some(Instant::now());
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            // Not a Kubernetes node (or not mounted): nothing to name.
            self.known.clear();
            return;
        };
        self.known = entries
            .flatten()
            .take(MAX_ENTRIES)
            .filter_map(|entry| container_log_name(&entry.file_name().to_string_lossy()))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_log_links_and_gone_containers_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let id = "89abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567";
        let log = dir
            .path()
            .join(format!("web-7d9c8f6b5-x2kqz_shop_app-{id}.log"));
        std::fs::write(&log, "").unwrap();
        std::fs::write(dir.path().join("not-a-container.log"), "").unwrap();
        let mut kubelet = Kubelet::new(dir.path());
        assert_eq!(
            kubelet.name_of(id).as_deref(),
            Some("shop/web-7d9c8f6b5-x2kqz/app")
        );
        assert_eq!(kubelet.name_of(&"0".repeat(64)), None);
        // Gone from the directory: forgotten at the next re-read.
        std::fs::remove_file(&log).unwrap();
        kubelet.read_at = Some(Instant::now() - REREAD);
        assert_eq!(kubelet.name_of(&"1".repeat(64)), None);
        assert_eq!(kubelet.name_of(id), None);
        assert!(kubelet.known.is_empty());
        // No directory at all: no names, no error.
        assert_eq!(Kubelet::new("/nonexistent/leakwatch").name_of(id), None);
    }
}
