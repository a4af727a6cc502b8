//! Whole-suite mode as a user writes it: a `harness = false` test target whose tests run in
//! parallel threads (opening files, sockets and threads at the same time) and are checked
//! for leaks once, after the last one. Every test here cleans up, so the run must pass;
//! `tests/suite_example.rs` shows the same runner failing on a leak.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

fn echo_round_trip() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0; 5];
        conn.read_exact(&mut buf).unwrap();
        conn.write_all(&buf).unwrap();
    });
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"hello").unwrap();
    let mut reply = [0; 5];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"hello");
    server.join().unwrap();
}

fn writes_and_reads_back_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "threads = 4\n").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "threads = 4\n");
}

fn scoped_workers_finish() {
    let total: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4u64)
            .map(|i| scope.spawn(move || (i * 100..(i + 1) * 100).sum::<u64>()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(total, (0..400).sum());
}

fn pipes_are_closed() {
    let mut child = std::process::Command::new("cat")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through a pipe")
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "through a pipe");
    assert!(child.wait().unwrap().success());
}

fn main() -> std::process::ExitCode {
    leakcheck::Suite::new()
        .test("echo_round_trip", echo_round_trip)
        .test("writes_and_reads_back_a_file", writes_and_reads_back_a_file)
        .test("scoped_workers_finish", scoped_workers_finish)
        .test("pipes_are_closed", pipes_are_closed)
        .run()
}
