//! `session-client --listen ADDR --downstream ADDR [--fixed]`: the service of incident 001.
//!
//! For every request it receives, it asks the downstream session service whether the
//! caller's session is active (`GET /session` with the caller's cookie) through a pool of
//! keep-alive connections, and answers `200 active` or `401 inactive`.
//!
//! The pool works like Apache HttpComponents': a connection is *leased* while a response is
//! open, and goes back to the pool (or is closed) when the response is closed, or on its
//! own when the response has no body to read. The bug is the incident's
//! `isSessionActive`: it reads the status and never closes the response. A 200 (no body)
//! releases itself; a 403 whose body nobody reads keeps its connection leased forever, and
//! once the load balancer hangs up, that socket sits in CLOSE_WAIT. `--fixed` closes the
//! response, as the incident's fix did in a `finally`.

use leakwatch_testkit::http::{self, read_request, read_response_head, write_get, write_response};
use std::collections::HashMap;
use std::io::{self, BufReader};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Keep-alive connections to one downstream, idle or leased.
struct Pool {
    downstream: String,
    idle: Mutex<Vec<BufReader<TcpStream>>>,
    /// Leased connections by lease id. Like HttpClient's pool, it keeps the connection of
    /// every open response: that is what makes an unclosed response a leak.
    leased: Mutex<HashMap<u64, BufReader<TcpStream>>>,
    next_lease: AtomicU64,
}

/// An open response. Deliberately no `Drop`: as with a Java `ClientResponse`, forgetting
/// `close()` leaves the connection leased (Rust would normally release it on drop; the
/// point here is to reproduce the Java bug faithfully).
struct Response<'pool> {
    pool: &'pool Pool,
    lease: Option<u64>,
    status: u16,
}

impl Pool {
    fn new(downstream: String) -> Pool {
        Pool {
            downstream,
            idle: Mutex::new(Vec::new()),
            leased: Mutex::new(HashMap::new()),
            next_lease: AtomicU64::new(0),
        }
    }

    fn get(&self, path: &str, cookie: Option<&str>) -> io::Result<Response<'_>> {
        let reused = self.idle.lock().unwrap().pop();
        let mut connection = match reused {
            Some(connection) => connection,
            None => BufReader::new(TcpStream::connect(&self.downstream)?),
        };
        write_get(connection.get_mut(), &self.downstream, path, cookie)?;
        let head = read_response_head(&mut connection)?;
        if head.content_length == 0 {
            // Nothing to read: the exchange is complete and the connection is released at
            // once, back to the pool or closed if the server said so.
            if !head.closes() {
                self.idle.lock().unwrap().push(connection);
            }
            return Ok(Response {
                pool: self,
                lease: None,
                status: head.status,
            });
        }
        let lease = self.next_lease.fetch_add(1, Ordering::Relaxed);
        self.leased.lock().unwrap().insert(lease, connection);
        Ok(Response {
            pool: self,
            lease: Some(lease),
            status: head.status,
        })
    }
}

impl Response<'_> {
    fn status(&self) -> u16 {
        self.status
    }

    /// Ends the exchange: a body that was not read makes the connection unusable, so it is
    /// closed rather than returned to the pool.
    fn close(self) {
        if let Some(lease) = self.lease {
            drop(self.pool.leased.lock().unwrap().remove(&lease));
        }
    }
}

/// The incident's method, with and without its fix.
fn is_session_active(pool: &Pool, cookie: Option<&str>, fixed: bool) -> io::Result<bool> {
    let response = pool.get("/session", cookie)?;
    let active = response.status() == 200;
    if fixed {
        response.close();
    }
    Ok(active)
}

fn serve(stream: TcpStream, pool: &Pool, fixed: bool) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let Some(request) = read_request(&mut reader)? else {
        return Ok(());
    };
    match is_session_active(pool, request.header("cookie"), fixed) {
        Ok(true) => write_response(&mut writer, 200, "OK", true, b"active\n"),
        Ok(false) => write_response(&mut writer, 401, "Unauthorized", true, b"inactive\n"),
        Err(error) => {
            let body = format!("session service unreachable: {error}\n");
            write_response(&mut writer, 502, "Bad Gateway", true, body.as_bytes())
        }
    }
}

fn main() {
    http::die_with_parent();
    let mut listen = None;
    let mut downstream = None;
    let mut fixed = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next(),
            "--downstream" => downstream = args.next(),
            "--fixed" => fixed = true,
            other => panic!("unknown argument {other}"),
        }
    }
    let usage = "usage: session-client --listen ADDR --downstream ADDR [--fixed]";
    let listener = TcpListener::bind(listen.expect(usage)).expect("bind");
    let pool = Arc::new(Pool::new(downstream.expect(usage)));
    println!(
        "session-client ({}) listening {}",
        if fixed { "fixed" } else { "leaky" },
        listener.local_addr().unwrap()
    );
    for stream in listener.incoming().flatten() {
        let pool = Arc::clone(&pool);
        std::thread::Builder::new()
            .name("http-conn".into())
            .spawn(move || {
                let _ = serve(stream, &pool, fixed);
            })
            .expect("spawn");
    }
}
