//! One process as findings, targets, alerts and incidents name it: who it is (pid, start,
//! user, executable, command line, parent) and where it runs (systemd unit, container,
//! Kubernetes pod). Plain data, made by the agent from its samples; every text field is
//! already escaped for terminals ([`crate::text::visible`]) and bounded when made.

use serde::{Deserialize, Serialize};

/// Longest command line kept, in bytes (cut at a character boundary, ending in `…`).
pub const CMDLINE_MAX_BYTES: usize = 1024;

/// Most processes listed per target; `processes_total` in the records says how many there
/// were.
pub const MAX_LISTED: usize = 16;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessInfo {
    pub pid: u32,
    /// The parent's pid, and its name when it was seen in the same sample.
    pub ppid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub start_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The user's name, when the system's user database knows the uid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `comm`, the kernel's short name.
    pub comm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// The command line as a shell would read it back (words quoted when needed), escaped
    /// and at most [`CMDLINE_MAX_BYTES`].
    pub cmdline: String,
    /// The systemd unit its cgroup names (`orders.service`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The container id its cgroup names, first 12 hex digits as `docker ps` shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The Kubernetes pod UID its cgroup names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

impl ProcessInfo {
    /// One line for people: `pid 4037 java (user app, parent 1 systemd, unit
    /// orders.service): java -cp . AnalyticsServer`.
    pub fn brief(&self) -> String {
        let mut about = Vec::new();
        if let Some(user) = &self.user {
            about.push(format!("user {user}"));
        } else if let Some(uid) = self.uid {
            about.push(format!("uid {uid}"));
        }
        match &self.parent {
            Some(parent) => about.push(format!("parent {} {parent}", self.ppid)),
            None if self.ppid != 0 => about.push(format!("parent {}", self.ppid)),
            None => {}
        }
        if let Some(unit) = &self.unit {
            about.push(format!("unit {unit}"));
        }
        if let Some(container) = &self.container {
            about.push(format!("container {container}"));
        }
        if let Some(pod) = &self.pod {
            about.push(format!("pod {pod}"));
        }
        let about = if about.is_empty() {
            String::new()
        } else {
            format!(" ({})", about.join(", "))
        };
        let command = if self.cmdline.is_empty() {
            // A kernel thread or a zombie: no command line, its name in brackets as ps does.
            format!("[{}]", self.comm)
        } else {
            self.cmdline.clone()
        };
        format!("pid {} {}{about}: {command}", self.pid, self.comm)
    }
}

/// `text` cut to at most `max` bytes at a character boundary, ending in `…` when cut.
pub fn bounded(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_reads_as_one_line() {
        let p = ProcessInfo {
            pid: 4037,
            ppid: 1,
            parent: Some("systemd".into()),
            start_ms: 0,
            uid: Some(1000),
            user: Some("app".into()),
            comm: "java".into(),
            exe: Some("/usr/bin/java".into()),
            cmdline: "java -cp . AnalyticsServer".into(),
            unit: Some("orders.service".into()),
            container: None,
            pod: None,
        };
        assert_eq!(
            p.brief(),
            "pid 4037 java (user app, parent 1 systemd, unit orders.service): java -cp . AnalyticsServer"
        );
        let kernel = ProcessInfo {
            pid: 2,
            comm: "kthreadd".into(),
            ..ProcessInfo::default()
        };
        assert_eq!(kernel.brief(), "pid 2 kthreadd: [kthreadd]");
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        assert_eq!(bounded("short".into(), 10), "short");
        let cut = bounded("é".repeat(100), 11);
        assert!(cut.len() <= 11, "{cut}");
        assert!(cut.ends_with('…'));
        assert_eq!(cut, "éééé…");
    }
}
