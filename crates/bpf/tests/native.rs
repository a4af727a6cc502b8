//! Creation sites traced by eBPF in real native processes (issue 14): a C program leaking
//! fds, threads or sockets from one function, built with and without frame pointers. Needs
//! root (the suite runs as root), like the agent's tracing.

use leakwatch_bpf::sites::summarise;
use leakwatch_bpf::{trace, Limits};
use leakwatch_model::Resource;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Builds `leaky.c` with `flags` into `dir`.
fn build(dir: &Path, name: &str, flags: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let status = Command::new("gcc")
        .args(flags)
        .args(["-pthread", "-o"])
        .arg(&out)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/leaky.c"))
        .status()
        .expect("gcc");
    assert!(status.success(), "gcc {flags:?} failed");
    out
}

struct Leaky(Child);

impl Leaky {
    fn start(bin: &Path, mode: &str) -> Leaky {
        let mut child = Command::new(bin)
            .arg(mode)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start leaky");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n");
        Leaky(child)
    }
}

impl Drop for Leaky {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn traced(bin: &Path, mode: &str, resource: Resource) -> (String, Option<String>, u64) {
    let leaky = Leaky::start(bin, mode);
    let limits = Limits {
        window: Duration::from_secs(2),
        max_events: 10_000,
        kinds: leakwatch_bpf::Kind::mask_for(Some(&resource)),
    };
    let traced = trace(&[leaky.0.id()], limits, &mut || true).expect("trace");
    let creation = summarise(&traced, Some(&resource));
    eprintln!("{}", creation.text);
    (creation.text, creation.headline, traced.events)
}

#[test]
fn native_creation_sites_are_named_by_function() {
    let dir = tempfile::tempdir().unwrap();
    let fp = build(
        dir.path(),
        "leaky-fp",
        &["-O1", "-g", "-fno-omit-frame-pointer"],
    );
    let (text, headline, events) = traced(&fp, "fds", Resource::Fds);
    assert!(events >= 50, "{events} events in 2 s of one open per 20 ms");
    let headline = headline.expect("a site");
    // Ranked by what is still open at the end: read_config closes its files.
    assert!(
        headline.starts_with("100% of the ")
            && headline.contains(" new files still open after 2 s were opened from leak_log_file"),
        "{headline}\n{text}"
    );
    assert!(text.contains("leaky.c:"), "line numbers from DWARF: {text}");

    // Threads: glibc's pthread_create has no frame pointers, so the kernel's walk breaks in
    // it and the caller is found by scanning. In about one process in six (measured: 1 of
    // 6 runs, and 1 of 3 CI runs; it varies with the process, not the event: all of a
    // process's stacks or none) the scan does not reach `start_worker` and no site is
    // named. Known and said in the issue; up to three processes are tried, and each
    // attempt must either name the site or say that no frame was named.
    let mut named = None;
    for attempt in 1..=3 {
        let (text, headline, _) = traced(&fp, "threads", Resource::Threads);
        match headline {
            Some(headline) => {
                named = Some((attempt, headline, text));
                break;
            }
            None => assert!(
                text.contains("with no named frame outside the C library"),
                "{text}"
            ),
        }
    }
    let (attempt, headline, text) = named.expect("a thread site named in one of 3 processes");
    eprintln!("thread site named by process {attempt} of 3");
    assert!(
        headline.starts_with("100% of the ") && headline.contains(" new threads still running"),
        "{headline}"
    );
    assert!(headline.contains("start_worker"), "{headline}\n{text}");

    let (text, headline, _) = traced(&fp, "sockets", Resource::Tcp);
    let headline = headline.expect("a site");
    assert!(headline.contains("open_upstream"), "{headline}\n{text}");
}

#[test]
fn without_frame_pointers_the_trace_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let nofp = build(dir.path(), "leaky-nofp", &["-O2", "-fomit-frame-pointer"]);
    let (text, headline, events) = traced(&nofp, "fds", Resource::Fds);
    assert!(events >= 50, "{events}");
    // The kernel's walk breaks at once; the stack is recovered by scanning, and said so.
    assert!(
        text.contains("could not walk along frame pointers"),
        "{text}"
    );
    assert!(text.contains("stack (scanned):"), "{text}");
    let headline = headline.expect("a site");
    assert!(headline.contains("leak_log_file"), "{headline}\n{text}");
}
