//! The dashboard and `leakwatch report` end to end: a real agent (1 s interval, fast
//! detection) watching a real process that leaks threads named `Leaky-N`; the dashboard
//! checked in a real browser (Debian's Chromium driven by playwright-core, see
//! tests/browser/dashboard.mjs), and the report rendered to HTML and Markdown files.
//!
//! Node (>= 20), Chromium and `tests/browser/node_modules` are required: the browser test
//! fails with the install step to run when one is missing, because CI installs them
//! (scripts/test.sh). `LEAKWATCH_SCREENSHOTS=DIR` copies the screenshots there.

use leakwatch_testkit::*;
use serde_json::Value;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// An agent whose target "grower" is the `leaky` that leaks a thread every `leak_ms` (the
/// two tests here run in parallel: each watches only its own process).
fn start_agent(leak_ms: u32) -> Agent {
    Agent::start(&format!(
        "[detect]\npreset = \"fast\"\n\
         [[target]]\nname = \"grower\"\ncmdline = \"leak-threads=Leaky:{leak_ms}$\"\n"
    ))
}

trait WaitForLeak {
    fn wait_for_leak(&self);
}

impl WaitForLeak for Agent {
    /// Waits for the detection loop to report the Leaky-# group of "grower".
    fn wait_for_leak(&self) {
        let found = eventually(150, || {
            self.get_json("/api/v1/findings").is_some_and(|body| {
                body["findings"].as_array().is_some_and(|list| {
                    list.iter().any(|f| {
                        f["target"] == "grower"
                            && f["resource"] == "threads"
                            && f["attribution"] == "Leaky-#"
                    })
                })
            })
        });
        assert!(
            found,
            "no finding for grower threads{{Leaky-#}}: {:?}",
            self.get_json("/api/v1/findings")
        );
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// Node >= 20, Chromium and playwright-core, or a failure that says what to install.
fn browser_prerequisites(browser_dir: &Path) -> PathBuf {
    let node = Command::new("node").arg("--version").output();
    let version = match node {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => panic!(
            "node is not installed: the dashboard's browser test needs Node.js >= 20 \
             (this machine kind ships it; on Debian: apt-get install nodejs npm)"
        ),
    };
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 20,
        "node {version} is too old: playwright-core 1.64 needs >= 20"
    );
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.exists(),
        "no Chromium at {}: apt-get install chromium (scripts/test.sh does), or set CHROMIUM",
        chromium.display()
    );
    assert!(
        browser_dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `(cd tests/browser && npm ci --no-audit --no-fund)` \
         (scripts/test.sh does)"
    );
    chromium
}

/// Runs `command` to completion or kills it after `limit`; (success, stdout, stderr).
fn run_with_limit(mut command: Command, limit: Duration) -> (bool, String, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            let mut err = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.success(), out, err);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn is_png(path: &Path) -> bool {
    std::fs::read(path)
        .is_ok_and(|bytes| bytes.len() > 5_000 && bytes.starts_with(b"\x89PNG\r\n\x1a\n"))
}

#[test]
fn the_dashboard_shows_a_real_leak_in_a_real_browser() {
    let browser_dir = workspace_root().join("tests/browser");
    let chromium = browser_prerequisites(&browser_dir);
    let agent = start_agent(100);
    let _leaky = Leaky::start(&["threads=Base:2", "leak-threads=Leaky:100"]);
    agent.wait_for_leak();

    // The pages answer without a browser too: the overview names the finding, the target
    // page has the threads chart with the leaking group, an unknown target is a 404.
    let overview = agent.get_text("/").expect("overview");
    assert!(
        overview.contains("Leaky-#") && overview.contains("target/grower"),
        "{overview}"
    );
    let page = agent
        .get_text("/target/grower?since=10m")
        .expect("target page");
    assert!(page.contains("data-label=\"threads{Leaky-#}\""));
    assert!(agent.get_text("/target/no-such-target").is_none());
    assert!(
        agent.get_text("/target/grower?since=soon").is_none(),
        "a bad range is refused"
    );
    assert!(agent
        .get_text("/api")
        .expect("API index")
        .contains("/api/v1/series"));

    let shots = tempfile::tempdir().unwrap();
    let mut node = Command::new("node");
    node.arg(browser_dir.join("dashboard.mjs"))
        .arg(agent.url())
        .arg(shots.path())
        .env("CHROMIUM", &chromium);
    let (ok, out, err) = run_with_limit(node, Duration::from_secs(180));
    assert!(ok, "browser checks failed:\nstdout: {out}\nstderr: {err}");
    let summary: Value = serde_json::from_str(out.trim().lines().last().unwrap_or("{}"))
        .unwrap_or_else(|e| panic!("browser summary is not JSON ({e}): {out}"));
    assert_eq!(summary["ok"], true, "{out}");
    assert!(summary["leaky_points"].as_u64().unwrap_or(0) >= 2, "{out}");
    for name in ["overview.png", "target.png"] {
        let path = shots.path().join(name);
        assert!(is_png(&path), "{} is not a screenshot", path.display());
        if let Some(dir) = std::env::var_os("LEAKWATCH_SCREENSHOTS") {
            std::fs::copy(&path, Path::new(&dir).join(name)).unwrap();
        }
    }
}

/// Every `http://` or `https://` in `text` is the agent's own address (the data source
/// and the commands that reproduce the view): nothing loads from elsewhere.
fn only_agent_urls(text: &str, agent: &str) {
    for scheme in ["http://", "https://"] {
        for (i, _) in text.match_indices(scheme) {
            assert!(
                text[i..].starts_with(agent),
                "external reference: {}",
                &text[i..(i + 60).min(text.len())]
            );
        }
    }
}

fn leakwatch(args: &[&str]) -> std::process::Output {
    Command::new(workspace_bin("leakwatch"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn report_renders_a_real_leak_as_html_and_markdown() {
    let agent = start_agent(110);
    let _leaky = Leaky::start(&["threads=Base:2", "leak-threads=Leaky:110"]);
    agent.wait_for_leak();
    let url = agent.url();
    let dir = tempfile::tempdir().unwrap();

    let html_path = dir.path().join("report.html");
    let out = leakwatch(&[
        "report",
        "grower",
        "--since",
        "1h",
        "-o",
        html_path.to_str().unwrap(),
        "--url",
        &url,
    ]);
    assert!(out.status.success(), "{out:?}");
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<h1>Leak report: grower</h1>"));
    assert!(html.contains("threads{Leaky-#} grows "), "summary sentence");
    assert!(
        html.contains("At this rate it reaches the limit in ~"),
        "forecast"
    );
    assert!(
        html.contains("<svg class=\"chart\""),
        "charts as inline SVG"
    );
    assert!(html.contains("data-label=\"threads{Leaky-#}\""));
    assert!(html.contains("<h3>Thread groups</h3>") && html.contains("<code>Leaky-#</code>"));
    assert!(html.contains("leakwatch history grower --since "));
    assert!(!html.contains("<script"), "a report runs no script");
    only_agent_urls(&html, &url);

    let md_path = dir.path().join("report.md");
    let out = leakwatch(&[
        "report",
        "grower",
        "--since",
        "1h",
        "--format",
        "md",
        "-o",
        md_path.to_str().unwrap(),
        "--url",
        &url,
    ]);
    assert!(out.status.success(), "{out:?}");
    let md = std::fs::read_to_string(&md_path).unwrap();
    assert!(md.starts_with("# Leak report: grower\n"), "{md}");
    assert!(md.contains("- **leak** threads{Leaky-#} grows "), "{md}");
    assert!(
        md.contains("| Threads by name group | threads{Leaky-#} |"),
        "{md}"
    );
    assert!(
        md.contains("```sh\nleakwatch history grower --since "),
        "{md}"
    );
    only_agent_urls(&md, &url);

    // Without -o: standard output; the format follows --format.
    let out = leakwatch(&["report", "grower", "--format", "md", "--url", &url]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("# Leak report: grower"));

    // The incident the agent opened for the finding: same report, centred on it, with
    // excerpts of its evidence.
    let mut id = String::new();
    assert!(
        eventually(60, || {
            agent.get_json("/api/v1/incidents").is_some_and(|body| {
                body["incidents"].as_array().into_iter().flatten().any(|i| {
                    let hit = i["target"] == "grower" && i["status"] == "complete";
                    if hit {
                        id = i["id"].as_str().unwrap_or_default().to_string();
                    }
                    hit
                })
            })
        }),
        "no incident for grower: {:?}",
        agent.get_json("/api/v1/incidents")
    );
    let out = leakwatch(&["report", &id, "--format", "md", "--url", &url]);
    assert!(out.status.success(), "{out:?}");
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.starts_with("# Leak report: grower\n"), "{md}");
    assert!(md.contains(&format!("Incident `{id}`")), "{md}");
    assert!(
        md.contains("### threads.txt (incident evidence, first lines)"),
        "{md}"
    );
    assert!(md.contains("Leaky-"), "{md}");

    // Neither an incident nor a target: a clear error, exit 2.
    let out = leakwatch(&["report", "no-such-target", "--url", &url]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("neither an incident nor a target"), "{err}");
    let out = leakwatch(&["report", "grower", "--since", "soon", "--url", &url]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since \"soon\" is not a duration"));
}
