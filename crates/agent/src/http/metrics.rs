//! `/metrics`: OpenMetrics text (prometheus-client) rebuilt from the latest sample, the
//! current findings, the alert counters and the agent's own counters at each scrape.

use super::{error, AppState};
use crate::daemon::own_rss_bytes;
use crate::daemon::Shared;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use leakwatch_model::{Attribution, Resource, SeriesKey};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};

type Labels = Vec<(String, String)>;
type GaugeFamily = Family<Labels, Gauge<f64, AtomicU64>>;

/// `/metrics`: a registry built from the latest sample on each scrape, so a target that
/// vanished is gone from the next scrape and label cardinality is bounded by the caps on
/// thread groups and peers. Families appear in the order they are registered here.
///
/// Served as OpenMetrics to a client that asks for it (Prometheus does), else in the classic
/// text format (0.0.4) that `promtool check metrics`, curl and older scrapers read: the same
/// samples, with a counter's `# HELP`/`# TYPE` named by its `_total` sample and no `# UNIT`
/// or `# EOF` lines.
pub(super) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut registry = Registry::with_prefix("leakwatch");
    target_metrics(&mut registry, &state.shared);
    finding_metrics(&mut registry, &state.shared);
    alert_metrics(&mut registry, &state.shared);
    agent_metrics(&mut registry, &state.shared);
    stage_metrics(&mut registry, &state.shared);
    let mut body = String::new();
    if let Err(e) = encode(&mut body, &registry) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    }
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            classic_text(&body),
        )
            .into_response()
    }
}

/// OpenMetrics text as the classic Prometheus text format: counter families are named by
/// their `_total` samples in `# HELP` and `# TYPE`; `# UNIT` and `# EOF` are dropped.
fn classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(line) => out.push_str(&line),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn family(registry: &mut Registry, name: &str, help: &str) -> GaugeFamily {
    let family = GaugeFamily::default();
    registry.register(name, help, family.clone());
    family
}

/// The families of the targets' current values.
struct TargetFamilies {
    processes: GaugeFamily,
    threads: GaugeFamily,
    groups: GaugeFamily,
    fds: GaugeFamily,
    fd_paths: GaugeFamily,
    tcp: GaugeFamily,
    peers: GaugeFamily,
    memory: GaugeFamily,
    limits: GaugeFamily,
    app_gauges: GaugeFamily,
}

impl TargetFamilies {
    fn register(registry: &mut Registry) -> TargetFamilies {
        let mut family = |name: &str, help: &str| family(registry, name, help);
        TargetFamilies {
            processes: family("target_processes", "Processes in the target"),
            threads: family("target_threads", "Threads of all processes of the target"),
            groups: family(
                "target_thread_group_threads",
                "Threads per thread-name group (digits collapsed to #)",
            ),
            fds: family(
                "target_fds",
                "Open file descriptors, by kind (kind=\"\" is the total)",
            ),
            fd_paths: family(
                "target_fd_path_fds",
                "File fds per path group (digits and hex ids collapsed to #; path=\"other files\" is the rest)",
            ),
            tcp: family("target_tcp_sockets", "TCP sockets by state"),
            peers: family("target_tcp_peer_sockets", "TCP sockets by state and peer"),
            memory: family("target_memory_bytes", "Memory by kind"),
            limits: family("target_limit", "The limit a resource runs into"),
            app_gauges: family(
                "target_app_value",
                "Gauges scraped from the target's own metrics endpoint",
            ),
        }
    }

    /// Sets the gauge of one series of `target`; series without a metric (a process's
    /// largest value, resources not exported) are left out.
    fn set(&self, target: &str, key: &SeriesKey, value: f64) {
        let label = |pairs: &[(&str, &str)]| -> Labels {
            std::iter::once(("target".to_string(), target.to_string()))
                .chain(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
                .collect()
        };
        let gauge = if key.is_limit {
            self.limits
                .get_or_create(&label(&[("resource", key.resource.as_str())]))
        } else {
            match (&key.resource, &key.attribution) {
                (_, Attribution::MaxProcess) => return,
                (Resource::Processes, _) => self.processes.get_or_create(&label(&[])),
                (Resource::Threads, Attribution::Total) => self.threads.get_or_create(&label(&[])),
                (Resource::Threads, group) => self
                    .groups
                    .get_or_create(&label(&[("group", &group.to_string())])),
                (Resource::Fds, path @ (Attribution::FdPath(_) | Attribution::FdPathOther)) => self
                    .fd_paths
                    .get_or_create(&label(&[("path", &path.to_string())])),
                (Resource::Fds, kind) => self
                    .fds
                    .get_or_create(&label(&[("kind", &kind.to_string())])),
                (Resource::TcpPeer, Attribution::TcpPeer { state, peer }) => self
                    .peers
                    .get_or_create(&label(&[("state", state.as_str()), ("peer", peer)])),
                (Resource::TcpPeer, other) => self
                    .peers
                    .get_or_create(&label(&[("state", &other.to_string()), ("peer", "")])),
                // UDP and UNIX sockets share the family of TCP states (state="udp").
                (Resource::Tcp | Resource::Sockets, state) => self
                    .tcp
                    .get_or_create(&label(&[("state", &state.to_string())])),
                (Resource::Memory, kind) => self
                    .memory
                    .get_or_create(&label(&[("kind", &kind.to_string())])),
                (Resource::Gauge, name) => self
                    .app_gauges
                    .get_or_create(&label(&[("name", &name.to_string())])),
                _ => return,
            }
        };
        gauge.set(value);
    }
}

/// Every live target's current values, from the latest sample.
fn target_metrics(registry: &mut Registry, shared: &Shared) {
    let families = TargetFamilies::register(registry);
    let latest = shared.latest.get();
    for (target, (_, points)) in &latest.targets {
        for (key, value) in points {
            families.set(target, key, *value);
        }
    }
}

/// Forecast, rate and current value of each current finding.
fn finding_metrics(registry: &mut Registry, shared: &Shared) {
    let eta = family(
        registry,
        "finding_eta_seconds",
        "Forecast seconds until the resource reaches its limit (conservative bound)",
    );
    let rate = family(
        registry,
        "finding_rate_per_hour",
        "Growth of the resource per hour (restarts per hour for crash loops)",
    );
    let current = family(
        registry,
        "finding_current",
        "Current value of the finding's resource",
    );
    for finding in shared.findings.get().iter() {
        let kind = finding.kind.to_string();
        let labels: Labels = vec![
            ("target".into(), finding.key.target.clone()),
            ("kind".into(), kind),
            ("resource".into(), finding.key.resource_text()),
            ("attribution".into(), finding.key.attribution_text()),
            ("state".into(), finding.state.to_string()),
        ];
        if let Some(seconds) = finding.eta_conservative_seconds.or(finding.eta_seconds) {
            eta.get_or_create(&labels).set(seconds);
        }
        rate.get_or_create(&labels).set(finding.rate_per_hour);
        current.get_or_create(&labels).set(finding.current);
    }
}

/// Notifications per channel and outcome, from the alert loop's last read of the outbox.
fn alert_metrics(registry: &mut Registry, shared: &Shared) {
    let deliveries = Family::<Labels, Counter<u64>>::default();
    registry.register(
        "alert_notifications",
        "Alert notifications per channel and outcome since the outbox was created",
        deliveries.clone(),
    );
    for c in shared.alert_counters.get().iter() {
        for (outcome, value) in [
            ("sent", c.sent),
            ("failed", c.failed),
            ("retried", c.retried),
            ("expired", c.expired),
        ] {
            deliveries
                .get_or_create(&vec![
                    ("channel".to_string(), c.channel.clone()),
                    ("outcome".to_string(), outcome.to_string()),
                ])
                .inc_by(value);
        }
    }
}

/// The agent's own cost and counters: gauges for levels, counters (`_total`) for counts
/// since start, as the Prometheus naming conventions ask.
fn agent_metrics(registry: &mut Registry, shared: &Shared) {
    for (name, help, value) in agent_values(shared) {
        match name.strip_suffix("_total") {
            Some(counter_name) => {
                let counter = Counter::<u64>::default();
                counter.inc_by(value as u64);
                registry.register(counter_name, help, counter);
            }
            None => {
                let gauge = Gauge::<f64, AtomicU64>::default();
                gauge.set(value);
                registry.register(name, help, gauge);
            }
        }
    }
}

/// Each stage thread's heartbeat: age and whether it is stalled.
fn stage_metrics(registry: &mut Registry, shared: &Shared) {
    let stalled = family(
        registry,
        "agent_stage_stalled",
        "1 when the stage has not beaten for longer than its bound (stuck)",
    );
    let age = family(
        registry,
        "agent_stage_heartbeat_age_seconds",
        "Seconds since the stage's last heartbeat",
    );
    for stage in shared.heartbeats.report() {
        let labels: Labels = vec![("stage".into(), stage.name.clone())];
        let is_stalled = stage.state == crate::health::StageState::Stalled;
        stalled
            .get_or_create(&labels)
            .set(f64::from(u8::from(is_stalled)));
        age.get_or_create(&labels).set(stage.age.as_secs_f64());
    }
}

/// `(name, help, value)` of each of the agent's own metrics; a name ending in `_total` is
/// a counter.
fn agent_values(shared: &Shared) -> [(&'static str, &'static str, f64); 19] {
    let s = &shared.stats;
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed) as f64;
    [
        (
            "agent_sample_cpu_seconds",
            "CPU time of the last sampling pass",
            load(&s.last_sample_cpu_us) / 1e6,
        ),
        (
            "agent_sample_wall_seconds",
            "Wall time of the last sampling pass",
            load(&s.last_sample_wall_us) / 1e6,
        ),
        (
            "agent_store_seconds",
            "Time to store the last interval",
            load(&s.last_store_us) / 1e6,
        ),
        (
            "agent_samples_total",
            "Sampling passes since start",
            load(&s.samples),
        ),
        (
            "agent_samples_dropped_total",
            "Intervals dropped because the store was behind",
            load(&s.dropped),
        ),
        (
            "agent_store_errors_total",
            "Intervals that could not be stored",
            load(&s.store_errors),
        ),
        (
            "agent_targets",
            "Targets in the last pass",
            load(&s.targets),
        ),
        (
            "agent_series",
            "Series written in the last interval",
            load(&s.series_written),
        ),
        (
            "agent_store_catalog_slots",
            "Slots of the writer's in-memory catalog of targets and series",
            load(&s.store_catalog_slots),
        ),
        (
            "agent_detect_catalog_slots",
            "Slots of the detection reader's in-memory catalog of targets and series",
            load(&s.detect_catalog_slots),
        ),
        (
            "agent_app_scrape_errors_total",
            "Failed scrapes of app gauge endpoints since start",
            load(&shared.gauges.errors),
        ),
        (
            "agent_restarts_seen_total",
            "Target restarts seen since start",
            load(&s.restarts_seen),
        ),
        (
            "agent_incidents_captured_total",
            "Incident folders of evidence written since start",
            load(&s.incidents_captured),
        ),
        (
            "agent_incidents_dropped_total",
            "Evidence captures dropped because the capture queue was full",
            load(&s.incidents_dropped),
        ),
        (
            "agent_mitigations_run_total",
            "Restart commands run since start",
            load(&s.mitigations_run),
        ),
        (
            "agent_alerting_down",
            "1 when alerting is configured but its outbox cannot be written or read",
            f64::from(u8::from(s.alerting_down.load(Ordering::Relaxed))),
        ),
        (
            "agent_http_connections_refused_total",
            "HTTP connections closed at accept because the connection cap was reached",
            load(&s.http_refused),
        ),
        (
            "agent_http_accept_errors_total",
            "HTTP accept calls that failed (EMFILE and the like)",
            load(&s.http_accept_errors),
        ),
        (
            "agent_resident_memory_bytes",
            "Resident memory of the agent",
            own_rss_bytes() as f64,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::classic_text;

    #[test]
    fn counters_are_named_by_their_total_in_the_classic_format() {
        let om = "# HELP leakwatch_agent_samples Sampling passes since start.\n\
                  # TYPE leakwatch_agent_samples counter\n\
                  leakwatch_agent_samples_total 8\n\
                  # HELP leakwatch_agent_targets Targets in the last pass.\n\
                  # TYPE leakwatch_agent_targets gauge\n\
                  # UNIT leakwatch_agent_targets targets\n\
                  leakwatch_agent_targets 3\n\
                  # EOF\n";
        assert_eq!(
            classic_text(om),
            "# HELP leakwatch_agent_samples_total Sampling passes since start.\n\
             # TYPE leakwatch_agent_samples_total counter\n\
             leakwatch_agent_samples_total 8\n\
             # HELP leakwatch_agent_targets Targets in the last pass.\n\
             # TYPE leakwatch_agent_targets gauge\n\
             leakwatch_agent_targets 3\n"
        );
    }
}
