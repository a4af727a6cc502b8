//! `http-get [--count N] [--cookie COOKIE] URL`: the workload of the `leakwatch check`
//! examples. Sends N sequential `GET`s, each on a new connection that it closes, prints
//! each status, and exits 1 if a request fails or the server answers 5xx, so a broken
//! example fails loudly instead of checking nothing.

use leakwatch_testkit::http;

fn main() {
    let mut count = 1;
    let mut cookie = None;
    let mut url = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--count" => count = args.next().and_then(|n| n.parse().ok()).expect("--count N"),
            "--cookie" => cookie = args.next(),
            _ => url = Some(arg),
        }
    }
    let url = url.expect("usage: http-get [--count N] [--cookie COOKIE] http://HOST:PORT/PATH");
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (addr, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    for _ in 0..count {
        match http::get(addr, path, cookie.as_deref()) {
            Ok((head, body)) => {
                println!(
                    "{} {}",
                    head.status,
                    String::from_utf8_lossy(&body).trim_end()
                );
                if head.status >= 500 {
                    std::process::exit(1);
                }
            }
            Err(error) => {
                eprintln!("http-get: {url}: {error}");
                std::process::exit(1);
            }
        }
    }
}
