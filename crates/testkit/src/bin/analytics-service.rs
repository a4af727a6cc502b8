//! `analytics-service --listen ADDR [--fixed]`: incident 000 as a service. Every
//! `GET /track` builds a new analytics client whose executor starts a worker thread
//! (`Analytics-N`), enqueues the event, and drops the client without shutting the executor
//! down: the worker waits for more work forever, one thread per call. `--fixed` shuts the
//! executor down after the call.

use leakwatch_testkit::http::{self, read_request, write_response};
use std::collections::VecDeque;
use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

type Task = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    tasks: VecDeque<Task>,
    shutdown: bool,
}

/// A single-thread executor like Java's `Executors.newSingleThreadExecutor`: its worker
/// holds the queue, so dropping the executor does not stop it; only `shutdown` does.
struct Executor {
    queue: Arc<(Mutex<Queue>, Condvar)>,
    worker: Option<JoinHandle<()>>,
}

static NEXT_THREAD: AtomicU64 = AtomicU64::new(0);

impl Executor {
    fn new() -> Executor {
        let queue: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let shared = Arc::clone(&queue);
        let name = format!("Analytics-{}", NEXT_THREAD.fetch_add(1, Ordering::Relaxed));
        let worker = std::thread::Builder::new()
            .name(name)
            .spawn(move || loop {
                let (lock, ready) = &*shared;
                let mut queue = lock.lock().unwrap();
                while queue.tasks.is_empty() && !queue.shutdown {
                    queue = ready.wait(queue).unwrap();
                }
                match queue.tasks.pop_front() {
                    Some(task) => {
                        drop(queue);
                        task();
                    }
                    None => return,
                }
            })
            .expect("spawn worker");
        Executor {
            queue,
            worker: Some(worker),
        }
    }

    fn submit(&self, task: Task) {
        let (lock, ready) = &*self.queue;
        lock.lock().unwrap().tasks.push_back(task);
        ready.notify_one();
    }

    fn shutdown(mut self) {
        let (lock, ready) = &*self.queue;
        lock.lock().unwrap().shutdown = true;
        ready.notify_all();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// What the incident's `track` did: a new client (and so a new executor) per call.
fn track(event: String, fixed: bool) {
    let executor = Executor::new();
    executor.submit(Box::new(move || {
        // Sending the event to the analytics backend is out of scope; counting it is not.
        let _ = event.len();
    }));
    if fixed {
        executor.shutdown();
    }
    // The bug: without shutdown, the executor is dropped and its worker waits forever.
}

fn serve(stream: TcpStream, fixed: bool) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let Some(request) = read_request(&mut reader)? else {
        return Ok(());
    };
    if request.path.starts_with("/track") {
        track(request.path.clone(), fixed);
        write_response(&mut writer, 200, "OK", true, b"tracked\n")
    } else {
        write_response(&mut writer, 404, "Not Found", true, b"")
    }
}

fn main() {
    http::die_with_parent();
    let mut listen = None;
    let mut fixed = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next(),
            "--fixed" => fixed = true,
            other => panic!("unknown argument {other}"),
        }
    }
    let listener =
        TcpListener::bind(listen.expect("usage: analytics-service --listen ADDR [--fixed]"))
            .expect("bind");
    println!(
        "analytics-service listening {}",
        listener.local_addr().unwrap()
    );
    for stream in listener.incoming().flatten() {
        std::thread::Builder::new()
            .name("http-conn".into())
            .spawn(move || {
                let _ = serve(stream, fixed);
            })
            .expect("spawn");
    }
}
