//! Incident 001 in one process, under a [`leakcheck::Guard`]: a client that does not close
//! a 403 response with a body keeps its connection, which sits in CLOSE_WAIT once the
//! server hangs up; the fixed client closes it. Then the same in repeat mode, which reports
//! the growth per call. `cargo run -p leakcheck --example incident_001` prints the reports
//! and exits 0 when both checks told the two clients apart.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// Answers every request with a 403 and an HTML body, then closes: the load balancer.
fn forbidding_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::Builder::new()
        .name("load-balancer".into())
        .spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let mut line = String::new();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                    line.clear();
                }
                let body = "<h1>403 Forbidden</h1>";
                let _ = write!(
                    conn,
                    "HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        })
        .unwrap();
    addr
}

/// Connections whose responses are still open, like an HTTP client's leased set.
static LEASED: std::sync::Mutex<Vec<TcpStream>> = std::sync::Mutex::new(Vec::new());

fn is_session_active(server: std::net::SocketAddr, close_response: bool) -> bool {
    let mut conn = TcpStream::connect(server).unwrap();
    conn.write_all(b"GET /session HTTP/1.1\r\nHost: lb\r\n\r\n")
        .unwrap();
    let mut status = [0u8; 12];
    conn.read_exact(&mut status).unwrap();
    let active = &status[9..12] == b"200";
    if !close_response {
        // The bug: the response (and its connection) stays leased.
        LEASED.lock().unwrap().push(conn);
    }
    active
}

fn main() -> std::process::ExitCode {
    let server = forbidding_server();
    let config = leakcheck::Config::new().settle(Duration::from_millis(500));

    let guard = config.clone().guard();
    assert!(!is_session_active(server, false));
    let leaky = guard.check();
    match &leaky {
        Err(report) => println!("leaky client:\n{report}"),
        Ok(()) => println!("leaky client: no leak found (unexpected)"),
    }

    let guard = config.clone().guard();
    assert!(!is_session_active(server, true));
    let fixed = guard.check();
    match &fixed {
        Ok(()) => println!("fixed client: no leaks"),
        Err(report) => println!("fixed client (unexpected):\n{report}"),
    }
    let leaky_rounds = config
        .clone()
        .rounds(3)
        .repeat(|| assert!(!is_session_active(server, false)));
    match &leaky_rounds {
        Err(report) => println!("\nleaky client, repeated:\n{report}"),
        Ok(()) => println!("\nleaky client, repeated: no growth found (unexpected)"),
    }
    let fixed_rounds = config
        .rounds(3)
        .repeat(|| assert!(!is_session_active(server, true)));
    match &fixed_rounds {
        Ok(()) => println!("fixed client, repeated: nothing grew"),
        Err(report) => println!("fixed client, repeated (unexpected):\n{report}"),
    }
    if leaky.is_err() && fixed.is_ok() && leaky_rounds.is_err() && fixed_rounds.is_ok() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}
