//! `forbidding-server ADDR [--empty-403]`: the downstream of incident 001, as the deployed
//! load balancer answered it.
//!
//! `GET` with the cookie `session=valid` gets `200` with no body and the connection kept
//! alive (the session service only ever sent a status). Anything else gets `403`: by
//! default with an HTML error page and `Connection: close`, as the load balancer in front of
//! the service did; with `--empty-403`, with no body, as the wiremock stub in the team's
//! component tests did, which is why those tests never saw the leak.
//!
//! Prints `listening ADDR` once bound; exits with its parent (or on SIGTERM).

use leakwatch_testkit::http::{self, read_request, write_response};
use std::io::BufReader;
use std::net::{TcpListener, TcpStream};

const ERROR_PAGE: &[u8] = b"<html><head><title>403 Forbidden</title></head>\n\
<body><h1>403 Forbidden</h1><p>You are not allowed to access this resource.</p>\n\
<hr><address>load-balancer</address></body></html>\n";

fn serve(stream: TcpStream, empty_403: bool) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    while let Some(request) = read_request(&mut reader)? {
        let valid = request
            .header("cookie")
            .is_some_and(|cookie| cookie.split(';').any(|c| c.trim() == "session=valid"));
        if valid {
            write_response(&mut writer, 200, "OK", false, b"")?;
            continue;
        }
        let body = if empty_403 { &b""[..] } else { ERROR_PAGE };
        write_response(&mut writer, 403, "Forbidden", true, body)?;
        // Connection: close, and the server means it: its side of the socket goes away
        // now, leaving the client's side in CLOSE_WAIT until the client closes it.
        return Ok(());
    }
    Ok(())
}

fn main() {
    http::die_with_parent();
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .expect("usage: forbidding-server ADDR [--empty-403]");
    let empty_403 = args.any(|a| a == "--empty-403");
    let listener = TcpListener::bind(&addr).expect("bind");
    println!("listening {}", listener.local_addr().unwrap());
    for stream in listener.incoming().flatten() {
        std::thread::Builder::new()
            .name("lb-conn".into())
            .spawn(move || {
                let _ = serve(stream, empty_403);
            })
            .expect("spawn");
    }
}
