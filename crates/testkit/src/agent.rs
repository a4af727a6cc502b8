//! A real `leakwatch agent` for tests: its own data dir and port, sampling every second,
//! stopped with SIGTERM on drop. Its HTTP client is a minimal HTTP/1.1 GET over std, so
//! tests do not share the CLI's client code.

use crate::{eventually, free_port, workspace_bin};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Agent {
    pub child: Child,
    pub port: u16,
    /// The agent's data dir (history, outbox, incidents).
    pub data: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Agent {
    /// Starts an agent with `[agent] interval = "1s"`, a free loopback port, and `config`
    /// appended (more sections, e.g. `[detect]`, `[[target]]`, `[alerts]`). Waits until it
    /// answers `/healthz`.
    pub fn start(config: &str) -> Agent {
        Agent::start_seeded(config, &[])
    }

    /// [`Agent::start`] with `files` (name, bytes) written into its data dir first, e.g. a
    /// corrupt `alerts.db`.
    pub fn start_seeded(config: &str, files: &[(&str, &[u8])]) -> Agent {
        Agent::start_with(config, files, &[])
    }

    /// [`Agent::start_seeded`] with environment variables set for the agent, e.g. a
    /// `LEAKWATCH_FAILPOINT`.
    pub fn start_with(config: &str, files: &[(&str, &[u8])], env: &[(&str, &str)]) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join("data").join(name), bytes).unwrap();
        }
        let port = free_port();
        let config_path = dir.path().join("leakwatch.toml");
        std::fs::write(
            &config_path,
            format!("[agent]\ninterval = \"1s\"\nlisten = \"127.0.0.1:{port}\"\n{config}"),
        )
        .unwrap();
        let child = Command::new(workspace_bin("leakwatch"))
            .arg("agent")
            .arg("--config")
            .arg(&config_path)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let agent = Agent {
            child,
            port,
            data: dir.path().join("data"),
            _dir: Some(dir),
        };
        assert!(
            eventually(20, || agent.get_text("/healthz").is_some()),
            "agent did not come up"
        );
        agent
    }

    /// Wraps a process serving the agent's API that the test started itself (e.g.
    /// `leakwatch run --listen`).
    pub fn wrap(child: Child, port: u16, data: PathBuf) -> Agent {
        Agent {
            child,
            port,
            data,
            _dir: None,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The body of a 200 answer to `GET path`; `None` for anything else.
    pub fn get_text(&self, path: &str) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        // axum answers small bodies with Content-Length; chunked only when streaming.
        head.starts_with("HTTP/1.1 200").then(|| body.to_string())
    }

    pub fn get_json(&self, path: &str) -> Option<Value> {
        serde_json::from_str(&self.get_text(path)?).ok()
    }

    /// The current findings of `target` (`/api/v1/findings`); empty when none or no answer.
    pub fn findings_of(&self, target: &str) -> Vec<Value> {
        self.get_json("/api/v1/findings")
            .and_then(|body| body["findings"].as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f["target"] == target)
            .collect()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // SAFETY: sending SIGTERM to our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// A finding's consequences as `resource{attribution}` labels, in the order given.
pub fn consequence_labels(finding: &Value) -> Vec<String> {
    finding["consequences"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}{{{}}}",
                c["resource"].as_str().unwrap_or(""),
                c["attribution"].as_str().unwrap_or("")
            )
        })
        .collect()
}
