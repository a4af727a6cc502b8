//! Delivery to real third-party receivers started on 127.0.0.1: Prometheus Alertmanager
//! (Debian's prometheus-alertmanager) and an SMTP server (Python's aiosmtpd). Both are
//! installed by scripts/test.sh; a missing one fails the test with the install command.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use leakwatch_alert::*;
use serde_json::Value;

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

fn start_alertmanager(dir: &Path) -> (Killed, String) {
    assert!(
        Path::new(ALERTMANAGER).exists(),
        "{ALERTMANAGER} missing: apt-get install -y prometheus-alertmanager (scripts/test.sh does)"
    );
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: devnull\nreceivers:\n  - name: devnull\n",
    )
    .unwrap();
    let port = free_port();
    let mut child = Command::new(ALERTMANAGER)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start alertmanager");
    wait_for_port(port, &mut child, "alertmanager");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if client
            .get(format!("{base}/-/ready"))
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        assert!(Instant::now() < deadline, "alertmanager not ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Killed(child), base)
}

/// Alertmanager's own view: its active alerts (resolved ones are not listed).
fn active_alerts(base: &str) -> Vec<Value> {
    reqwest::blocking::get(format!("{base}/api/v2/alerts"))
        .unwrap()
        .json::<Vec<Value>>()
        .unwrap()
}

fn find<'a>(alerts: &'a [Value], alertname: &str, target: &str) -> Option<&'a Value> {
    alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == alertname && a["labels"]["target"] == target)
}

#[test]
fn real_alertmanager_shows_the_alert_firing_then_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let (_am, base) = start_alertmanager(dir.path());
    let mut config = config_with(vec![(
        "am",
        ChannelConfig::Alertmanager(AlertmanagerConfig {
            url: base.clone(),
            resend: Dur::secs(60),
            labels: BTreeMap::from([("cluster".to_string(), "ci".to_string())]),
            timeout: Dur::secs(5),
            ca_file: None,
        }),
    )]);
    config.resolve_after = Dur::secs(0);
    config.heartbeat = Some(HeartbeatConfig {
        url: None,
        every: Dur::secs(60),
        timeout: Dur::secs(5),
        watchdog_channel: Some("am".into()),
    });
    config.validate().unwrap();
    let mut engine = AlertEngine::new(&config);
    let mut dispatcher = Dispatcher::new(
        Outbox::open(&dir.path().join("alerts.db")).unwrap(),
        &config,
    )
    .unwrap();

    let t0 = now_ms();
    let notes = engine.update(&[leak("payments", "threads", "pool-#-thread-#", 3.0)], t0);
    dispatcher.enqueue(&notes, t0).unwrap();
    assert_eq!(dispatcher.run_once(now_ms()).unwrap().delivered, 1);

    let alerts = active_alerts(&base);
    let alert = find(&alerts, "LeakwatchLeak", "payments").expect("the leak is in Alertmanager");
    assert_eq!(alert["status"]["state"], "active");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["attribution"], "pool-#-thread-#");
    assert_eq!(alert["labels"]["cluster"], "ci");
    assert!(alert["annotations"]["summary"]
        .as_str()
        .unwrap()
        .contains("[FIRING critical]"));
    let delivered = dispatcher.outbox().delivery_state().unwrap();
    assert_eq!(delivered[0].detail.as_deref(), Some("HTTP 200 OK"));

    // The watchdog and a test alert land too, each clearly labelled.
    let mut heartbeat = Heartbeat::new(&config, t0).unwrap().unwrap();
    let outcome = heartbeat.tick(t0, true).unwrap();
    assert_eq!(outcome.watchdog.unwrap().unwrap().http_status, Some(200));
    let report = send_test(dispatcher.channel("am").unwrap()).unwrap();
    assert_eq!(report.detail, "HTTP 200 OK");
    let alerts = active_alerts(&base);
    assert!(
        find(&alerts, "LeakwatchWatchdog", "leakwatch").is_some(),
        "{alerts:#?}"
    );
    let test = find(&alerts, "LeakwatchTest", "leakwatch").expect("test alert listed");
    assert_eq!(test["labels"]["test"], "true");

    // The finding goes away: the engine resolves, Alertmanager stops listing it.
    let notes = engine.update(&[], now_ms());
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].reason, Reason::Resolved);
    dispatcher.enqueue(&notes, now_ms()).unwrap();
    assert_eq!(dispatcher.run_once(now_ms() + 1_000).unwrap().delivered, 1);
    let alerts = active_alerts(&base);
    assert!(
        find(&alerts, "LeakwatchLeak", "payments").is_none(),
        "resolved alert still active: {alerts:#?}"
    );
    assert!(find(&alerts, "LeakwatchWatchdog", "leakwatch").is_some());
}

/// A bad request is a 4xx from the real Alertmanager too: rejected, not retried.
#[test]
fn real_alertmanager_rejects_an_invalid_label_and_we_do_not_retry() {
    let dir = tempfile::tempdir().unwrap();
    let (_am, base) = start_alertmanager(dir.path());
    let config = config_with(vec![(
        "am",
        ChannelConfig::Alertmanager(AlertmanagerConfig {
            url: base.clone(),
            resend: Dur::secs(60),
            // validate() would catch this; we bypass it to see the receiver's answer.
            labels: BTreeMap::new(),
            timeout: Dur::secs(5),
            ca_file: None,
        }),
    )]);
    let mut broken = config.clone();
    if let Some(ChannelConfig::Alertmanager(am)) = broken.channels.get_mut("am") {
        am.labels.insert("0bad label".into(), "x".into());
    }
    assert!(broken
        .validate()
        .unwrap_err()
        .to_string()
        .contains("not a Prometheus label name"));
    let mut dispatcher = Dispatcher::new(
        Outbox::open(&dir.path().join("alerts.db")).unwrap(),
        &broken,
    )
    .unwrap();
    let t0 = now_ms();
    dispatcher
        .enqueue(&firing_notifications(&config, "svc", t0), t0)
        .unwrap();
    let stats = dispatcher.run_once(now_ms()).unwrap();
    assert_eq!(stats.failed, 1, "{stats:?}");
    let row = &dispatcher.outbox().deliveries(None).unwrap()[0];
    assert_eq!(row.status, DeliveryStatus::Failed);
    assert!(
        row.detail.as_deref().unwrap().starts_with("HTTP 400"),
        "{row:?}"
    );
}

fn start_smtp(maildir: &Path) -> (Killed, u16) {
    let check = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status()
        .unwrap();
    assert!(
        check.success(),
        "python3 aiosmtpd missing: pip install aiosmtpd (scripts/test.sh does)"
    );
    let port = free_port();
    let mut child = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aiosmtpd");
    wait_for_port(port, &mut child, "aiosmtpd");
    (Killed(child), port)
}

#[test]
fn real_smtp_server_receives_the_alert_mail() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let (_smtp, port) = start_smtp(&maildir);
    let email = |port: u16| {
        ChannelConfig::Email(EmailConfig {
            host: "127.0.0.1".into(),
            port,
            security: SmtpSecurity::None,
            username: None,
            password: None,
            password_env: None,
            from: "leakwatch <leakwatch@example.com>".into(),
            to: vec!["oncall@example.com".into()],
            timeout: Dur::secs(5),
            ca_file: None,
        })
    };
    let config = config_with(vec![("mail", email(port))]);
    let mut dispatcher = Dispatcher::new(
        Outbox::open(&dir.path().join("alerts.db")).unwrap(),
        &config,
    )
    .unwrap();
    let t0 = now_ms();
    dispatcher
        .enqueue(&firing_notifications(&config, "mail-svc", t0), t0)
        .unwrap();
    assert_eq!(dispatcher.run_once(now_ms()).unwrap().delivered, 1);
    let row = &dispatcher.outbox().deliveries(None).unwrap()[0];
    assert!(
        row.detail.as_deref().unwrap().starts_with("SMTP 250"),
        "{row:?}"
    );

    let report = send_test(dispatcher.channel("mail").unwrap()).unwrap();
    assert!(report.detail.starts_with("SMTP 250"), "{report:?}");

    let received = mails(&maildir);
    assert_eq!(received.len(), 2, "{received:#?}");
    let alert = received
        .iter()
        .find(|m| m.contains("Subject: [leakwatch] [FIRING critical] mail-svc threads Analytics-#"))
        .expect("the alert mail, by subject");
    assert!(alert.contains("To: oncall@example.com"), "{alert}");
    assert!(
        alert.contains("\"limit\": 32768.0"),
        "the finding is in the body: {alert}"
    );
    let test = received
        .iter()
        .find(|m| m.contains("Subject: [leakwatch] [TEST] "))
        .expect("the test mail, by subject");
    assert!(test.contains("THIS IS A TEST ALERT"));

    // SMTP down: retried, not lost.
    let closed = free_port();
    let config = config_with(vec![("mail", email(closed))]);
    let mut dispatcher =
        Dispatcher::new(Outbox::open(&dir.path().join("down.db")).unwrap(), &config).unwrap();
    dispatcher
        .enqueue(&firing_notifications(&config, "mail-svc", t0), t0)
        .unwrap();
    assert_eq!(dispatcher.run_once(now_ms()).unwrap().retried, 1);
}
