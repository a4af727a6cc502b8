//! Where updates come from: a thread that samples this host (standalone) or polls the agent
//! every interval and sends [`Update`]s to the UI thread. A failed round is sent as an
//! error and the next round tries again; the thread ends when the UI has gone.

use super::model::{total, FindingView, Key, TargetUpdate, Update};
use crate::agent_cmd::{self, ClientArgs, NO_QUERY};
use anyhow::{Context, Result};
// `--standalone`: the agent's grouping of processes into targets, on this host.
use leakwatch_agent::standalone::{group, RestartTracker, Targeting};
use leakwatch_api::{self as api, paths};
use leakwatch_model::Resource;
use leakwatch_proc::{Options, Sampler, Selection};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

/// Thread groups and socket peers kept per target: the agent's defaults, so both modes
/// fold the same names into "other".
const MAX_GROUPS: usize = 20;
const MAX_PEERS: usize = 20;
const MAX_FD_PATHS: usize = 20;

/// Targets whose older history is fetched per round in agent mode (one request each).
const BACKFILL_PER_ROUND: usize = 4;

/// Sleeps until `start + interval`.
fn wait(start: Instant, interval: Duration) {
    std::thread::sleep(interval.saturating_sub(start.elapsed()));
}

/// Samples every process each `interval` and groups them into targets exactly as the
/// agent does (same rules, same caps), so names and series match `leakwatch targets`.
pub fn standalone(
    sender: Sender<Update>,
    interval: Duration,
    mut targeting: Targeting,
) -> Result<std::thread::JoinHandle<()>> {
    let mut sampler = Sampler::new(Options::default(), Selection::All)
        .context("cannot read /proc (leakwatch top --standalone samples this host directly)")?;
    let handle = std::thread::Builder::new()
        .name("lw-top-sampler".into())
        .spawn(move || {
            let mut samples = 0u64;
            // As the agent: a vanished target is remembered for ten minutes' worth of
            // passes, so a process that comes back is a restart of the same target.
            let grace = (600 / interval.as_secs().max(1)).max(3);
            let mut tracker = RestartTracker::new(grace);
            loop {
                let start = Instant::now();
                let update = match sampler.sample() {
                    Ok(sample) => {
                        samples += 1;
                        let comms: HashMap<u32, &str> = sample
                            .processes
                            .iter()
                            .map(|p| (p.identity.pid, p.identity.comm.as_str()))
                            .collect();
                        let grouped = group(&mut targeting, &sample);
                        let mut restarts: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
                        for seen in tracker.observe(&grouped, &|_| false) {
                            restarts
                                .entry(seen.target)
                                .or_default()
                                .push((seen.old.0, seen.new.0));
                        }
                        let targets = grouped
                            .into_iter()
                            .map(|(name, target)| TargetUpdate {
                                restarts: restarts.remove(&name.name).unwrap_or_default(),
                                processes: target
                                    .processes
                                    .iter()
                                    .map(|(pid, _)| {
                                        (*pid, comms.get(pid).copied().unwrap_or("?").to_string())
                                    })
                                    .collect(),
                                current: target
                                    .points(&name.name, MAX_GROUPS, MAX_PEERS, MAX_FD_PATHS)
                                    .into_iter()
                                    .map(|(key, value)| (key.without_target(), value))
                                    .collect(),
                                name: name.name,
                                kind: name.kind.to_string(),
                            })
                            .collect();
                        Update::Sample {
                            time_ms: sample.time_unix_ms,
                            samples,
                            new_sample: true,
                            targets,
                            findings: None,
                        }
                    }
                    Err(error) => Update::Error {
                        time_ms: crate::format::now_ms(),
                        message: format!("sampling /proc failed: {error}"),
                    },
                };
                if sender.send(update).is_err() {
                    return;
                }
                wait(start, interval);
            }
        })
        .context("cannot start the sampling thread")?;
    Ok(handle)
}

/// Polls the agent each `interval`: its sample count, live targets and findings; and, a
/// few targets per round, their recent history so sparklines start filled.
pub fn agent(
    sender: Sender<Update>,
    interval: Duration,
    client: ClientArgs,
) -> Result<std::thread::JoinHandle<()>> {
    let handle = std::thread::Builder::new()
        .name("lw-top-poller".into())
        .spawn(move || {
            let mut last_samples: Option<u64> = None;
            let mut backfilled: BTreeSet<String> = BTreeSet::new();
            loop {
                let start = Instant::now();
                let (update, live) = match poll(&client, &mut last_samples) {
                    Ok((update, live)) => (update, live),
                    Err(error) => (
                        Update::Error {
                            time_ms: crate::format::now_ms(),
                            // What failed and the root cause; the chain between them
                            // (reqwest's layers) would not fit on the status line.
                            message: format!("{error}: {}", error.root_cause()),
                        },
                        Vec::new(),
                    ),
                };
                if sender.send(update).is_err() {
                    return;
                }
                backfilled.retain(|name| live.contains(name));
                let pending: Vec<String> = live
                    .into_iter()
                    .filter(|name| !backfilled.contains(name))
                    .take(BACKFILL_PER_ROUND)
                    .collect();
                for name in pending {
                    if let Ok(passes) = history(&client, &name) {
                        backfilled.insert(name.clone());
                        let update = Update::History {
                            target: name,
                            passes,
                        };
                        if sender.send(update).is_err() {
                            return;
                        }
                    }
                }
                wait(start, interval);
            }
        })
        .context("cannot start the polling thread")?;
    Ok(handle)
}

/// One round: `/api/v1/agent`, `/api/v1/targets`, `/api/v1/findings`. Returns the update
/// and the live targets, most urgent first (those with findings, then by threads), the
/// order in which their history is fetched.
fn poll(client: &ClientArgs, last_samples: &mut Option<u64>) -> Result<(Update, Vec<String>)> {
    let agent: api::AgentStatus = agent_cmd::get(client, paths::AGENT, NO_QUERY)?;
    let samples = agent.samples;
    let body: api::Targets = agent_cmd::get(client, paths::TARGETS, NO_QUERY)?;
    let findings_body: api::Findings = agent_cmd::get(client, paths::FINDINGS, NO_QUERY)?;
    let findings: Vec<FindingView> = findings_body
        .findings
        .iter()
        .map(FindingView::from)
        .collect();
    let targets = parse_targets(&body);
    let new_sample = *last_samples != Some(samples);
    *last_samples = Some(samples);
    let mut live: Vec<(bool, f64, String)> = targets
        .iter()
        .map(|t| {
            let urgent = findings.iter().any(|f| f.target == t.name);
            let threads = t.current.get(&total(Resource::Threads)).copied();
            (urgent, threads.unwrap_or(0.0), t.name.clone())
        })
        .collect();
    live.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.total_cmp(&a.1)));
    Ok((
        Update::Sample {
            time_ms: crate::format::now_ms(),
            samples,
            new_sample,
            targets,
            findings: Some(findings),
        },
        live.into_iter().map(|(_, _, name)| name).collect(),
    ))
}

/// The live targets of a `/api/v1/targets` answer.
pub fn parse_targets(body: &api::Targets) -> Vec<TargetUpdate> {
    body.targets
        .iter()
        .filter(|t| t.live)
        .filter_map(|t| {
            Some(TargetUpdate {
                current: t.current.as_ref()?.0.clone(),
                name: t.name.clone(),
                kind: t.kind.map_or_else(String::new, |kind| kind.to_string()),
                processes: Vec::new(),
                restarts: Vec::new(),
            })
        })
        .collect()
}

/// A target's last 10 minutes from `/api/v1/series`, regrouped per pass.
fn history(client: &ClientArgs, target: &str) -> Result<Vec<(i64, BTreeMap<Key, f64>)>> {
    let query = api::SeriesQuery {
        target: target.to_string(),
        since: Some("10m".to_string()),
        ..api::SeriesQuery::default()
    };
    let body: api::SeriesBody = agent_cmd::get(client, paths::SERIES, &query)?;
    Ok(parse_series(&body))
}

/// `{"series": [{"resource", "attribution", "points": [[ms, v], ...]}]}` -> per pass.
pub fn parse_series(body: &api::SeriesBody) -> Vec<(i64, BTreeMap<Key, f64>)> {
    let mut passes: BTreeMap<i64, BTreeMap<Key, f64>> = BTreeMap::new();
    for series in &body.series {
        for &(ms, value) in &series.points {
            passes
                .entry(ms)
                .or_default()
                .insert(series.key.clone(), value);
        }
    }
    passes.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::super::model::key;
    use super::*;
    use serde_json::json;

    #[test]
    fn agent_answers_become_targets_and_passes() {
        let body = json!({"targets": [
            {"name": "svc", "kind": "unit", "live": true,
             "current": {"threads": 45.0, "threads{Analytics-#}": 40.0,
                         "tcp_peer{CLOSE_WAIT 127.0.0.1:18443}": 12.0}},
            {"name": "gone", "kind": "exe", "live": false, "current": null},
        ]});
        let targets = parse_targets(&serde_json::from_value(body).unwrap());
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].name, "svc");
        assert_eq!(targets[0].kind, "unit");
        assert_eq!(
            targets[0].current[&key("tcp_peer", "CLOSE_WAIT 127.0.0.1:18443")],
            12.0
        );

        let series = json!({"series": [
            {"resource": "threads", "attribution": "", "points": [[1000, 5.0], [2000, 6.0]]},
            {"resource": "fds", "attribution": "socket", "points": [[2000, 3.0]]},
        ]});
        let passes = parse_series(&serde_json::from_value(series).unwrap());
        assert_eq!(passes.len(), 2);
        assert_eq!(passes[0].0, 1000);
        assert_eq!(passes[1].1.len(), 2);
        assert_eq!(passes[1].1[&key("fds", "socket")], 3.0);
    }
}
