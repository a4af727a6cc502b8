//! The guard and repeat checks on real threads, files and TCP connections of this test
//! process: each leak is caught and named, and clean code passes quickly.
//!
//! Every test takes a guard (or runs `repeat`, which takes the same turn) first, so they
//! run one at a time although cargo starts them on parallel threads; that is the pattern
//! the crate documents for its users.

use leakcheck::{Config, Guard, Leaked};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A short settle: the leaks below are permanent, so waiting longer proves nothing.
fn quick() -> Config {
    Config::new().settle(Duration::from_millis(300))
}

/// A thread named `name` that lives until the returned sender is dropped.
fn parked_thread(name: &str) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (stop, stopped) = mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = stopped.recv();
        })
        .unwrap();
    (stop, handle)
}

#[test]
fn catches_a_leaked_thread_by_name() {
    let guard = quick().guard();
    let (stop, handle) = parked_thread("report-worker-7");
    let report = guard.check().expect_err("a parked thread is a leak");
    assert_eq!(report.leaked.len(), 1, "{report}");
    assert!(
        matches!(&report.leaked[0], Leaked::Thread { name, .. } if name == "report-worker-7"),
        "{report}"
    );
    let text = report.to_string();
    assert!(text.contains("threads (1 new):"), "{text}");
    assert!(text.contains("\"report-worker-7\""), "{text}");
    assert!(text.contains("group report-worker-#"), "{text}");
    drop(stop);
    handle.join().unwrap();
}

#[test]
fn catches_a_leaked_file_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    let guard = quick().guard();
    let file = std::fs::File::create(&path).unwrap();
    let report = guard.check().expect_err("an open file is a leak");
    let text = report.to_string();
    assert!(text.contains("fds (1 new):"), "{text}");
    assert!(
        text.contains(&format!("-> {} (file)", path.display())),
        "{text}"
    );
    drop(file);
}

#[test]
fn catches_a_leaked_tcp_connection_in_close_wait_with_its_peer() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = listener.local_addr().unwrap();
    let guard = quick().guard();
    // The server answers and hangs up; the client never closes: CLOSE_WAIT, incident 001.
    let client = TcpStream::connect(server).unwrap();
    let (mut accepted, _) = listener.accept().unwrap();
    accepted
        .write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n")
        .unwrap();
    drop(accepted);
    let client_port = client.local_addr().unwrap().port();
    let report = guard
        .check()
        .expect_err("the unclosed client socket is a leak");
    let text = report.to_string();
    assert!(text.contains("sockets (1 new):"), "{text}");
    assert!(
        text.contains(&format!(
            "TCP CLOSE_WAIT 127.0.0.1:{client_port} -> 127.0.0.1:{}",
            server.port()
        )),
        "{text}"
    );
    assert!(text.contains("-> socket:["), "{text}");
    drop(client);
}

#[test]
fn stays_quiet_on_clean_code_and_does_not_wait() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = listener.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let guard = Config::new().settle(Duration::from_secs(5)).guard();
    let started = Instant::now();

    let worker = std::thread::Builder::new()
        .name("clean-worker".into())
        .spawn(|| 6 * 7)
        .unwrap();
    assert_eq!(worker.join().unwrap(), 42);
    std::fs::write(dir.path().join("data"), b"x").unwrap();
    let mut client = TcpStream::connect(server).unwrap();
    let (mut accepted, _) = listener.accept().unwrap();
    client.write_all(b"ping").unwrap();
    let mut buf = [0; 4];
    accepted.read_exact(&mut buf).unwrap();
    drop((client, accepted));

    guard.check().expect("everything was closed or joined");
    // A joined thread can linger in /proc for a moment; the check waits for that, not for
    // the whole settle time.
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn ignore_rules_accept_known_resources() {
    let dir = tempfile::tempdir().unwrap();
    let guard = quick()
        .ignore_threads("cache-refresher")
        .ignore(&format!("fds:{}/*.log", dir.path().display()))
        .guard();
    let (stop, handle) = parked_thread("cache-refresher");
    let log = std::fs::File::create(dir.path().join("app.log")).unwrap();
    guard.check().expect("both are accepted by a rule");

    let guard = quick().fds(false).guard();
    let data = std::fs::File::create(dir.path().join("data.bin")).unwrap();
    guard.check().expect("fds are not checked");
    drop((stop, log, data));
    handle.join().unwrap();
}

#[test]
fn assert_panics_with_the_report() {
    let result = std::panic::catch_unwind(|| {
        let guard = quick().guard();
        let (stop, _handle) = parked_thread("forgotten");
        // Leak the sender on purpose so the thread outlives the check.
        std::mem::forget(stop);
        guard.assert();
    });
    let panic = result.expect_err("assert panics on a leak");
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(message.contains("\"forgotten\""), "{message}");
}

#[test]
fn a_nested_guard_on_the_same_thread_does_not_deadlock() {
    let outer = quick().guard();
    let inner = Guard::new();
    inner.check().expect("nothing happened");
    outer.check().expect("nothing happened");
}

#[test]
fn repeat_flags_one_connection_per_call_with_evidence() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = listener.local_addr().unwrap();
    let mut kept = Vec::new();
    let outcome = quick().warmup(1).rounds(4).repeat(|| {
        let client = TcpStream::connect(server).unwrap();
        drop(listener.accept().unwrap());
        kept.push(client);
    });
    let report = outcome.expect_err("one CLOSE_WAIT per call grows every round");
    let text = report.to_string();
    let row = format!(
        "sockets CLOSE_WAIT -> 127.0.0.1:{} +1 per round",
        server.port()
    );
    assert!(text.contains(&row), "{text}");
    assert!(
        text.contains("(baseline 1; 4 rounds: 2, 3, 4, 5)"),
        "{text}"
    );
    assert!(text.contains("TCP CLOSE_WAIT 127.0.0.1:"), "{text}");
    drop(kept);
}

#[test]
fn repeat_accepts_a_pool_started_on_first_use_that_a_guard_would_flag() {
    let (tx, rx) = mpsc::channel::<()>();
    let mut pool: Option<std::thread::JoinHandle<()>> = None;
    let rx = std::sync::Mutex::new(Some(rx));
    let mut call = || {
        if pool.is_none() {
            let rx = rx.lock().unwrap().take().unwrap();
            pool = Some(
                std::thread::Builder::new()
                    .name("lazy-pool".into())
                    .spawn(move || for _ in rx {})
                    .unwrap(),
            );
        }
    };
    quick()
        .repeat(&mut call)
        .expect("one-time start is not growth");
    drop(tx);
    pool.unwrap().join().unwrap();
}

#[test]
fn repeat_flags_a_thread_per_call() {
    let mut stops = Vec::new();
    let report = quick()
        .rounds(3)
        .repeat(|| stops.push(parked_thread("per-call-12")))
        .expect_err("one parked thread per call");
    let text = report.to_string();
    assert!(
        text.contains("threads per-call-# +1 per round (baseline 2; 3 rounds: 3, 4, 5)"),
        "{text}"
    );
    assert!(text.contains("thread \"per-call-12\""), "{text}");
    for (stop, handle) in stops {
        drop(stop);
        handle.join().unwrap();
    }
}
