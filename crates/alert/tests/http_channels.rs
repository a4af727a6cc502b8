//! Every HTTP channel against a real receiver on 127.0.0.1: the shared compliance check
//! (success, receiver down, slow, 5xx vs 4xx, kill -9 with pending notifications), each
//! channel's wire format, and channel-failure alerts.

mod common;

use std::collections::BTreeMap;

use common::*;
use leakwatch_alert::*;

fn webhook(url: &str, timeout: Dur) -> ChannelConfig {
    ChannelConfig::Webhook(WebhookConfig {
        url: format!("{url}/hook"),
        headers: BTreeMap::from([("X-Team".to_string(), "infra".to_string())]),
        timeout,
        ca_file: None,
    })
}

#[test]
fn webhook_passes_the_channel_compliance_check() {
    http_channel_compliance(
        "webhook_passes_the_channel_compliance_check",
        webhook,
        |r| {
            assert_eq!(r.path, "/hook");
            assert_eq!(r.header("X-Team"), Some("infra"));
            assert!(r
                .header("Content-Type")
                .unwrap()
                .starts_with("application/json"));
            let body = r.json();
            assert_eq!(body["version"], 1);
            assert_eq!(body["id"].as_str(), r.header("Idempotency-Key"));
            assert_eq!(body["reason"], "firing");
            assert_eq!(body["test"], false);
            assert_eq!(body["alert"]["alertname"], "LeakwatchLeak");
            assert_eq!(body["alert"]["severity"], "critical");
            assert_eq!(body["alert"]["state"], "firing");
            assert_eq!(body["alert"]["resource"], "threads");
            assert_eq!(body["alert"]["attribution"], "Analytics-#");
            assert_eq!(body["alert"]["finding"]["limit"], 32768.0);
            assert!(body["text"]
                .as_str()
                .unwrap()
                .starts_with("[FIRING critical] "));
        },
    );
}

#[test]
fn slack_passes_the_channel_compliance_check() {
    http_channel_compliance(
        "slack_passes_the_channel_compliance_check",
        |url, timeout| {
            ChannelConfig::Slack(SlackConfig {
                url: format!("{url}/services/T000/B000/XXXX"),
                timeout,
                ca_file: None,
            })
        },
        |r| {
            assert_eq!(r.path, "/services/T000/B000/XXXX");
            let body = r.json();
            let object = body.as_object().unwrap();
            assert_eq!(object.len(), 1, "Slack gets only text: {body}");
            let text = body["text"].as_str().unwrap();
            assert!(text.starts_with("[FIRING critical] "), "{text}");
            assert!(text.contains("threads Analytics-#"), "{text}");
        },
    );
}

#[test]
fn alertmanager_passes_the_channel_compliance_check() {
    http_channel_compliance(
        "alertmanager_passes_the_channel_compliance_check",
        |url, timeout| {
            ChannelConfig::Alertmanager(AlertmanagerConfig {
                url: url.to_string(),
                resend: Dur::secs(60),
                labels: BTreeMap::from([("cluster".to_string(), "test".to_string())]),
                timeout,
                ca_file: None,
            })
        },
        |r| {
            assert_eq!(r.path, "/api/v2/alerts");
            let body = r.json();
            let alert = &body.as_array().expect("an array of alerts")[0];
            assert_eq!(alert["labels"]["alertname"], "LeakwatchLeak");
            assert_eq!(alert["labels"]["severity"], "critical");
            assert_eq!(alert["labels"]["cluster"], "test");
            assert_eq!(alert["labels"]["resource"], "threads");
            let starts = alert["startsAt"].as_str().unwrap();
            let ends = alert["endsAt"].as_str().unwrap();
            assert!(
                ends > starts,
                "a firing alert ends 4 resends ahead: {starts} {ends}"
            );
        },
    );
}

/// N consecutive failures on one channel raise a critical "channel failing" alert on the
/// others; when it delivers again they hear it recovered.
#[test]
fn a_failing_channel_is_reported_on_the_other_channels() {
    let broken = Receiver::start();
    broken.set_mode(Mode::Status(500));
    let healthy = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(vec![
        ("broken", webhook(&broken.url(""), Dur::secs(5))),
        ("healthy", webhook(&healthy.url(""), Dur::secs(5))),
    ]);
    let mut dispatcher = Dispatcher::new(
        Outbox::open(&dir.path().join("alerts.db")).unwrap(),
        &config,
    )
    .unwrap();
    let mut engine = AlertEngine::new(&config);
    let t0 = now_ms();
    let notes = engine.update(&[leak("svc", "fds", "socket", 2.0)], t0);
    assert_eq!(notes.len(), 2);
    dispatcher.enqueue(&notes, t0).unwrap();

    let mut health_alerts = 0;
    for step in 0..3 {
        let stats = dispatcher.run_once(t0 + step * 1_000).unwrap();
        health_alerts += stats.health_alerts;
    }
    // failing_after_failures = 3: the third failure raised it, once.
    assert_eq!(health_alerts, 1);
    let bodies: Vec<_> = healthy.requests().iter().map(|r| r.json()).collect();
    assert_eq!(bodies.len(), 1, "only the leak so far: {bodies:?}");
    dispatcher.run_once(t0 + 3_000).unwrap();
    let bodies: Vec<_> = healthy.requests().iter().map(|r| r.json()).collect();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[1]["reason"], "channel_failing");
    assert_eq!(bodies[1]["alert"]["alertname"], "LeakwatchChannelFailing");
    assert_eq!(bodies[1]["alert"]["attribution"], "broken");
    assert_eq!(bodies[1]["alert"]["severity"], "critical");
    let c = dispatcher.outbox().counters().unwrap();
    let broken_counters = c.iter().find(|c| c.channel == "broken").unwrap();
    assert!(broken_counters.failing_alerted && broken_counters.consecutive_failures >= 3);
    assert!(broken
        .requests()
        .iter()
        .all(|r| r.json()["reason"] != "channel_failing"));

    broken.set_mode(Mode::Ok);
    let stats = dispatcher.run_once(t0 + 60_000).unwrap();
    assert_eq!(stats.delivered, 1);
    assert_eq!(stats.health_alerts, 1);
    dispatcher.run_once(t0 + 61_000).unwrap();
    let last = healthy.requests().last().unwrap().json();
    assert_eq!(last["reason"], "channel_recovered");
    assert_eq!(last["alert"]["state"], "resolved");
    let state = dispatcher.outbox().delivery_state().unwrap();
    assert!(
        state.iter().all(|r| r.status == DeliveryStatus::Delivered),
        "{state:?}"
    );
}

/// Notifications that cannot be delivered in time expire loudly: counted, kept, and not
/// retried forever; the test alert is marked as one.
#[test]
fn undeliverable_notifications_expire_and_are_counted() {
    let receiver = Receiver::start();
    let url = receiver.url("");
    drop(receiver.stop());
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_with(vec![("hook", webhook(&url, Dur::secs(1)))]);
    config.delivery.expire_after = Dur::secs(30);
    let mut dispatcher =
        Dispatcher::new(Outbox::open(&dir.path().join("a.db")).unwrap(), &config).unwrap();
    let t0 = now_ms();
    dispatcher
        .enqueue(&firing_notifications(&config, "svc", t0), t0)
        .unwrap();
    assert_eq!(dispatcher.run_once(t0).unwrap().retried, 1);
    let stats = dispatcher.run_once(t0 + 31_000).unwrap();
    assert_eq!((stats.expired, stats.delivered, stats.retried), (1, 0, 0));
    let rows = dispatcher.outbox().deliveries(None).unwrap();
    assert_eq!(rows[0].status, DeliveryStatus::Expired);
    let c = &dispatcher.outbox().counters().unwrap()[0];
    assert_eq!((c.expired, c.retried), (1, 1));
}

#[test]
fn send_test_reports_the_receivers_answer_and_is_marked_as_a_test() {
    let receiver = Receiver::start();
    let channel = Channel::from_config("ops", &webhook(&receiver.url(""), Dur::secs(5))).unwrap();
    let report = send_test(&channel).unwrap();
    assert_eq!(report.http_status, Some(200));
    assert_eq!(report.detail, "HTTP 200 OK");
    assert_eq!(report.kind, "webhook");
    let body = receiver.requests()[0].json();
    assert_eq!(body["test"], true);
    assert_eq!(body["reason"], "test");
    assert!(body["text"].as_str().unwrap().starts_with("[TEST] "));

    receiver.set_mode(Mode::Status(404));
    let error = send_test(&channel).unwrap_err();
    assert_eq!(error.http_status, Some(404));
    assert!(!error.retryable);
    assert!(error.message.starts_with("HTTP 404"), "{}", error.message);
}

/// The heartbeat pings the success URL when healthy and `/fail` when not, once per period.
#[test]
fn heartbeat_pings_success_and_fail_urls() {
    let receiver = Receiver::start();
    let config = AlertConfig {
        heartbeat: Some(HeartbeatConfig {
            url: Some(receiver.url("/ping/abc")),
            every: Dur::secs(60),
            timeout: Dur::secs(5),
            watchdog_channel: None,
        }),
        ..AlertConfig::default()
    };
    config.validate().unwrap();
    let t0 = now_ms();
    let mut heartbeat = Heartbeat::new(&config, t0).unwrap().unwrap();
    let outcome = heartbeat.tick(t0, true).unwrap();
    assert_eq!(outcome.ping.unwrap().unwrap().http_status, Some(200));
    assert!(heartbeat.tick(t0 + 30_000, true).is_none(), "not due yet");
    heartbeat.tick(t0 + 60_000, false).unwrap();
    let paths: Vec<String> = receiver.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/ping/abc", "/ping/abc/fail"]);
}
