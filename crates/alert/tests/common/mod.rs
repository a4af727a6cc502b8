//! Test support: a real HTTP receiver on 127.0.0.1 (std only) whose behaviour the test
//! switches, findings to feed the engine, the shared compliance check that every HTTP
//! channel must pass, and helpers for third-party receivers run as child processes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use leakwatch_alert::*;
use leakwatch_detect::{Finding, FindingKind};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Answer 200.
    Ok,
    /// Answer with this status.
    Status(u16),
    /// Wait this long, then answer 200 (the client has usually given up by then).
    Slow(Duration),
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The status the receiver answered.
    pub status: u16,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("request body is JSON")
    }
}

struct Shared {
    mode: Mutex<Mode>,
    requests: Mutex<Vec<Request>>,
}

/// A real HTTP/1.1 server on 127.0.0.1 that records every request it answers.
pub struct Receiver {
    pub port: u16,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        Self::start_on(0)
    }

    /// Starts on a given port (to bring a stopped receiver back at the same address).
    pub fn start_on(port: u16) -> Receiver {
        let shared = Arc::new(Shared {
            mode: Mutex::new(Mode::Ok),
            requests: Mutex::new(Vec::new()),
        });
        Self::serve(port, shared)
    }

    fn serve(port: u16, shared: Arc<Shared>) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind receiver");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let shared = shared.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let shared = shared.clone();
                            std::thread::spawn(move || handle(stream, &shared));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                // The listener is dropped here: the port refuses connections.
            })
        };
        Receiver {
            port,
            shared,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Stops listening (connections are refused) and returns a handle to start again.
    pub fn stop(mut self) -> StoppedReceiver {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        StoppedReceiver {
            port: self.port,
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub struct StoppedReceiver {
    pub port: u16,
    shared: Arc<Shared>,
}

impl StoppedReceiver {
    /// Listens again on the same port, keeping the request log.
    pub fn restart(self) -> Receiver {
        Receiver::serve(self.port, self.shared)
    }
}

fn handle(stream: TcpStream, shared: &Shared) {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    // Keep-alive: serve requests on this connection until the client closes it.
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mode = *shared.mode.lock().unwrap();
        let status = match mode {
            Mode::Ok => 200,
            Mode::Status(s) => s,
            Mode::Slow(d) => {
                std::thread::sleep(d);
                200
            }
        };
        shared.requests.lock().unwrap().push(Request {
            method,
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            status,
        });
        let reply_body = if status >= 400 {
            "receiver says no"
        } else {
            ""
        };
        let reply = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{reply_body}",
            reply_body.len()
        );
        let mut writer = &stream;
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// A leak finding; `eta_conservative_hours` decides warning (far) or critical (near).
pub fn leak(
    target: &str,
    resource: &str,
    attribution: &str,
    eta_conservative_hours: f64,
) -> Finding {
    Finding {
        kind: FindingKind::Leak,
        state: leakwatch_detect::FindingState::Confirmed,
        resolution: None,
        key: leakwatch_detect::SeriesKey::from_text(target, resource, attribution),
        pids: vec![4242],
        processes: Vec::new(),
        current: 2533.0,
        limit: Some(32768.0),
        rate_per_hour: 2533.0,
        eta_seconds: Some(eta_conservative_hours * 3600.0 * 1.5),
        eta_conservative_seconds: Some(eta_conservative_hours * 3600.0),
        first_seen: 1_700_000_000.0,
        evidence_window: (1_700_000_000.0, 1_700_003_600.0),
        confidence: 0.9999,
        p_value: 0.0001,
        restarts: 0,
        summary: format!("{resource} {attribution} +2,533 in 1h (2,533/h), limit 32,768"),
        consequences: Vec::new(),
        evidence: None,
    }
}

pub fn saturation(target: &str, resource: &str, current: f64, limit: f64) -> Finding {
    Finding {
        kind: FindingKind::Saturation,
        state: leakwatch_detect::FindingState::Confirmed,
        resolution: None,
        current,
        limit: Some(limit),
        eta_seconds: None,
        eta_conservative_seconds: None,
        rate_per_hour: 0.0,
        p_value: 0.0,
        confidence: 1.0,
        summary: format!("{resource} at {current} of {limit}"),
        consequences: Vec::new(),
        evidence: None,
        ..leak(target, resource, "", 1000.0)
    }
}

/// Fast retries for tests: 50 ms first step, at most 200 ms.
pub fn fast_delivery() -> DeliveryConfig {
    DeliveryConfig {
        backoff_initial: Dur::millis(50),
        backoff_max: Dur::millis(200),
        expire_after: Dur::secs(3600),
        failing_after_failures: 3,
        failing_after: Dur::secs(0),
        keep: Dur::secs(3600),
    }
}

/// A config with the given channels, all of them routed for both severities.
pub fn config_with(channels: Vec<(&str, ChannelConfig)>) -> AlertConfig {
    let names: Vec<String> = channels.iter().map(|(n, _)| n.to_string()).collect();
    let config = AlertConfig {
        channels: channels
            .into_iter()
            .map(|(n, c)| (n.to_string(), c))
            .collect(),
        routes: Routes {
            warning: names.clone(),
            critical: names,
        },
        delivery: fast_delivery(),
        ..AlertConfig::default()
    };
    config.validate().expect("test config is valid");
    config
}

/// The firing notifications for one critical leak, one per routed channel.
pub fn firing_notifications(config: &AlertConfig, target: &str, now: u64) -> Vec<Notification> {
    let mut engine = AlertEngine::new(config);
    let notes = engine.update(&[leak(target, "threads", "Analytics-#", 2.0)], now);
    assert!(!notes.is_empty(), "a critical leak notifies");
    notes
}

pub const CHILD_DB: &str = "LEAKWATCH_ALERT_TEST_CHILD_DB";
pub const CHILD_CHANNEL: &str = "LEAKWATCH_ALERT_TEST_CHILD_CHANNEL";

/// When this test binary was started by [`kill_child_after_enqueue`], play the child:
/// enqueue a notification, say so, and wait to be SIGKILLed. Otherwise return.
pub fn maybe_be_the_child() {
    let (Ok(db), Ok(channel)) = (std::env::var(CHILD_DB), std::env::var(CHILD_CHANNEL)) else {
        return;
    };
    let config = AlertConfig {
        channels: [(
            channel.clone(),
            ChannelConfig::Exec(ExecConfig {
                program: "true".into(),
                args: vec![],
                timeout: Dur::secs(1),
                max_output_bytes: 1024,
            }),
        )]
        .into_iter()
        .collect(),
        routes: Routes {
            warning: vec![channel.clone()],
            critical: vec![channel.clone()],
        },
        ..AlertConfig::default()
    };
    let mut outbox = Outbox::open(Path::new(&db)).unwrap();
    let notes = firing_notifications(&config, "killed-before-sending", now_ms());
    outbox.enqueue(&notes, now_ms(), 3_600_000).unwrap();
    println!("ENQUEUED {}", notes.len());
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(60));
    std::process::exit(3);
}

/// Runs `test_name` of this test binary as a child that enqueues one notification for
/// `channel` into `db` and is then SIGKILLed before anything sends it.
pub fn kill_child_after_enqueue(test_name: &str, db: &Path, channel: &str) {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, db)
        .env(CHILD_CHANNEL, channel)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let enqueued = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.find("ENQUEUED").map(|at| l[at..].to_string()))
        .expect("child enqueued");
    // libtest prints the test's name on the same line, before our output.
    assert_eq!(enqueued, "ENQUEUED 1");
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(9),
        "child died of SIGKILL, not on its own"
    );
}

fn distinct_ids(requests: &[Request]) -> std::collections::BTreeSet<String> {
    requests
        .iter()
        .map(|r| {
            r.header("Idempotency-Key")
                .expect("Idempotency-Key header")
                .to_string()
        })
        .collect()
}

fn only_row(outbox: &Outbox) -> DeliveryRow {
    let rows = outbox.deliveries(None).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows.into_iter().next().unwrap()
}

fn counters(outbox: &Outbox, channel: &str) -> ChannelCounters {
    outbox
        .counters()
        .unwrap()
        .into_iter()
        .find(|c| c.channel == channel)
        .unwrap_or_default()
}

/// The shared compliance check for HTTP channels. `make` builds the channel for a receiver
/// base URL (`http://127.0.0.1:PORT`) and a timeout; `check_body` inspects one delivered
/// request (format-specific).
pub fn http_channel_compliance(
    test_name: &str,
    make: impl Fn(&str, Dur) -> ChannelConfig,
    check_body: impl Fn(&Request),
) {
    maybe_be_the_child();
    let name = "under_test";
    let dir = tempfile::tempdir().unwrap();
    let t0 = now_ms();

    // 1. Delivery succeeds, is recorded, and counted.
    {
        let receiver = Receiver::start();
        let config = config_with(vec![(name, make(&receiver.url(""), Dur::secs(5)))]);
        let mut dispatcher =
            Dispatcher::new(Outbox::open(&dir.path().join("ok.db")).unwrap(), &config).unwrap();
        let notes = firing_notifications(&config, "svc-ok", t0);
        dispatcher.enqueue(&notes, t0).unwrap();
        let stats = dispatcher.run_once(now_ms()).unwrap();
        assert_eq!(stats.delivered, 1, "{stats:?}");
        let requests = receiver.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].method, "POST");
        check_body(&requests[0]);
        let row = only_row(dispatcher.outbox());
        assert_eq!(row.status, DeliveryStatus::Delivered);
        assert_eq!(row.detail.as_deref(), Some("HTTP 200 OK"));
        assert_eq!(counters(dispatcher.outbox(), name).sent, 1);
        // Nothing left to do: a second pass sends nothing.
        assert_eq!(
            dispatcher.run_once(now_ms() + 10_000).unwrap(),
            DispatchStats::default()
        );
        assert_eq!(receiver.requests().len(), 1);
    }

    // 2. Receiver down, then back: retried, delivered exactly once.
    {
        let receiver = Receiver::start();
        let url = receiver.url("");
        let stopped = receiver.stop();
        let config = config_with(vec![(name, make(&url, Dur::secs(5)))]);
        let mut dispatcher =
            Dispatcher::new(Outbox::open(&dir.path().join("down.db")).unwrap(), &config).unwrap();
        dispatcher
            .enqueue(&firing_notifications(&config, "svc-down", t0), t0)
            .unwrap();
        let stats = dispatcher.run_once(now_ms()).unwrap();
        assert_eq!((stats.delivered, stats.retried), (0, 1), "{stats:?}");
        let row = only_row(dispatcher.outbox());
        assert_eq!(row.status, DeliveryStatus::Pending);
        assert!(
            row.detail.as_deref().unwrap().contains("connect"),
            "{row:?}"
        );
        let receiver = stopped.restart();
        let stats = dispatcher.run_once(now_ms() + 1_000).unwrap();
        assert_eq!(stats.delivered, 1, "{stats:?}");
        dispatcher.run_once(now_ms() + 60_000).unwrap();
        let requests = receiver.requests();
        assert_eq!(
            requests.len(),
            1,
            "exactly one request reached the receiver"
        );
        let row = only_row(dispatcher.outbox());
        assert_eq!((row.status, row.attempts), (DeliveryStatus::Delivered, 2));
        let c = counters(dispatcher.outbox(), name);
        assert_eq!((c.sent, c.retried, c.failed), (1, 1, 0));
    }

    // 3. Receiver slow: the attempt times out and is retried; the receiver deduplicates.
    {
        let receiver = Receiver::start();
        receiver.set_mode(Mode::Slow(Duration::from_millis(1500)));
        let config = config_with(vec![(name, make(&receiver.url(""), Dur::millis(300)))]);
        let mut dispatcher =
            Dispatcher::new(Outbox::open(&dir.path().join("slow.db")).unwrap(), &config).unwrap();
        dispatcher
            .enqueue(&firing_notifications(&config, "svc-slow", t0), t0)
            .unwrap();
        let started = std::time::Instant::now();
        let stats = dispatcher.run_once(now_ms()).unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(1200),
            "the timeout bounded the attempt"
        );
        assert_eq!(stats.retried, 1, "{stats:?}");
        assert!(only_row(dispatcher.outbox())
            .detail
            .unwrap()
            .contains("timed out"));
        receiver.set_mode(Mode::Ok);
        let stats = dispatcher.run_once(now_ms() + 1_000).unwrap();
        assert_eq!(stats.delivered, 1, "{stats:?}");
        std::thread::sleep(Duration::from_millis(1600)); // let the slow request finish
        let requests = receiver.requests();
        // At least once: the timed-out request did arrive, late. One id, so one alert.
        assert_eq!(requests.len(), 2);
        assert_eq!(distinct_ids(&requests).len(), 1);
    }

    // 4. 5xx is retried; 4xx is not: marked failed, counted, and left alone.
    {
        let receiver = Receiver::start();
        receiver.set_mode(Mode::Status(503));
        let config = config_with(vec![(name, make(&receiver.url(""), Dur::secs(5)))]);
        let mut dispatcher = Dispatcher::new(
            Outbox::open(&dir.path().join("status.db")).unwrap(),
            &config,
        )
        .unwrap();
        dispatcher
            .enqueue(&firing_notifications(&config, "svc-status", t0), t0)
            .unwrap();
        let stats = dispatcher.run_once(now_ms()).unwrap();
        assert_eq!(stats.retried, 1, "503 is retried: {stats:?}");
        assert_eq!(
            only_row(dispatcher.outbox()).status,
            DeliveryStatus::Pending
        );
        receiver.set_mode(Mode::Status(400));
        let stats = dispatcher.run_once(now_ms() + 1_000).unwrap();
        assert_eq!(stats.failed, 1, "400 is not retried: {stats:?}");
        let row = only_row(dispatcher.outbox());
        assert_eq!(row.status, DeliveryStatus::Failed);
        assert!(
            row.detail.as_deref().unwrap().starts_with("HTTP 400"),
            "{row:?}"
        );
        assert!(
            row.detail.as_deref().unwrap().contains("receiver says no"),
            "{row:?}"
        );
        let c = counters(dispatcher.outbox(), name);
        assert_eq!(
            (c.sent, c.retried, c.failed, c.consecutive_failures),
            (0, 1, 1, 2)
        );
        receiver.set_mode(Mode::Ok);
        dispatcher.run_once(now_ms() + 60_000).unwrap();
        assert_eq!(
            receiver.requests().len(),
            2,
            "a rejected notification is not re-sent"
        );
    }

    // 5. Killed with a pending notification: delivered after reopening, exactly once.
    {
        let receiver = Receiver::start();
        let db = dir.path().join("killed.db");
        kill_child_after_enqueue(test_name, &db, name);
        assert!(receiver.requests().is_empty(), "the child sent nothing");
        let config = config_with(vec![(name, make(&receiver.url(""), Dur::secs(5)))]);
        let mut dispatcher = Dispatcher::new(Outbox::open(&db).unwrap(), &config).unwrap();
        let stats = dispatcher.run_once(now_ms()).unwrap();
        assert_eq!(stats.delivered, 1, "{stats:?}");
        dispatcher.run_once(now_ms() + 60_000).unwrap();
        let requests = receiver.requests();
        assert_eq!(requests.len(), 1);
        check_body(&requests[0]);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the process when the test ends, pass or fail.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not listen on {port} within 20s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The mails in a maildir, headers unfolded.
pub fn mails(maildir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else {
        return Vec::new();
    };
    entries
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .replace("\r\n", "\n")
                .replace("\n ", " ")
        })
        .collect()
}
