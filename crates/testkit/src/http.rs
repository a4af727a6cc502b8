//! Just enough HTTP/1.1 for the `leakwatch check` example programs (`forbidding-server`,
//! `session-client`, `analytics-service`, `http-get`): GET requests without bodies, and
//! responses with a `Content-Length`. Written here rather than pulled from a crate so the
//! examples show exactly which bytes and which sockets are involved. Also the webhook
//! receiver the alerting tests deliver to.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// A response head, and how long the body that follows is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub content_length: usize,
}

impl ResponseHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Whether the server said it closes the connection after this response.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// The first line of a message and its headers.
type Head = (String, Vec<(String, String)>);

/// Reads lines up to the blank line; `None` at a clean end of stream before any line.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut first = String::new();
    if reader.read_line(&mut first)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside the header",
            ));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((key, value)) = line.split_once(':') {
            headers.push((key.trim().to_string(), value.trim().to_string()));
        }
        if headers.len() > 100 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "too many headers",
            ));
        }
    }
    Ok(Some((first.trim_end().to_string(), headers)))
}

/// Reads one request head; `None` when the client closed the connection between requests.
pub fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Request>> {
    let Some((line, headers)) = read_head(reader)? else {
        return Ok(None);
    };
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(method), Some(path)) => Ok(Some(Request {
            method: method.to_string(),
            path: path.to_string(),
            headers,
        })),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad request line {line:?}"),
        )),
    }
}

/// Reads one response head (the body is left in the reader).
pub fn read_response_head(reader: &mut impl BufRead) -> io::Result<ResponseHead> {
    let (line, headers) = read_head(reader)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a response",
        )
    })?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad status line {line:?}"),
            )
        })?;
    let content_length = header(&headers, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(ResponseHead {
        status,
        headers,
        content_length,
    })
}

/// Writes a complete response with a `Content-Length`.
pub fn write_response(
    stream: &mut impl Write,
    status: u16,
    reason: &str,
    close: bool,
    body: &[u8],
) -> io::Result<()> {
    let connection = if close { "close" } else { "keep-alive" };
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: {connection}\r\n\
         Content-Type: text/html\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()
}

/// Writes a GET request.
pub fn write_get(
    stream: &mut impl Write,
    host: &str,
    path: &str,
    cookie: Option<&str>,
) -> io::Result<()> {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\n")?;
    if let Some(cookie) = cookie {
        write!(stream, "Cookie: {cookie}\r\n")?;
    }
    stream.write_all(b"\r\n")?;
    stream.flush()
}

/// One GET on a new connection, reading the whole body; the connection is closed after.
pub fn get(addr: &str, path: &str, cookie: Option<&str>) -> io::Result<(ResponseHead, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr)?;
    write_get(&mut stream, addr, path, cookie)?;
    let mut reader = BufReader::new(stream);
    let head = read_response_head(&mut reader)?;
    let mut body = vec![0; head.content_length];
    reader.read_exact(&mut body)?;
    Ok((head, body))
}

/// Makes this process exit when its parent does: example servers started in the
/// background by a script must not outlive it.
pub fn die_with_parent() {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and no pointers.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
}

/// A webhook receiver: records every request body; answers 200.
pub fn webhook_receiver() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut data = Vec::new();
            let mut buffer = [0u8; 8192];
            // Read headers, then Content-Length bytes of body.
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&data).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        seen.lock().unwrap().push(body.to_string());
                        break;
                    }
                }
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (port, bodies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_response_round_trip() {
        let mut wire = Vec::new();
        write_get(&mut wire, "127.0.0.1:1", "/orders", Some("session=expired")).unwrap();
        let request = read_request(&mut &wire[..]).unwrap().unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/orders");
        assert_eq!(request.header("cookie"), Some("session=expired"));

        let mut wire = Vec::new();
        write_response(&mut wire, 403, "Forbidden", true, b"<h1>403</h1>").unwrap();
        let mut reader = &wire[..];
        let head = read_response_head(&mut reader).unwrap();
        assert_eq!(head.status, 403);
        assert_eq!(head.content_length, 12);
        assert!(head.closes());
        assert_eq!(reader, b"<h1>403</h1>");
    }

    #[test]
    fn a_closed_connection_between_requests_is_not_an_error() {
        assert_eq!(read_request(&mut &b""[..]).unwrap(), None);
        assert!(read_request(&mut &b"GET / HTTP/1.1\r\nHost"[..]).is_err());
    }
}
