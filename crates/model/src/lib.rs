//! leakwatch's vocabulary, shared from the sampler to the dashboard: what a series measures
//! ([`Resource`]), which part of it ([`Attribution`]), the key naming one series of one target
//! ([`SeriesKey`]), and what a target is ([`TargetKind`]).
//!
//! This crate is the only place a series is spelled as text. The store's columns, the
//! Prometheus labels, the CSV names and the JSON fields are encodings of these types, made and
//! read here ([`SeriesKey::from_text`], [`SeriesKey::resource_text`], [`Attribution`]'s
//! `Display`, [`SeriesKey`]'s `Display`/`FromStr`). No other crate splits a label string.
//!
//! Decoding never fails for stored text: a value this version does not know (an fd kind, a
//! memory kind, a resource written by a newer version) is kept verbatim as
//! [`Attribution::Text`] or [`Resource::Named`], so old and foreign data still load.

#![forbid(unsafe_code)]

pub mod process;
pub mod text;
pub mod time;

pub use process::ProcessInfo;
pub use time::UnixMs;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Suffix of a limit series' resource in the text encoding (`threads.limit`).
const LIMIT_SUFFIX: &str = ".limit";

/// What is measured. Ordered by its text encoding, as series have always been listed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resource {
    /// Live processes of the target.
    Processes,
    Threads,
    /// File descriptors.
    Fds,
    /// TCP sockets by state.
    Tcp,
    /// TCP sockets by state and peer.
    TcpPeer,
    /// Other sockets (UDP, UNIX).
    Sockets,
    /// Memory in bytes.
    Memory,
    /// A gauge scraped from the target's own metrics endpoint.
    Gauge,
    /// Restarts of the target (crash-loop findings).
    Restarts,
    /// A quantity from outside the agent (a CSV column such as `heap_used`) with no meaning
    /// known to leakwatch.
    Named(String),
}

impl Resource {
    /// The text encoding: `threads`, `tcp_peer`, or the name of a [`Resource::Named`].
    pub fn as_str(&self) -> &str {
        match self {
            Resource::Processes => "processes",
            Resource::Threads => "threads",
            Resource::Fds => "fds",
            Resource::Tcp => "tcp",
            Resource::TcpPeer => "tcp_peer",
            Resource::Sockets => "sockets",
            Resource::Memory => "memory",
            Resource::Gauge => "gauge",
            Resource::Restarts => "restarts",
            Resource::Named(name) => name,
        }
    }

    /// Decodes [`Resource::as_str`]; any other text is a [`Resource::Named`].
    pub fn parse(text: &str) -> Resource {
        match text {
            "processes" => Resource::Processes,
            "threads" => Resource::Threads,
            "fds" => Resource::Fds,
            "tcp" => Resource::Tcp,
            "tcp_peer" => Resource::TcpPeer,
            "sockets" => Resource::Sockets,
            "memory" => Resource::Memory,
            "gauge" => Resource::Gauge,
            "restarts" => Resource::Restarts,
            other => Resource::Named(other.to_string()),
        }
    }

    /// The limit series that caps this resource for a target, if the agent records one:
    /// threads run into the thread limit of the process with the most threads, fds and every
    /// kind of socket into its `RLIMIT_NOFILE`, memory into the cgroup's limit.
    pub fn limit_series(&self, target: &str) -> Option<SeriesKey> {
        let (resource, attribution) = match self {
            Resource::Threads => (Resource::Threads, Attribution::MaxProcess),
            Resource::Fds | Resource::Tcp | Resource::TcpPeer | Resource::Sockets => {
                (Resource::Fds, Attribution::MaxProcess)
            }
            Resource::Memory => (Resource::Memory, Attribution::Memory(MemoryKind::Cgroup)),
            _ => return None,
        };
        Some(SeriesKey::new(target, resource, attribution).limit())
    }

    /// True for resources that count objects (a target without processes has zero of them),
    /// as opposed to amounts (memory) and gauges, which are unknown when nothing is running.
    pub fn is_count(&self) -> bool {
        matches!(
            self,
            Resource::Threads
                | Resource::Fds
                | Resource::Tcp
                | Resource::TcpPeer
                | Resource::Sockets
        )
    }

    /// True when values are bytes.
    pub fn is_bytes(&self) -> bool {
        matches!(self, Resource::Memory)
    }
}

impl Ord for Resource {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for Resource {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for Resource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Resource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Resource::parse(&text))
    }
}

/// What a file descriptor points at, from its `/proc/PID/fd/N` link.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum FdKind {
    File,
    Socket,
    Pipe,
    Eventfd,
    Eventpoll,
    Timerfd,
    Signalfd,
    Inotify,
    /// Any other `anon_inode:` (pidfd, io_uring, bpf-map, perf_event, ...).
    AnonInode,
    /// A device node under `/dev`.
    Device,
    Other,
}

impl FdKind {
    pub const ALL: [FdKind; 11] = [
        FdKind::File,
        FdKind::Socket,
        FdKind::Pipe,
        FdKind::Eventfd,
        FdKind::Eventpoll,
        FdKind::Timerfd,
        FdKind::Signalfd,
        FdKind::Inotify,
        FdKind::AnonInode,
        FdKind::Device,
        FdKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FdKind::File => "file",
            FdKind::Socket => "socket",
            FdKind::Pipe => "pipe",
            FdKind::Eventfd => "eventfd",
            FdKind::Eventpoll => "eventpoll",
            FdKind::Timerfd => "timerfd",
            FdKind::Signalfd => "signalfd",
            FdKind::Inotify => "inotify",
            FdKind::AnonInode => "anon_inode",
            FdKind::Device => "device",
            FdKind::Other => "other",
        }
    }

    /// Decodes [`FdKind::as_str`].
    pub fn parse(text: &str) -> Option<FdKind> {
        FdKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// TCP states as the kernel numbers them (`include/net/tcp_states.h`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    NewSynRecv,
    Unknown,
}

impl TcpState {
    pub const ALL: [TcpState; 13] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
        TcpState::NewSynRecv,
        TcpState::Unknown,
    ];

    pub fn from_kernel(state: u8) -> TcpState {
        match state {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 => TcpState::SynRecv,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Close,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            12 => TcpState::NewSynRecv,
            _ => TcpState::Unknown,
        }
    }

    /// The name `ss` prints, so operators can grep for what they already know.
    pub fn as_str(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::NewSynRecv => "NEW_SYN_RECV",
            TcpState::Unknown => "UNKNOWN",
        }
    }

    /// Decodes [`TcpState::as_str`].
    pub fn parse(text: &str) -> Option<TcpState> {
        TcpState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sockets other than TCP, counted per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SocketKind {
    Udp,
    Unix,
}

impl SocketKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SocketKind::Udp => "udp",
            SocketKind::Unix => "unix",
        }
    }
}

/// Which memory of a target a series measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemoryKind {
    Rss,
    /// Anonymous resident memory (`RssAnon`): the heap, not mapped files.
    Anon,
    Swap,
    /// The memory use of the target's own cgroup.
    Cgroup,
}

impl MemoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemoryKind::Rss => "rss",
            MemoryKind::Anon => "anon",
            MemoryKind::Swap => "swap",
            MemoryKind::Cgroup => "cgroup",
        }
    }

    fn parse(text: &str) -> Option<MemoryKind> {
        [
            MemoryKind::Rss,
            MemoryKind::Anon,
            MemoryKind::Swap,
            MemoryKind::Cgroup,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// Which part of a resource a series counts. Ordered by its text encoding, as series have
/// always been listed (`Leak-#` before `max_process`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Attribution {
    /// The whole resource.
    Total,
    /// The largest value of any one process of the target (the one whose limit applies).
    MaxProcess,
    /// The remainder folded together beyond the top N groups or peers.
    Other,
    /// Threads whose names collapse to this group (`pool-#-thread-#`).
    ThreadGroup(String),
    FdKind(FdKind),
    /// File fds whose paths collapse to this group (`/tmp/upload-#.tmp`,
    /// `/var/log/app.log (deleted)`): always an absolute path, so its text starts with `/`,
    /// which no fd kind does.
    FdPath(String),
    /// File fds beyond the top N path groups, folded together (text `other files`).
    FdPathOther,
    TcpState(TcpState),
    /// TCP sockets in a state to one peer (`127.0.0.1:8443`, or `10.0.0.5 -> :443` inbound).
    TcpPeer {
        state: TcpState,
        peer: String,
    },
    Socket(SocketKind),
    Memory(MemoryKind),
    /// The name of a scraped gauge.
    Gauge(String),
    /// Anything else: a part of a [`Resource::Named`], or a value this version does not know.
    Text(String),
}

/// Text of [`Attribution::MaxProcess`] and [`Attribution::Other`].
const MAX_PROCESS: &str = "max_process";
const OTHER: &str = "other";
/// Text of [`Attribution::FdPathOther`]: not an fd kind, and not a path (no leading `/`).
const OTHER_FILES: &str = "other files";

impl Attribution {
    /// Decodes the text encoding of an attribution of `resource` (the inverse of `Display`).
    pub fn parse(resource: &Resource, text: &str) -> Attribution {
        if text.is_empty() {
            return Attribution::Total;
        }
        if text == MAX_PROCESS && matches!(resource, Resource::Threads | Resource::Fds) {
            return Attribution::MaxProcess;
        }
        let text_owned = || Attribution::Text(text.to_string());
        match resource {
            Resource::Threads if text == OTHER => Attribution::Other,
            Resource::Threads => Attribution::ThreadGroup(text.to_string()),
            // A path group is an absolute path; no fd kind starts with '/'.
            Resource::Fds if text.starts_with('/') => Attribution::FdPath(text.to_string()),
            Resource::Fds if text == OTHER_FILES => Attribution::FdPathOther,
            // "other" is an fd kind of its own (what no other kind matched).
            Resource::Fds => FdKind::parse(text).map_or_else(text_owned, Attribution::FdKind),
            Resource::Tcp => TcpState::parse(text).map_or_else(text_owned, Attribution::TcpState),
            Resource::TcpPeer if text == OTHER => Attribution::Other,
            Resource::TcpPeer => match text.split_once(' ') {
                Some((state, peer)) => match TcpState::parse(state) {
                    Some(state) => Attribution::TcpPeer {
                        state,
                        peer: peer.to_string(),
                    },
                    None => text_owned(),
                },
                None => text_owned(),
            },
            Resource::Sockets => match text {
                "udp" => Attribution::Socket(SocketKind::Udp),
                "unix" => Attribution::Socket(SocketKind::Unix),
                _ => text_owned(),
            },
            Resource::Memory => {
                MemoryKind::parse(text).map_or_else(text_owned, Attribution::Memory)
            }
            Resource::Gauge => Attribution::Gauge(text.to_string()),
            Resource::Processes | Resource::Restarts | Resource::Named(_) => text_owned(),
        }
    }

    pub fn is_total(&self) -> bool {
        *self == Attribution::Total
    }

    /// The TCP state a socket series is about, if any.
    pub fn tcp_state(&self) -> Option<TcpState> {
        match self {
            Attribution::TcpState(state) | Attribution::TcpPeer { state, .. } => Some(*state),
            _ => None,
        }
    }
}

impl Attribution {
    /// The text encoding in up to three pieces, without allocating.
    fn pieces(&self) -> [&str; 3] {
        match self {
            Attribution::Total => ["", "", ""],
            Attribution::MaxProcess => [MAX_PROCESS, "", ""],
            Attribution::Other => [OTHER, "", ""],
            Attribution::ThreadGroup(name)
            | Attribution::Gauge(name)
            | Attribution::Text(name)
            | Attribution::FdPath(name) => [name, "", ""],
            Attribution::FdPathOther => [OTHER_FILES, "", ""],
            Attribution::FdKind(kind) => [kind.as_str(), "", ""],
            Attribution::TcpState(state) => [state.as_str(), "", ""],
            Attribution::TcpPeer { state, peer } => [state.as_str(), " ", peer],
            Attribution::Socket(kind) => [kind.as_str(), "", ""],
            Attribution::Memory(kind) => [kind.as_str(), "", ""],
        }
    }
}

impl Ord for Attribution {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let bytes = |a: &Attribution| -> Vec<u8> { a.pieces().concat().into_bytes() };
        match (self.pieces(), other.pieces()) {
            ([a, "", ""], [b, "", ""]) => a.cmp(b),
            _ => bytes(self).cmp(&bytes(other)),
        }
    }
}

impl PartialOrd for Attribution {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Attribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attribution::Total => Ok(()),
            Attribution::MaxProcess => f.write_str(MAX_PROCESS),
            Attribution::Other => f.write_str(OTHER),
            Attribution::ThreadGroup(name)
            | Attribution::Gauge(name)
            | Attribution::Text(name)
            | Attribution::FdPath(name) => f.write_str(name),
            Attribution::FdPathOther => f.write_str(OTHER_FILES),
            Attribution::FdKind(kind) => f.write_str(kind.as_str()),
            Attribution::TcpState(state) => f.write_str(state.as_str()),
            Attribution::TcpPeer { state, peer } => write!(f, "{} {peer}", state.as_str()),
            Attribution::Socket(kind) => f.write_str(kind.as_str()),
            Attribution::Memory(kind) => f.write_str(kind.as_str()),
        }
    }
}

/// Names one measured quantity of one monitored target: `java-svc` / `threads` /
/// `Analytics-#`, or the limit that quantity runs into. Ordered as the text columns
/// `(target, resource, attribution)` are: a resource's limits after all of its parts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    /// The service or process group; empty for a series given without one (a CSV column).
    pub target: String,
    pub resource: Resource,
    pub attribution: Attribution,
    /// True for the series holding the limit of `resource`/`attribution`
    /// (`RLIMIT_NOFILE` for `fds{max_process}`), not its value.
    pub is_limit: bool,
}

impl SeriesKey {
    pub fn new(target: impl Into<String>, resource: Resource, attribution: Attribution) -> Self {
        SeriesKey {
            target: target.into(),
            resource,
            attribution,
            is_limit: false,
        }
    }

    /// The whole of `resource`.
    pub fn total(target: impl Into<String>, resource: Resource) -> Self {
        SeriesKey::new(target, resource, Attribution::Total)
    }

    /// Decodes the text columns the store keeps (and the JSON API's fields): `resource` may
    /// carry the `.limit` suffix. Never fails; see the crate documentation.
    pub fn from_text(
        target: impl Into<String>,
        resource: impl AsRef<str>,
        attribution: impl AsRef<str>,
    ) -> Self {
        let (resource, attribution) = (resource.as_ref(), attribution.as_ref());
        let (resource, is_limit) = match resource.strip_suffix(LIMIT_SUFFIX) {
            Some(base) if !base.is_empty() => (Resource::parse(base), true),
            _ => (Resource::parse(resource), false),
        };
        let attribution = Attribution::parse(&resource, attribution);
        SeriesKey {
            target: target.into(),
            resource,
            attribution,
            is_limit,
        }
    }

    /// The resource's text encoding, with `.limit` for a limit series.
    pub fn resource_text(&self) -> String {
        if self.is_limit {
            format!("{}{LIMIT_SUFFIX}", self.resource.as_str())
        } else {
            self.resource.as_str().to_string()
        }
    }

    /// The attribution's text encoding (empty for the total).
    pub fn attribution_text(&self) -> String {
        self.attribution.to_string()
    }

    /// The same series without its target (a target's own table of its series).
    pub fn without_target(self) -> SeriesKey {
        SeriesKey {
            target: String::new(),
            ..self
        }
    }

    /// The series holding the limit of this one. Limits are ordinary series, so a limit that
    /// changes over time keeps its history.
    pub fn limit(&self) -> SeriesKey {
        SeriesKey {
            is_limit: true,
            ..self.clone()
        }
    }

    /// True when this series counts the whole resource rather than one part of it.
    pub fn is_total(&self) -> bool {
        self.attribution.is_total()
    }

    /// `resource{attribution}` without the target, as tables label a row.
    pub fn label(&self) -> String {
        let resource = self.resource_text();
        if self.attribution.is_total() {
            resource
        } else {
            format!("{resource}{{{}}}", self.attribution)
        }
    }
}

impl Ord for SeriesKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (
            &self.target,
            &self.resource,
            self.is_limit,
            &self.attribution,
        )
            .cmp(&(
                &other.target,
                &other.resource,
                other.is_limit,
                &other.attribution,
            ))
    }
}

impl PartialOrd for SeriesKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SeriesKey {
    /// `target/resource{attribution}`, the spelling the CSV input and `--explain` accept.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.target.is_empty() {
            write!(f, "{}/", self.target)?;
        }
        f.write_str(&self.label())
    }
}

/// Why a series name could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseKeyError(String);

impl fmt::Display for ParseKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseKeyError {}

impl FromStr for SeriesKey {
    type Err = ParseKeyError;

    /// `target/resource{attribution}`, `resource{attribution}`, `target/resource` or a plain
    /// `name`. The part before `{` is split at its last `/` into target and resource (no `/`:
    /// empty target); the text between the first `{` and the closing `}` is the attribution
    /// (absent: the total). A plain name such as `heap_used` is that resource of the empty
    /// target.
    fn from_str(name: &str) -> Result<SeriesKey, ParseKeyError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(ParseKeyError("series name is empty".to_string()));
        }
        let (path, attribution) = match name.find('{') {
            Some(open) => {
                let Some(inner) = name[open + 1..].strip_suffix('}') else {
                    return Err(ParseKeyError(format!(
                        "series name {name:?} has '{{' without a closing '}}' at the end"
                    )));
                };
                (&name[..open], inner.trim())
            }
            None => {
                if name.contains('}') {
                    return Err(ParseKeyError(format!(
                        "series name {name:?} has '}}' without '{{'"
                    )));
                }
                (name, "")
            }
        };
        let (target, resource) = match path.rfind('/') {
            Some(slash) => (path[..slash].trim(), path[slash + 1..].trim()),
            None => ("", path.trim()),
        };
        if resource.is_empty() {
            return Err(ParseKeyError(format!(
                "series name {name:?} has no resource before '{{'"
            )));
        }
        Ok(SeriesKey::from_text(target, resource, attribution))
    }
}

/// The JSON shape: `{"target": ..., "resource": ..., "attribution": ...}` with the text
/// encodings, as the API has always served it (`"resource": "threads.limit"` for a limit).
#[derive(Serialize, Deserialize)]
struct KeyFields {
    target: String,
    resource: String,
    #[serde(default)]
    attribution: String,
}

impl Serialize for SeriesKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        KeyFields {
            target: self.target.clone(),
            resource: self.resource_text(),
            attribution: self.attribution_text(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SeriesKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = KeyFields::deserialize(deserializer)?;
        Ok(SeriesKey::from_text(
            fields.target,
            &fields.resource,
            &fields.attribution,
        ))
    }
}

/// How a target was named: what the user sees as "the service".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A `[[target]]` rule of the configuration.
    Rule,
    /// A systemd service.
    Unit,
    /// A container, by its id.
    Container,
    /// Automatically, by executable and command line.
    Exe,
    /// The command `leakwatch run` supervises.
    Run,
}

impl TargetKind {
    pub const ALL: [TargetKind; 5] = [
        TargetKind::Rule,
        TargetKind::Unit,
        TargetKind::Container,
        TargetKind::Exe,
        TargetKind::Run,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Rule => "rule",
            TargetKind::Unit => "unit",
            TargetKind::Container => "container",
            TargetKind::Exe => "exe",
            TargetKind::Run => "run",
        }
    }

    /// Named by the user (a rule, or the command they supervise), as opposed to found.
    pub fn is_configured(self) -> bool {
        matches!(self, TargetKind::Rule | TargetKind::Run)
    }

    pub fn parse(text: &str) -> Option<TargetKind> {
        TargetKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(key: &SeriesKey) {
        let back = SeriesKey::from_text(
            key.target.clone(),
            key.resource_text(),
            key.attribution_text(),
        );
        assert_eq!(&back, key, "text columns of {key}");
        let parsed: SeriesKey = key.to_string().parse().unwrap();
        assert_eq!(&parsed, key, "display of {key}");
        let json = serde_json::to_string(key).unwrap();
        let from_json: SeriesKey = serde_json::from_str(&json).unwrap();
        assert_eq!(&from_json, key, "json {json}");
    }

    #[test]
    fn every_key_the_agent_writes_reads_back_as_itself() {
        let keys = [
            SeriesKey::total("svc", Resource::Processes),
            SeriesKey::total("svc", Resource::Threads),
            SeriesKey::new(
                "svc",
                Resource::Threads,
                Attribution::ThreadGroup("Analytics-#".into()),
            ),
            SeriesKey::new("svc", Resource::Threads, Attribution::Other),
            SeriesKey::new("svc", Resource::Threads, Attribution::MaxProcess),
            SeriesKey::new("svc", Resource::Threads, Attribution::MaxProcess).limit(),
            SeriesKey::new("svc", Resource::Fds, Attribution::FdKind(FdKind::Socket)),
            SeriesKey::new("svc", Resource::Fds, Attribution::FdKind(FdKind::Other)),
            SeriesKey::new(
                "svc",
                Resource::Fds,
                Attribution::FdPath("/srv/orders/order-audit.log".into()),
            ),
            SeriesKey::new(
                "svc",
                Resource::Fds,
                Attribution::FdPath("/tmp/upload-#.tmp (deleted)".into()),
            ),
            SeriesKey::new("svc", Resource::Fds, Attribution::FdPathOther),
            SeriesKey::new("svc", Resource::Fds, Attribution::MaxProcess).limit(),
            SeriesKey::new(
                "svc",
                Resource::Tcp,
                Attribution::TcpState(TcpState::CloseWait),
            ),
            SeriesKey::new(
                "svc",
                Resource::TcpPeer,
                Attribution::TcpPeer {
                    state: TcpState::CloseWait,
                    peer: "127.0.0.1:8443".into(),
                },
            ),
            SeriesKey::new(
                "svc",
                Resource::TcpPeer,
                Attribution::TcpPeer {
                    state: TcpState::Established,
                    peer: "10.0.0.5 -> :443".into(),
                },
            ),
            SeriesKey::new("svc", Resource::TcpPeer, Attribution::Other),
            SeriesKey::new(
                "svc",
                Resource::Sockets,
                Attribution::Socket(SocketKind::Udp),
            ),
            SeriesKey::new(
                "svc",
                Resource::Memory,
                Attribution::Memory(MemoryKind::Anon),
            ),
            SeriesKey::new(
                "svc",
                Resource::Memory,
                Attribution::Memory(MemoryKind::Cgroup),
            )
            .limit(),
            SeriesKey::new(
                "svc",
                Resource::Gauge,
                Attribution::Gauge("go_goroutines".into()),
            ),
            SeriesKey::total("svc", Resource::Restarts),
            SeriesKey::total("", Resource::Named("heap_used".into())),
            SeriesKey::new(
                "k8s/ns/pod",
                Resource::Named("queue".into()),
                Attribution::Text("orders".into()),
            ),
        ];
        for key in &keys {
            roundtrip(key);
        }
    }

    #[test]
    fn the_text_encoding_is_the_one_already_stored() {
        let key = SeriesKey::new(
            "svc",
            Resource::TcpPeer,
            Attribution::TcpPeer {
                state: TcpState::CloseWait,
                peer: "127.0.0.1:8443".into(),
            },
        );
        assert_eq!(key.resource_text(), "tcp_peer");
        assert_eq!(key.attribution_text(), "CLOSE_WAIT 127.0.0.1:8443");
        assert_eq!(key.to_string(), "svc/tcp_peer{CLOSE_WAIT 127.0.0.1:8443}");
        let limit = SeriesKey::new("svc", Resource::Fds, Attribution::MaxProcess).limit();
        assert_eq!(limit.resource_text(), "fds.limit");
        assert_eq!(limit.attribution_text(), "max_process");
        assert_eq!(
            serde_json::to_value(&limit).unwrap(),
            serde_json::json!({"target": "svc", "resource": "fds.limit", "attribution": "max_process"})
        );
    }

    #[test]
    fn fd_path_groups_are_told_from_fd_kinds() {
        let key: SeriesKey = "svc/fds{/var/log/app-#.log}".parse().unwrap();
        assert_eq!(
            key.attribution,
            Attribution::FdPath("/var/log/app-#.log".into())
        );
        assert_eq!(key.label(), "fds{/var/log/app-#.log}");
        // A path named like an fd kind is still a path, and the kinds stay kinds.
        let key = SeriesKey::from_text("svc", "fds", "/file");
        assert_eq!(key.attribution, Attribution::FdPath("/file".into()));
        let key = SeriesKey::from_text("svc", "fds", "file");
        assert_eq!(key.attribution, Attribution::FdKind(FdKind::File));
        let key = SeriesKey::from_text("svc", "fds", "other");
        assert_eq!(key.attribution, Attribution::FdKind(FdKind::Other));
        let key = SeriesKey::from_text("svc", "fds", "other files");
        assert_eq!(key.attribution, Attribution::FdPathOther);
        // Only fds have path groups.
        let key = SeriesKey::from_text("svc", "threads", "/x");
        assert_eq!(key.attribution, Attribution::ThreadGroup("/x".into()));
    }

    #[test]
    fn unknown_values_are_kept_verbatim() {
        let key = SeriesKey::from_text("svc", "fds", "memfd");
        assert_eq!(key.attribution, Attribution::Text("memfd".into()));
        assert_eq!(key.attribution_text(), "memfd");
        let key = SeriesKey::from_text("svc", "tcp_peer", "BOGUS 1.2.3.4:5");
        assert_eq!(key.attribution, Attribution::Text("BOGUS 1.2.3.4:5".into()));
        let key = SeriesKey::from_text("svc", "queue_depth.limit", "");
        assert!(key.is_limit);
        assert_eq!(key.resource, Resource::Named("queue_depth".into()));
        // A resource that is only the suffix is a name, not a limit of nothing.
        let key = SeriesKey::from_text("svc", ".limit", "");
        assert!(!key.is_limit);
    }

    #[test]
    fn series_names_are_parsed_with_their_errors() {
        let key: SeriesKey = "java-svc/threads{Analytics-#}".parse().unwrap();
        assert_eq!(key.target, "java-svc");
        assert_eq!(
            key.attribution,
            Attribution::ThreadGroup("Analytics-#".into())
        );
        let key: SeriesKey = "k8s/ns/pod/fds".parse().unwrap();
        assert_eq!(key.target, "k8s/ns/pod");
        assert_eq!(key.resource, Resource::Fds);
        assert!(key.is_total());
        assert!("".parse::<SeriesKey>().is_err());
        assert!("threads{x".parse::<SeriesKey>().is_err());
        assert!("threads}".parse::<SeriesKey>().is_err());
        assert!("svc/{x}".parse::<SeriesKey>().is_err());
    }

    #[test]
    fn limits_follow_the_resource() {
        let limit = Resource::TcpPeer.limit_series("svc").unwrap();
        assert_eq!(limit.resource, Resource::Fds);
        assert_eq!(limit.attribution, Attribution::MaxProcess);
        assert!(limit.is_limit);
        assert!(Resource::Gauge.limit_series("svc").is_none());
        let memory = Resource::Memory.limit_series("svc").unwrap();
        assert_eq!(memory.resource_text(), "memory.limit");
        assert_eq!(memory.attribution_text(), "cgroup");
    }

    #[test]
    fn keys_sort_as_their_text_columns() {
        let mut keys: Vec<SeriesKey> = [
            ("svc", "threads.limit", "max_process"),
            ("svc", "threads", "max_process"),
            ("svc", "threads", "Leak-#"),
            ("svc", "threads", ""),
            ("svc", "tcp_peer", "CLOSE_WAIT 10.0.0.1:5"),
            ("svc", "tcp_peer", "CLOSE_WAIT 10.0.0.1:10"),
            ("svc", "fds", "socket"),
            ("api", "memory", "rss"),
        ]
        .into_iter()
        .map(|(t, r, a)| SeriesKey::from_text(t, r, a))
        .collect();
        keys.sort();
        let text: Vec<(String, String, String)> = keys
            .iter()
            .map(|k| (k.target.clone(), k.resource_text(), k.attribution_text()))
            .collect();
        let mut expected = text.clone();
        expected.sort();
        assert_eq!(text, expected);
    }

    #[test]
    fn target_kinds_read_back() {
        for kind in TargetKind::ALL {
            assert_eq!(TargetKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(TargetKind::parse("pod"), None);
    }
}
