//! The whole-suite pattern in a runnable form: `cargo run -p leakcheck --example suite`
//! passes; with `LEAK=1` one test keeps a connection the server closed (a CLOSE_WAIT
//! socket, incident 001) and a worker thread, and the run fails with a report naming both.
//!
//! In a real project this `main` lives in `tests/<name>.rs` with `harness = false`.

use std::net::{TcpListener, TcpStream};
use std::sync::Mutex;

/// Where the leaky test stashes what it forgets to close, as a global cache would.
static FORGOTTEN: Mutex<Vec<TcpStream>> = Mutex::new(Vec::new());

fn parses() {
    assert_eq!("42".parse::<u32>(), Ok(42));
}

fn clean_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    drop(listener.accept().unwrap());
    drop(client);
}

fn leaks_a_connection_and_a_thread() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    drop(listener.accept().unwrap());
    FORGOTTEN.lock().unwrap().push(client);
    std::thread::Builder::new()
        .name("stats-flusher".into())
        .spawn(|| loop {
            std::thread::park();
        })
        .unwrap();
}

fn main() -> std::process::ExitCode {
    let mut suite = leakcheck::Suite::new()
        .test("parses", parses)
        .test("clean_connection", clean_connection);
    if std::env::var_os("LEAK").is_some() {
        suite = suite.test(
            "leaks_a_connection_and_a_thread",
            leaks_a_connection_and_a_thread,
        );
    }
    suite.run()
}
