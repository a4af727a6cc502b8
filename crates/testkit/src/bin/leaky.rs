//! `leaky`: a process that holds (or keeps leaking) exactly the resources a test asks for,
//! so the sampler's counts can be checked against independent oracles.
//!
//! Arguments (any order, repeatable):
//!   threads=NAME:N       N threads named NAME-0..NAME-(N-1), parked forever
//!   files=N              N regular files open (its own executable)
//!   pipes=N              N pipes (2N fds)
//!   eventfds=N           N eventfds
//!   connect=ADDR:N       N TCP connections to ADDR, kept open
//!   leak-threads=NAME:MS one more thread named NAME-i every MS milliseconds
//!   leak-connect=ADDR:MS one more TCP connection to ADDR every MS milliseconds
//!   comm=NAME            set the process name (may hold spaces and parentheses)
//!   listen=ADDR          a TCP socket listening on ADDR (e.g. 127.0.0.1:0), kept open
//!   exit-after=MS        a fixed lifetime: exit 0 after MS milliseconds, stdin not read
//! It prints `ready` once everything is set up and exits when its stdin closes (or when its
//! lifetime ends), so it can never outlive the test that started it. Lines on stdin are
//! commands, each answered `ok`:
//!   open-file | close-file | open-pipe | close-pipe | close-conn | thread NAME

use std::io::{BufRead, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

/// Starts a parked thread named `name` and returns once it runs: a thread sets its own
/// name when it starts, so "ready" must wait for that, or a sampler may see the parent's name.
fn spawn_named(name: String) {
    let (started, running) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let _ = started.send(());
            loop {
                std::thread::park();
            }
        })
        .expect("spawn thread");
    let _ = running.recv();
}

fn split(value: &str) -> (&str, u64) {
    let (name, n) = value.rsplit_once(':').expect("NAME:N");
    (name, n.parse().expect("a number after ':'"))
}

#[derive(Default)]
struct Held {
    files: Vec<std::fs::File>,
    fds: Vec<OwnedFd>,
    pipes: Vec<(OwnedFd, OwnedFd)>,
    conns: Vec<TcpStream>,
    listeners: Vec<TcpListener>,
}

fn open_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: valid out-array of two fds.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: pipe() returned these fds and nothing else owns them.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn main() {
    let mut held = Held::default();
    let mut lifetime: Option<Duration> = None;
    let exe = std::env::current_exe().unwrap();
    for arg in std::env::args().skip(1) {
        let (key, value) = arg.split_once('=').expect("key=value");
        match key {
            "threads" => {
                let (name, n) = split(value);
                for i in 0..n {
                    spawn_named(format!("{name}-{i}"));
                }
            }
            "files" => {
                for _ in 0..value.parse::<u32>().unwrap() {
                    held.files.push(std::fs::File::open(&exe).unwrap());
                }
            }
            "pipes" => {
                for _ in 0..value.parse::<u32>().unwrap() {
                    held.pipes.push(open_pipe());
                }
            }
            "comm" => {
                let name = std::ffi::CString::new(value).unwrap();
                // SAFETY: PR_SET_NAME reads a NUL-terminated string of up to 16 bytes.
                unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
            }
            "eventfds" => {
                for _ in 0..value.parse::<u32>().unwrap() {
                    // SAFETY: no pointers involved.
                    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
                    assert!(fd >= 0);
                    // SAFETY: eventfd returned this fd.
                    held.fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
            "connect" => {
                let (addr, n) = split(value);
                for _ in 0..n {
                    held.conns.push(TcpStream::connect(addr).expect("connect"));
                }
            }
            "leak-threads" => {
                let (name, ms) = split(value);
                let name = name.to_string();
                std::thread::spawn(move || {
                    for i in 0.. {
                        spawn_named(format!("{name}-{i}"));
                        std::thread::sleep(Duration::from_millis(ms));
                    }
                });
            }
            "leak-connect" => {
                let (addr, ms) = split(value);
                let addr = addr.to_string();
                std::thread::spawn(move || {
                    let mut leaked = Vec::new();
                    loop {
                        if let Ok(stream) = TcpStream::connect(&addr) {
                            leaked.push(stream);
                        }
                        std::thread::sleep(Duration::from_millis(ms));
                    }
                });
            }
            "listen" => held
                .listeners
                .push(TcpListener::bind(value).expect("listen")),
            "exit-after" => lifetime = Some(Duration::from_millis(value.parse().unwrap())),
            other => panic!("unknown argument {other}"),
        }
    }
    println!("ready");
    std::io::stdout().flush().unwrap();
    if let Some(lifetime) = lifetime {
        // A job of a shell loop: its stdin is the loop's, not a test's command channel.
        std::thread::sleep(lifetime);
        return;
    }
    // Serve commands; exit when the parent goes away (stdin reaches EOF).
    let mut line = String::new();
    while std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map(|n| n > 0)
        .unwrap_or(false)
    {
        let command = line.trim();
        match command.split_once(' ').unwrap_or((command, "")) {
            ("open-file", _) => held.files.push(std::fs::File::open(&exe).unwrap()),
            ("close-file", _) => drop(held.files.pop()),
            ("open-pipe", _) => held.pipes.push(open_pipe()),
            ("close-pipe", _) => drop(held.pipes.pop()),
            ("close-conn", _) => drop(held.conns.pop()),
            ("thread", name) => spawn_named(name.to_string()),
            _ => panic!("unknown command {command:?}"),
        }
        println!("ok");
        std::io::stdout().flush().unwrap();
        line.clear();
    }
    drop(held);
}
