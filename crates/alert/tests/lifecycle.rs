//! The alert lifecycle and configuration, as specifications: pure, time given.

mod common;

use common::*;
use leakwatch_alert::*;
use leakwatch_detect::FindingState;

const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;
const T0: u64 = 1_800_000_000_000;

fn webhook(url: &str) -> ChannelConfig {
    ChannelConfig::Webhook(WebhookConfig {
        url: url.into(),
        headers: Default::default(),
        timeout: Dur::secs(5),
        ca_file: None,
    })
}

/// `chat` hears warnings, `pager` and `am` (Alertmanager, resend 1m) hear criticals.
fn routed() -> AlertConfig {
    let config = AlertConfig {
        pending_for: Dur::secs(120),
        resolve_after: Dur::secs(600),
        renotify: Dur::secs(4 * 3600),
        channels: [
            ("chat".to_string(), webhook("http://chat.example/hook")),
            ("pager".to_string(), webhook("https://pager.example/hook")),
            (
                "am".to_string(),
                ChannelConfig::Alertmanager(AlertmanagerConfig {
                    url: "http://127.0.0.1:9093".into(),
                    resend: Dur::secs(60),
                    labels: Default::default(),
                    timeout: Dur::secs(5),
                    ca_file: None,
                }),
            ),
        ]
        .into_iter()
        .collect(),
        routes: Routes {
            warning: vec!["chat".into()],
            critical: vec!["pager".into(), "am".into()],
        },
        ..AlertConfig::default()
    };
    config.validate().unwrap();
    config
}

fn summary(notes: &[Notification]) -> Vec<(String, Reason, Severity)> {
    let mut v: Vec<_> = notes
        .iter()
        .map(|n| (n.channel.clone(), n.reason, n.alert.severity))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn severity_follows_the_conservative_forecast_and_saturation() {
    let horizon = 24 * HOUR;
    assert_eq!(
        severity_of(&leak("a", "threads", "x", 30.0), horizon, 0.9),
        Severity::Warning
    );
    assert_eq!(
        severity_of(&leak("a", "threads", "x", 23.0), horizon, 0.9),
        Severity::Critical
    );
    assert_eq!(
        severity_of(&saturation("a", "fds", 850.0, 1000.0), horizon, 0.9),
        Severity::Warning
    );
    assert_eq!(
        severity_of(&saturation("a", "fds", 900.0, 1000.0), horizon, 0.9),
        Severity::Critical
    );
    let mut no_limit = leak("a", "memory", "", 1.0);
    no_limit.eta_conservative_seconds = None;
    no_limit.limit = None;
    assert_eq!(severity_of(&no_limit, horizon, 0.9), Severity::Warning);
}

#[test]
fn a_finding_is_pending_then_fires_then_resolves_and_everyone_told_hears_it() {
    let mut engine = AlertEngine::new(&routed());
    let far = [leak("svc", "threads", "Analytics-#", 48.0)];
    assert!(engine.update(&far, T0).is_empty(), "pending for 2 minutes");
    assert_eq!(engine.alerts().next().unwrap().state, AlertState::Pending);
    assert!(engine.update(&far, T0 + MIN).is_empty());
    let notes = engine.update(&far, T0 + 2 * MIN);
    assert_eq!(
        summary(&notes),
        [("chat".into(), Reason::Firing, Severity::Warning)]
    );
    assert_eq!(notes[0].alert.state, AlertState::Firing);
    assert_eq!(notes[0].alert.starts_ms, T0 + 2 * MIN);

    // Absent for less than resolve_after: still firing, nothing sent.
    assert!(engine.update(&[], T0 + 5 * MIN).is_empty());
    assert_eq!(engine.alerts().next().unwrap().state, AlertState::Firing);
    let notes = engine.update(&[], T0 + 12 * MIN);
    assert_eq!(
        summary(&notes),
        [("chat".into(), Reason::Resolved, Severity::Warning)]
    );
    assert_eq!(notes[0].alert.state, AlertState::Resolved);
    assert_eq!(notes[0].alert.ends_ms, Some(T0 + 12 * MIN));
    assert!(
        engine.update(&[], T0 + 13 * MIN).is_empty(),
        "resolved once"
    );
}

#[test]
fn suspected_findings_are_not_alerted_even_when_near_the_limit() {
    // The engine confirms a trend at once when its forecast is urgent by its own horizon;
    // the alert horizon (a day here) must not turn a warm-up into a page.
    let mut engine = AlertEngine::new(&routed());
    let mut far = leak("svc", "threads", "Analytics-#", 48.0);
    far.state = FindingState::Suspected;
    let mut near = leak("svc", "fds", "socket", 2.0);
    near.state = FindingState::Suspected;
    for minute in 0..10 {
        assert!(engine
            .update(&[far.clone(), near.clone()], T0 + minute * MIN)
            .is_empty());
    }
    assert_eq!(engine.alerts().count(), 0, "no alert, not even pending");
    // Confirmed: pending, then firing (critical).
    near.state = FindingState::Confirmed;
    engine.update(std::slice::from_ref(&near), T0 + 10 * MIN);
    let notes = engine.update(std::slice::from_ref(&near), T0 + 12 * MIN);
    assert_eq!(
        summary(&notes),
        [
            ("am".into(), Reason::Firing, Severity::Critical),
            ("pager".into(), Reason::Firing, Severity::Critical)
        ]
    );
}

#[test]
fn a_resolved_finding_resolves_its_alert_at_once_and_says_why() {
    let mut engine = AlertEngine::new(&routed());
    let far = leak("svc", "threads", "Analytics-#", 48.0);
    engine.update(std::slice::from_ref(&far), T0);
    assert_eq!(
        engine
            .update(std::slice::from_ref(&far), T0 + 2 * MIN)
            .len(),
        1
    );
    let mut gone = far.clone();
    gone.state = FindingState::Resolved;
    gone.eta_seconds = None;
    gone.eta_conservative_seconds = None;
    gone.summary = "threads Analytics-# leak resolved: process exited at 10:02:11 UTC".into();
    // Well within resolve_after (10 minutes): resolved now, not in ten minutes.
    let notes = engine.update(std::slice::from_ref(&gone), T0 + 3 * MIN);
    assert_eq!(
        summary(&notes),
        [("chat".into(), Reason::Resolved, Severity::Warning)]
    );
    assert_eq!(notes[0].alert.summary, gone.summary);
    assert_eq!(notes[0].alert.ends_ms, Some(T0 + 3 * MIN));
    // Shown resolved while the lifecycle keeps reporting it; told once.
    assert!(engine
        .update(std::slice::from_ref(&gone), T0 + 4 * MIN)
        .is_empty());
    // A resolved finding never opens an alert.
    let mut other = gone.clone();
    other.key.target = "other".into();
    assert!(engine.update(&[other], T0 + 5 * MIN).is_empty());
    assert!(engine.alerts().all(|a| a.target == "svc"));
}

#[test]
fn a_pending_alert_that_goes_away_never_notifies() {
    let mut engine = AlertEngine::new(&routed());
    engine.update(&[leak("svc", "fds", "socket", 2.0)], T0);
    assert!(engine.update(&[], T0 + MIN).is_empty());
    assert!(engine.update(&[], T0 + HOUR).is_empty());
    assert_eq!(engine.alerts().count(), 0);
}

#[test]
fn findings_are_deduplicated_per_target_resource_attribution() {
    let mut config = routed();
    config.pending_for = Dur::secs(0);
    let mut engine = AlertEngine::new(&config);
    // A leak and a saturation of the same series: one alert, at the higher severity.
    let findings = [
        leak("svc", "fds", "socket", 48.0),
        saturation("svc", "fds", 950.0, 1000.0),
        leak("svc", "fds", "pipe", 48.0),
    ];
    let mut findings = findings.to_vec();
    findings[1].key = leakwatch_detect::SeriesKey::from_text("svc", "fds", "socket");
    let notes = engine.update(&findings, T0);
    assert_eq!(engine.alerts().count(), 2);
    let socket: Vec<_> = notes
        .iter()
        .filter(|n| n.alert.attribution == "socket")
        .collect();
    assert_eq!(socket.len(), 2, "pager and am, once each");
    assert!(socket
        .iter()
        .all(|n| n.alert.severity == Severity::Critical));
    let pipe: Vec<_> = notes
        .iter()
        .filter(|n| n.alert.attribution == "pipe")
        .collect();
    assert_eq!(pipe.len(), 1);
    assert_eq!(pipe[0].channel, "chat");
    // The same findings again: nothing new.
    assert!(engine.update(&findings, T0 + 30_000).is_empty());
}

#[test]
fn renotify_and_alertmanager_resend_and_escalation() {
    let mut config = routed();
    config.pending_for = Dur::secs(0);
    let mut engine = AlertEngine::new(&config);
    let warning = [leak("svc", "threads", "worker", 48.0)];
    assert_eq!(engine.update(&warning, T0).len(), 1);
    assert!(engine.update(&warning, T0 + HOUR).is_empty());
    let notes = engine.update(&warning, T0 + 4 * HOUR);
    assert_eq!(
        summary(&notes),
        [("chat".into(), Reason::Renotify, Severity::Warning)]
    );

    // The forecast shortens: critical goes to the critical route.
    let critical = [leak("svc", "threads", "worker", 5.0)];
    let notes = engine.update(&critical, T0 + 4 * HOUR + MIN);
    assert_eq!(
        summary(&notes),
        [
            ("am".into(), Reason::Firing, Severity::Critical),
            ("pager".into(), Reason::Firing, Severity::Critical)
        ]
    );
    // Alertmanager is re-sent every minute while firing; the pager every 4 hours.
    let notes = engine.update(&critical, T0 + 4 * HOUR + 2 * MIN);
    assert_eq!(
        summary(&notes),
        [("am".into(), Reason::Renotify, Severity::Critical)]
    );
    assert!(engine
        .update(&critical, T0 + 4 * HOUR + 2 * MIN + 30_000)
        .is_empty());

    // A channel that heard the warning and is also on the critical route hears "escalated".
    config.routes.critical.push("chat".into());
    let mut engine = AlertEngine::new(&config);
    engine.update(&warning, T0);
    let notes = engine.update(&critical, T0 + MIN);
    assert!(summary(&notes).contains(&("chat".into(), Reason::Escalated, Severity::Critical)));

    // Resolving tells every channel that was told, whatever the route now.
    let notes = engine.update(&[], T0 + HOUR);
    let mut channels: Vec<_> = notes
        .iter()
        .map(|n| (n.channel.as_str(), n.reason))
        .collect();
    channels.sort_by_key(|c| c.0);
    assert_eq!(
        channels,
        [
            ("am", Reason::Resolved),
            ("chat", Reason::Resolved),
            ("pager", Reason::Resolved)
        ]
    );
}

#[test]
fn silences_hold_notifications_until_they_expire() {
    let mut config = routed();
    config.pending_for = Dur::secs(0);
    config.silences.push(Silence {
        target: "svc".into(),
        resource: Some("threads".into()),
        until: Timestamp(T0 + HOUR),
        reason: "deploy in progress".into(),
    });
    let mut engine = AlertEngine::new(&config);
    let findings = [
        leak("svc", "threads", "worker", 48.0),
        leak("svc", "fds", "socket", 48.0),
    ];
    let notes = engine.update(&findings, T0);
    assert_eq!(notes.len(), 1, "only fds: threads is silenced");
    assert_eq!(notes[0].alert.resource, "fds");
    let threads = engine.alerts().find(|a| a.resource == "threads").unwrap();
    assert_eq!(threads.state, AlertState::Firing);
    assert_eq!(threads.silenced.as_deref(), Some("deploy in progress"));
    assert!(engine.update(&findings, T0 + 30 * MIN).is_empty());

    // The silence expires: the still-firing alert notifies at once.
    let notes = engine.update(&findings, T0 + HOUR);
    assert_eq!(
        summary(&notes),
        [("chat".into(), Reason::Firing, Severity::Warning)]
    );
    assert_eq!(notes[0].alert.resource, "threads");
    assert!(engine.silences().is_empty(), "expired silences are dropped");

    // A silence on a whole target, added at run time.
    engine.add_silence(Silence {
        target: "other".into(),
        resource: None,
        until: Timestamp(T0 + 3 * HOUR),
        reason: String::new(),
    });
    assert!(engine
        .update(&[leak("other", "memory", "", 1.0)], T0 + 2 * HOUR)
        .iter()
        .all(|n| n.alert.target != "other"));
}

#[test]
fn engine_state_survives_a_restart_through_the_outbox_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.db");
    let mut config = routed();
    config.pending_for = Dur::secs(0);
    let findings = [leak("svc", "threads", "worker", 48.0)];
    {
        let mut engine = AlertEngine::new(&config);
        assert_eq!(engine.update(&findings, T0).len(), 1);
        Outbox::open(&path)
            .unwrap()
            .save_engine_state(&engine.state())
            .unwrap();
    }
    let mut engine = AlertEngine::new(&config);
    engine.restore(
        Outbox::open(&path)
            .unwrap()
            .load_engine_state()
            .unwrap()
            .unwrap(),
    );
    assert!(
        engine.update(&findings, T0 + MIN).is_empty(),
        "no second page after a restart"
    );
}

#[test]
fn configuration_parses_from_toml_and_rejects_unknown_keys() {
    let text = r#"
        critical_horizon = "12h"
        renotify = "2h"
        [routes]
        warning = ["chat"]
        critical = ["chat", "am"]
        [channels.chat]
        type = "slack"
        url = "https://hooks.slack.com/services/T/B/X"
        [channels.am]
        type = "alertmanager"
        url = "http://127.0.0.1:9093"
        resend = "30s"
        [[silences]]
        target = "batch"
        until = "2030-01-01T00:00:00Z"
        reason = "known"
        [heartbeat]
        url = "https://hc-ping.com/uuid"
        watchdog_channel = "am"
    "#;
    let config: AlertConfig = toml::from_str(text).unwrap();
    config.validate().unwrap();
    assert_eq!(config.critical_horizon, Dur::secs(12 * 3600));
    assert_eq!(config.silences[0].until, Timestamp(1_893_456_000_000));

    let typo = text.replace("resend = ", "resnd = ");
    let error = toml::from_str::<AlertConfig>(&typo)
        .unwrap_err()
        .to_string();
    assert!(error.contains("resnd"), "{error}");
    let error = toml::from_str::<AlertConfig>("renotfy = \"1h\"")
        .unwrap_err()
        .to_string();
    assert!(error.contains("renotfy"), "{error}");
    let error = toml::from_str::<AlertConfig>("renotify = \"soon\"")
        .unwrap_err()
        .to_string();
    assert!(error.contains("bad duration"), "{error}");
}

#[test]
fn validation_names_every_problem() {
    let mut config = routed();
    config
        .channels
        .insert("bad_url".into(), webhook("not a url"));
    config
        .channels
        .insert("ftp".into(), webhook("ftp://example.com/x"));
    config.routes.critical.push("pagr".into());
    config.routes.warning.clear();
    config.channels.insert(
        "mail".into(),
        ChannelConfig::Email(EmailConfig {
            host: "smtp.example.com".into(),
            port: 587,
            security: SmtpSecurity::Starttls,
            username: None,
            password: Some("x".into()),
            password_env: None,
            from: "nobody".into(),
            to: vec![],
            timeout: Dur::secs(5),
            ca_file: None,
        }),
    );
    let problems = config.validate().unwrap_err().problems;
    let text = problems.join("\n");
    for expected in [
        "channels.bad_url.url: \"not a url\" is not a URL",
        "channels.ftp.url: \"ftp://example.com/x\" must be an http:// or https:// URL",
        "routes.critical: channel \"pagr\" is not defined (defined: am, bad_url, chat, ftp, mail, pager)",
        "routes.warning: no channel receives warning alerts",
        "channels.mail.from: \"nobody\" is not a mail address",
        "channels.mail.to: needs at least one address",
        "channels.mail: a password needs a username",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert_eq!(problems.len(), 7, "{text}");
}

#[test]
fn what_the_evidence_found_is_sent_once_to_each_channel_told_it_fires() {
    let mut config = routed();
    config.pending_for = Dur::secs(0);
    let mut engine = AlertEngine::new(&config);
    let bare = [leak("svc", "memory", "rss", 48.0)];
    assert_eq!(engine.update(&bare, T0).len(), 1);
    // The capture names the class a minute later: one `evidence` notification, whose
    // summary ends with the line.
    let mut named = bare.clone();
    named[0].evidence = Some("memory leak: java.util.HashMap$Node +31 MiB/min".into());
    let notes = engine.update(&named, T0 + MIN);
    assert_eq!(
        summary(&notes),
        [("chat".into(), Reason::Evidence, Severity::Warning)]
    );
    assert!(
        notes[0]
            .alert
            .summary
            .ends_with("; memory leak: java.util.HashMap$Node +31 MiB/min"),
        "{}",
        notes[0].alert.summary
    );
    // Not again; and kept when a later finding comes without it.
    assert!(engine.update(&named, T0 + 2 * MIN).is_empty());
    assert!(engine.update(&bare, T0 + 3 * MIN).is_empty());
    let renotified = engine.update(&bare, T0 + 4 * HOUR + MIN);
    assert_eq!(renotified[0].reason, Reason::Renotify);
    assert!(renotified[0].alert.summary.contains("HashMap$Node"));
    // An alert that fires with the line already known says it in its first notification.
    let mut other = leak("db", "memory", "rss", 48.0);
    other.evidence = Some("memory leak: [anon] +2 MiB/min".into());
    let notes = engine.update(&[named[0].clone(), other], T0 + 4 * HOUR + 2 * MIN);
    assert_eq!(
        summary(&notes),
        [("chat".into(), Reason::Firing, Severity::Warning)]
    );
    assert!(notes[0]
        .alert
        .summary
        .ends_with("; memory leak: [anon] +2 MiB/min"));
}
