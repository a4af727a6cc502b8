//! `/proc/PID/cgroup` and the cgroup mounts from `/proc/self/mountinfo`.
//!
//! Production hosts are mostly cgroup v2 (one unified hierarchy); older and hybrid hosts
//! mount v1 controllers (`memory`, `pids`) separately. Both are supported: the process's
//! path is found per controller and resolved against where that controller is mounted.

/// The paths of one process in each hierarchy that matters to leakwatch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcCgroups {
    /// Path in the unified hierarchy (`0::/system.slice/foo.service`).
    pub unified: Option<String>,
    /// Path in the v1 `name=systemd` hierarchy.
    pub systemd: Option<String>,
    /// Path in the v1 `memory` controller.
    pub memory: Option<String>,
    /// Path in the v1 `pids` controller.
    pub pids: Option<String>,
}

impl ProcCgroups {
    /// The path that best names the service: unified if non-root, else the systemd one.
    pub fn display_path(&self) -> Option<&str> {
        match (&self.unified, &self.systemd) {
            (Some(u), _) if u != "/" => Some(u),
            (_, Some(s)) => Some(s),
            (Some(u), None) => Some(u),
            (None, None) => None,
        }
    }
}

pub fn parse(bytes: &[u8]) -> ProcCgroups {
    let mut cgroups = ProcCgroups::default();
    for line in bytes.split(|&b| b == b'\n') {
        // hierarchy-id:controller-list:path — the path may contain ':'.
        let mut parts = line.splitn(3, |&b| b == b':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let path = String::from_utf8_lossy(path).into_owned();
        if id == b"0" && controllers.is_empty() {
            cgroups.unified = Some(path);
            continue;
        }
        for controller in controllers.split(|&b| b == b',') {
            match controller {
                b"name=systemd" => cgroups.systemd = Some(path.clone()),
                b"memory" => cgroups.memory = Some(path.clone()),
                b"pids" => cgroups.pids = Some(path.clone()),
                _ => {}
            }
        }
    }
    cgroups
}

/// The systemd unit a cgroup path names: the last `.service`, `.scope` or `.socket`
/// component (`/system.slice/postgresql@15-main.service` gives `postgresql@15-main.service`).
pub fn systemd_unit(path: &str) -> Option<String> {
    path.split('/')
        .rev()
        .find(|part| {
            part.ends_with(".service") || part.ends_with(".scope") || part.ends_with(".socket")
        })
        .map(str::to_owned)
}

/// A container id (64 hex digits) in a cgroup path: `/docker/<id>`, `docker-<id>.scope`,
/// `cri-containerd-<id>.scope`, `libpod-<id>.scope`, `/kubepods/.../<id>`.
pub fn container_id(path: &str) -> Option<String> {
    for part in path.split('/').rev() {
        let bytes = part.as_bytes();
        let mut run_start = 0;
        for i in 0..=bytes.len() {
            let is_hex = i < bytes.len() && bytes[i].is_ascii_hexdigit();
            if !is_hex {
                if i - run_start == 64 {
                    return Some(part[run_start..i].to_ascii_lowercase());
                }
                run_start = i + 1;
            }
        }
    }
    None
}

/// The Kubernetes pod UID in a cgroup path under `kubepods`: `/kubepods/burstable/pod<uid>/…`
/// (cgroupfs driver) or `kubepods-burstable-pod<uid>.slice` (systemd driver, where the UID's
/// dashes are underscores). Returned with dashes, as `kubectl get pod -o
/// jsonpath={.metadata.uid}` prints it.
pub fn pod_uid(path: &str) -> Option<String> {
    if !path.split('/').any(|part| part.starts_with("kubepods")) {
        return None;
    }
    path.split('/').find_map(|part| {
        let part = part.strip_suffix(".slice").unwrap_or(part);
        let uid = match part.rfind("-pod") {
            Some(at) => &part[at + 4..],
            None => part.strip_prefix("pod")?,
        };
        let valid = !uid.is_empty()
            && uid.len() <= 64
            && uid
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_');
        valid.then(|| uid.replace('_', "-").to_ascii_lowercase())
    })
}

/// Where each cgroup hierarchy is mounted, from `/proc/self/mountinfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupMounts {
    pub unified: Option<Mount>,
    pub memory_v1: Option<Mount>,
    pub pids_v1: Option<Mount>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The root of the mount inside the hierarchy (field 4 of mountinfo), usually `/`.
    pub root: String,
    pub mount_point: String,
}

impl Mount {
    /// The directory of a process's cgroup `path` under this mount, or `None` when the path
    /// lies outside what is mounted (another cgroup namespace).
    pub fn dir(&self, path: &str) -> Option<String> {
        let relative = if self.root == "/" {
            path
        } else {
            path.strip_prefix(self.root.as_str())?
        };
        Some(format!(
            "{}/{}",
            self.mount_point.trim_end_matches('/'),
            relative.trim_start_matches('/')
        ))
    }
}

impl CgroupMounts {
    pub fn layout(&self) -> &'static str {
        match (
            &self.unified,
            self.memory_v1.is_some() || self.pids_v1.is_some(),
        ) {
            (Some(_), true) => "hybrid",
            (Some(_), false) => "v2",
            (None, true) => "v1",
            (None, false) => "none",
        }
    }
}

pub fn parse_mountinfo(bytes: &[u8]) -> CgroupMounts {
    let mut mounts = CgroupMounts::default();
    for line in bytes.split(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line);
        // Fields before " - " are fixed; after it: fstype, source, super options.
        let Some((before, after)) = text.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = before.split(' ').collect();
        let tail: Vec<&str> = after.split(' ').collect();
        if fields.len() < 5 || tail.len() < 3 {
            continue;
        }
        let mount = Mount {
            root: unescape(fields[3]),
            mount_point: unescape(fields[4]),
        };
        match tail[0] {
            // Prefer /sys/fs/cgroup itself over a nested unified mount when both exist.
            "cgroup2" if mounts.unified.is_none() || mount.mount_point == "/sys/fs/cgroup" => {
                mounts.unified = Some(mount);
            }
            "cgroup" => {
                let options = tail[2].split(',');
                for option in options {
                    match option {
                        "memory" => mounts.memory_v1 = Some(mount.clone()),
                        "pids" => mounts.pids_v1 = Some(mount.clone()),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    mounts
}

/// The cgroup a process's memory is accounted in: the v1 `memory` controller's when that
/// is mounted, else the unified hierarchy's (the one the sampler reads `memory.current` or
/// `memory.usage_in_bytes` from).
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum MemoryCgroup {
    /// Not known: `/proc/PID/cgroup` unreadable or without a line for the hierarchy that
    /// holds memory, no such hierarchy mounted, or the path outside what is mounted.
    #[default]
    Unknown,
    /// The root of the hierarchy (or of the mounted part of it): the whole host, or all of a
    /// cgroup namespace, never one process's own.
    Root,
    /// A cgroup below the root, by its path in the hierarchy (`/system.slice/foo.service`).
    Path(String),
}

impl MemoryCgroup {
    pub fn path(&self) -> Option<&str> {
        match self {
            MemoryCgroup::Path(path) => Some(path),
            _ => None,
        }
    }
}

/// Which cgroup holds a process's memory, from its `/proc/PID/cgroup` and the mounts.
pub fn memory_cgroup(cgroups: &ProcCgroups, mounts: &CgroupMounts) -> MemoryCgroup {
    let (mount, path) = match (&mounts.memory_v1, &mounts.unified) {
        (Some(v1), _) => (v1, cgroups.memory.as_deref()),
        (None, Some(unified)) => (unified, cgroups.unified.as_deref()),
        (None, None) => return MemoryCgroup::Unknown,
    };
    let Some(path) = path else {
        return MemoryCgroup::Unknown;
    };
    if mount.dir(path).is_none() {
        return MemoryCgroup::Unknown;
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() || trimmed == mount.root.trim_end_matches('/') {
        MemoryCgroup::Root
    } else {
        MemoryCgroup::Path(path.to_string())
    }
}

/// What a cgroup is, by its path: whether it can be one service's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupKind {
    /// A systemd service (`*.service`) outside the user slices.
    Service,
    /// A container: a 64-hex-digit id in its last component (`docker-<id>.scope`,
    /// `cri-containerd-<id>.scope`, `/docker/<id>`).
    Container,
    /// A Kubernetes pod (`kubepods-…-pod<uid>.slice`, `/kubepods/…/pod<uid>`).
    Pod,
    /// A login's: anything under `user.slice` (sessions, the user manager, its apps), a
    /// `session-*.scope`, or systemd's own `init.scope`.
    Session,
    /// A slice (`system.slice`, `machine.slice`): a parent of services, shared by nature.
    Slice,
    /// Anything else (a cgroup made by hand or by another manager).
    Other,
}

/// Classifies a cgroup path (not the root) by its components.
pub fn cgroup_kind(path: &str) -> CgroupKind {
    let mut parts = path.split('/').filter(|part| !part.is_empty());
    let leaf = parts.next_back().unwrap_or("");
    let under_user = path.split('/').any(|part| {
        part == "user.slice" || (part.starts_with("user-") && part.ends_with(".slice"))
    });
    if under_user
        || leaf == "init.scope"
        || (leaf.starts_with("session-") && leaf.ends_with(".scope"))
        || (leaf.starts_with("user@") && leaf.ends_with(".service"))
    {
        return CgroupKind::Session;
    }
    if container_id(leaf).is_some() {
        return CgroupKind::Container;
    }
    let under_kubepods = path.split('/').any(|part| part.starts_with("kubepods"));
    let pod_leaf = leaf.starts_with("pod") || leaf.contains("-pod");
    if under_kubepods && pod_leaf {
        return CgroupKind::Pod;
    }
    if leaf.ends_with(".service") {
        return CgroupKind::Service;
    }
    if leaf.ends_with(".slice") {
        return CgroupKind::Slice;
    }
    CgroupKind::Other
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let octal = &bytes[i + 1..i + 4];
            if octal.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let value = octal
                    .iter()
                    .fold(0u16, |acc, digit| acc * 8 + u16::from(digit - b'0'));
                // The kernel escapes bytes, so at most \377; anything larger is literal text.
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_service() {
        let cg = parse(b"0::/system.slice/postgresql@15-main.service\n");
        assert_eq!(
            cg.unified.as_deref(),
            Some("/system.slice/postgresql@15-main.service")
        );
        assert_eq!(
            systemd_unit(cg.display_path().unwrap()).as_deref(),
            Some("postgresql@15-main.service")
        );
    }

    #[test]
    fn v1_hybrid_fixture() {
        let cg = parse(include_bytes!("../../tests/fixtures/cgroup-v1-hybrid.txt"));
        assert_eq!(cg.memory.as_deref(), Some("/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope"));
        assert_eq!(cg.pids.as_deref(), cg.memory.as_deref());
        let path = cg.display_path().unwrap();
        assert_eq!(
            container_id(path).as_deref(),
            Some("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
        );
        assert_eq!(
            systemd_unit(path).as_deref(),
            Some("docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope")
        );
    }

    fn fixture_memory(cgroup: &[u8], mountinfo: &[u8]) -> MemoryCgroup {
        memory_cgroup(&parse(cgroup), &parse_mountinfo(mountinfo))
    }

    const HYBRID: &[u8] = include_bytes!("../../tests/fixtures/mountinfo-hybrid.txt");
    const V2: &[u8] = include_bytes!("../../tests/fixtures/mountinfo-v2.txt");

    /// v1 hybrid (the development machine): memory lives in the v1 `memory` controller, so
    /// a process whose unified and systemd paths are `/` can still have a memory cgroup of
    /// its own path, and one whose memory path is `/` is in the root whatever else says.
    #[test]
    fn memory_cgroup_on_v1_hybrid() {
        let shell = include_bytes!("../../tests/fixtures/cgroup-v1-hybrid-dev-shell.txt");
        let memory = fixture_memory(shell, HYBRID);
        let path = memory.path().expect("a memory cgroup below the root");
        assert!(path.starts_with("/process_api/"));
        assert_eq!(cgroup_kind(path), CgroupKind::Other);
        let init = include_bytes!("../../tests/fixtures/cgroup-v1-hybrid-dev-init.txt");
        assert_eq!(fixture_memory(init, HYBRID), MemoryCgroup::Root);
        let docker = include_bytes!("../../tests/fixtures/cgroup-v1-hybrid.txt");
        let memory = fixture_memory(docker, HYBRID);
        assert_eq!(cgroup_kind(memory.path().unwrap()), CgroupKind::Container);
        // Only the unified line readable: the hierarchy that holds memory is not known.
        assert_eq!(
            fixture_memory(b"0::/system.slice/a.service\n", HYBRID),
            MemoryCgroup::Unknown
        );
        // Nothing readable (the file could not be read: an empty parse).
        assert_eq!(fixture_memory(b"", HYBRID), MemoryCgroup::Unknown);
    }

    #[test]
    fn memory_cgroup_on_v2() {
        let service = include_bytes!("../../tests/fixtures/cgroup-v2-service.txt");
        assert_eq!(
            fixture_memory(service, V2),
            MemoryCgroup::Path("/system.slice/postgresql@15-main.service".into())
        );
        let root = include_bytes!("../../tests/fixtures/cgroup-v2-root.txt");
        assert_eq!(fixture_memory(root, V2), MemoryCgroup::Root);
        // A v1-only line on a v2 host says nothing about memory.
        assert_eq!(fixture_memory(b"4:memory:/a\n", V2), MemoryCgroup::Unknown);
        // No cgroup mounted at all.
        assert_eq!(fixture_memory(service, b""), MemoryCgroup::Unknown);
        // The root of a mount that shows only part of the hierarchy (a cgroup namespace's
        // or a container's view) is that mount's whole, not a process's own.
        let mounts =
            parse_mountinfo(b"30 22 0:26 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        assert_eq!(
            memory_cgroup(&parse(b"0::/kubepods/pod1\n"), &mounts),
            MemoryCgroup::Root
        );
        assert_eq!(
            memory_cgroup(&parse(b"0::/elsewhere\n"), &mounts),
            MemoryCgroup::Unknown
        );
    }

    #[test]
    fn cgroup_kinds_from_fixtures() {
        let kind = |bytes: &[u8]| cgroup_kind(fixture_memory(bytes, V2).path().unwrap());
        assert_eq!(
            kind(include_bytes!("../../tests/fixtures/cgroup-v2-service.txt")),
            CgroupKind::Service
        );
        assert_eq!(
            kind(include_bytes!("../../tests/fixtures/cgroup-v2-session.txt")),
            CgroupKind::Session
        );
        assert_eq!(
            kind(include_bytes!("../../tests/fixtures/cgroup-v2-init.txt")),
            CgroupKind::Session
        );
        assert_eq!(
            kind(include_bytes!(
                "../../tests/fixtures/cgroup-v2-kubepods.txt"
            )),
            CgroupKind::Container
        );
        // The pod itself and its v1 cgroupfs spelling.
        assert_eq!(
            cgroup_kind(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5e0c.slice"
            ),
            CgroupKind::Pod
        );
        assert_eq!(cgroup_kind("/kubepods/burstable/pod5e0c"), CgroupKind::Pod);
        assert_eq!(
            pod_uid("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5e0c_11aa.slice/cri-containerd-ab.scope")
                .as_deref(),
            Some("5e0c-11aa")
        );
        assert_eq!(
            pod_uid("/kubepods/burstable/pod5e0c-11aa/0123").as_deref(),
            Some("5e0c-11aa")
        );
        assert_eq!(pod_uid("/system.slice/pod5e0c.service"), None);
        let fixture = parse(include_bytes!(
            "../../tests/fixtures/cgroup-v2-kubepods.txt"
        ));
        let path = fixture.unified.as_deref().expect("a v2 line");
        assert_eq!(
            pod_uid(path).as_deref(),
            Some("5e0c6a8e-2f1b-4c1e-9d7a-3b2c1d0e9f8a")
        );
        assert_eq!(pod_uid("/kubepods.slice/kubepods-burstable.slice"), None);
        assert_eq!(cgroup_kind("/kubepods.slice"), CgroupKind::Slice);
        assert_eq!(cgroup_kind("/system.slice"), CgroupKind::Slice);
        // The user manager and a login's own services are a login's, not a service's.
        assert_eq!(
            cgroup_kind("/user.slice/user-1000.slice/user@1000.service"),
            CgroupKind::Session
        );
        assert_eq!(
            cgroup_kind("/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service"),
            CgroupKind::Session
        );
        assert_eq!(cgroup_kind("/lw-test-1234"), CgroupKind::Other);
    }

    #[test]
    fn path_with_colon() {
        let cg = parse(b"0::/weird:name.service\n");
        assert_eq!(cg.unified.as_deref(), Some("/weird:name.service"));
    }

    #[test]
    fn no_container_in_plain_path() {
        assert_eq!(
            container_id("/user.slice/user-1000.slice/session-3.scope"),
            None
        );
        // 63 or 65 hex digits are not a container id.
        assert_eq!(container_id(&format!("/docker/{}", "a".repeat(63))), None);
        assert_eq!(container_id(&format!("/docker/{}", "a".repeat(65))), None);
        assert!(container_id(&format!("/kubepods/burstable/pod1/{}", "b".repeat(64))).is_some());
    }

    #[test]
    fn mountinfo_hybrid_and_v2() {
        let hybrid = parse_mountinfo(include_bytes!("../../tests/fixtures/mountinfo-hybrid.txt"));
        assert_eq!(hybrid.layout(), "hybrid");
        assert_eq!(
            hybrid.memory_v1.as_ref().unwrap().mount_point,
            "/sys/fs/cgroup/memory"
        );
        assert_eq!(
            hybrid
                .memory_v1
                .as_ref()
                .unwrap()
                .dir("/system.slice/a.service")
                .as_deref(),
            Some("/sys/fs/cgroup/memory/system.slice/a.service")
        );
        let v2 = parse_mountinfo(
            b"30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
        );
        assert_eq!(v2.layout(), "v2");
        assert_eq!(
            v2.unified.as_ref().unwrap().dir("/").as_deref(),
            Some("/sys/fs/cgroup/")
        );
    }

    #[test]
    fn mount_root_outside_namespace() {
        let mount = Mount {
            root: "/kubepods/pod1".into(),
            mount_point: "/sys/fs/cgroup".into(),
        };
        assert_eq!(
            mount.dir("/kubepods/pod1/c1").as_deref(),
            Some("/sys/fs/cgroup/c1")
        );
        assert_eq!(mount.dir("/other"), None);
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape(r"/mnt/with\040space"), "/mnt/with space");
        assert_eq!(unescape(r"trailing\04"), r"trailing\04");
        assert_eq!(unescape(r"\377"), "\u{fffd}");
    }

    /// Found by the fuzzer in CI: `\777` overflowed the byte it was decoded into.
    #[test]
    fn octal_escape_above_a_byte_is_literal() {
        assert_eq!(unescape(r"a\777b"), r"a\777b");
        assert_eq!(unescape(r"\400"), r"\400");
    }
}
