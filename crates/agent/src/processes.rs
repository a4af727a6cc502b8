//! Who a target's processes are, for findings, targets, alerts and incidents: each live
//! process as a [`ProcessInfo`] (pid, start, user, executable, command line, parent, unit,
//! container, pod), made once per process and reused while it lives.
//!
//! Bounded: the cache holds only processes of the latest pass, and at most
//! [`MAX_LISTED`](leakwatch_model::process::MAX_LISTED) processes are listed per target;
//! the user-name cache holds at most [`MAX_USERS`] uids.

use crate::targets::{TargetName, TargetSample};
use leakwatch_model::process::{bounded, CMDLINE_MAX_BYTES, MAX_LISTED};
use leakwatch_model::text::visible;
use leakwatch_model::ProcessInfo;
use leakwatch_proc::{HostSample, ProcessSample};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Most uids whose names are remembered; the cache starts over when full.
pub const MAX_USERS: usize = 1024;

/// A target's processes as the latest pass saw them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetProcesses {
    /// At most `MAX_LISTED`, oldest first (the service's main process usually).
    pub listed: Vec<Arc<ProcessInfo>>,
    /// How many it had.
    pub total: usize,
}

/// The process directory of the sampler stage. See the module documentation.
#[derive(Default)]
pub struct Directory {
    known: HashMap<(u32, u64), Arc<ProcessInfo>>,
    users: HashMap<u32, Option<String>>,
}

impl Directory {
    pub fn new() -> Directory {
        Directory::default()
    }

    /// The processes of each target in `grouped`, described from `sample`.
    pub fn update(
        &mut self,
        sample: &HostSample,
        grouped: &BTreeMap<TargetName, TargetSample>,
    ) -> BTreeMap<String, TargetProcesses> {
        let by_pid: HashMap<u32, &ProcessSample> = sample
            .processes
            .iter()
            .map(|p| (p.identity.pid, p))
            .collect();
        let mut known = HashMap::with_capacity(self.known.len());
        let mut out = BTreeMap::new();
        for (target, target_sample) in grouped {
            let mut ids = target_sample.processes.clone();
            // Oldest first: a service's main process before its workers.
            ids.sort_by_key(|(pid, start)| (*start, *pid));
            let mut listed = Vec::new();
            for id in ids.iter().take(MAX_LISTED) {
                let info = match self.known.get(id) {
                    Some(info) => info.clone(),
                    None => {
                        let Some(process) = by_pid.get(&id.0) else {
                            continue;
                        };
                        Arc::new(self.describe(process, &by_pid))
                    }
                };
                known.insert(*id, info.clone());
                listed.push(info);
            }
            out.insert(
                target.name.clone(),
                TargetProcesses {
                    listed,
                    total: ids.len(),
                },
            );
        }
        // Only processes of this pass are kept.
        self.known = known;
        out
    }

    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    fn describe(
        &mut self,
        process: &ProcessSample,
        by_pid: &HashMap<u32, &ProcessSample>,
    ) -> ProcessInfo {
        let identity = &process.identity;
        let cgroup = identity.cgroup.as_ref();
        ProcessInfo {
            pid: identity.pid,
            ppid: identity.ppid,
            parent: by_pid
                .get(&identity.ppid)
                .map(|parent| visible(&parent.identity.comm)),
            start_ms: identity.start_time_unix_ms,
            uid: identity.uid,
            user: identity.uid.and_then(|uid| self.user_name(uid)),
            comm: visible(&identity.comm),
            exe: identity.exe.as_deref().map(visible),
            cmdline: bounded(
                visible(&leakwatch_exec::quote::join(&identity.cmdline)),
                CMDLINE_MAX_BYTES,
            ),
            unit: cgroup.and_then(|c| c.unit.as_deref()).map(visible),
            container: cgroup
                .and_then(|c| c.container_id.as_deref())
                .map(|id| id.chars().take(12).collect()),
            pod: cgroup.and_then(|c| c.pod.clone()),
        }
    }

    fn user_name(&mut self, uid: u32) -> Option<String> {
        if let Some(name) = self.users.get(&uid) {
            return name.clone();
        }
        if self.users.len() >= MAX_USERS {
            self.users.clear();
        }
        let name = user_name(uid).map(|n| visible(&n));
        self.users.insert(uid, name.clone());
        name
    }
}

/// The name of `uid` from the system's user database (`getpwuid_r`: files, LDAP, sssd —
/// whatever NSS is configured with), or `None`.
fn user_name(uid: u32) -> Option<String> {
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: zeroed is a valid `passwd` (pointers null, numbers zero); it is only read
    // after getpwuid_r reports success.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call: `entry` and `found` are live locals,
    // `buffer` is writable for its full length, which is passed.
    let status = unsafe {
        libc::getpwuid_r(
            uid,
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if status != 0 || found.is_null() || entry.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success `pw_name` points to a NUL-terminated string inside `buffer`, which
    // is still alive.
    let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn uid_0_is_root() {
        assert_eq!(super::user_name(0).as_deref(), Some("root"));
        // A uid no database has.
        assert_eq!(super::user_name(4_000_000_000), None);
    }
}
