//! TLS for real: a throwaway CA and a server certificate for `localhost` and 127.0.0.1 made
//! with the `openssl` command line at test time, an HTTPS receiver (Python's http.server in
//! an ssl.SSLContext) and SMTP servers (aiosmtpd) with STARTTLS and implicit TLS. Each
//! channel delivers when `ca_file` names the CA, and fails with a certificate error (a
//! failed attempt, not a panic) without it, with another CA, or for a name the certificate
//! does not cover. openssl, python3 and aiosmtpd are installed by scripts/test.sh; a missing
//! one fails the test with the install command.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use leakwatch_alert::*;
use serde_json::Value;

/// Runs a required tool; panics with its output, or with how to install it.
fn run(program: &str, args: &[&str], dir: &Path, install: &str) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): {install}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const OPENSSL: &str = "apt-get install -y openssl (scripts/test.sh does)";
const PYTHON: &str = "apt-get install -y python3 (scripts/test.sh does)";
const AIOSMTPD: &str = "python3 -m pip install aiosmtpd (scripts/test.sh does)";

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_cert]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[elsewhere]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:elsewhere.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// Throwaway certificates (ECDSA P-256, valid 2 days) in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// Two CAs (`ca.pem`, and an unrelated `other-ca.pem`); `ca` signs `server.pem` (for
    /// localhost and 127.0.0.1) and `elsewhere.pem` (for elsewhere.example only).
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("openssl.cnf"), OPENSSL_CNF).unwrap();
        let openssl = |command: String| {
            let args: Vec<&str> = command.split_whitespace().collect();
            run("openssl", &args, d, OPENSSL);
        };
        let key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        for ca in ["ca", "other-ca"] {
            openssl(format!(
                "req -x509 -config openssl.cnf -extensions ca_cert {key} -keyout {ca}.key \
                 -out {ca}.pem -days 2 -subj /CN=leakwatch-test-{ca}"
            ));
        }
        for name in ["server", "elsewhere"] {
            openssl(format!(
                "req -new -config openssl.cnf {key} -keyout {name}.key -out {name}.csr \
                 -subj /CN=leakwatch-test-{name}"
            ));
            openssl(format!(
                "x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
                 -extfile openssl.cnf -extensions {name} -out {name}.pem"
            ));
        }
        Pki { dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }
}

fn python_ok(module: &str, install: &str) {
    let dir = std::env::temp_dir();
    run("python3", &["--version"], &dir, PYTHON);
    let check = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .unwrap();
    assert!(check.success(), "python3 cannot import {module}: {install}");
}

/// Starts `script` with `args`; it prints one line (`READY <port>`) once it listens.
fn start_python(script: &str, args: &[&Path], dir: &Path, what: &str) -> (Killed, u16) {
    let file = dir.join(format!("{what}.py"));
    std::fs::write(&file, script).unwrap();
    let stderr = std::fs::File::create(dir.join(format!("{what}.stderr"))).unwrap();
    let mut child = Killed(
        Command::new("python3")
            .arg(&file)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 ({e}): {PYTHON}")),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .strip_prefix("READY ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| {
            let _ = child.0.wait();
            panic!(
                "{what} did not start: {line:?}\n{}",
                std::fs::read_to_string(dir.join(format!("{what}.stderr"))).unwrap_or_default()
            )
        });
    (child, port)
}

/// An HTTPS server on 127.0.0.1: answers every POST with 200 and appends it, as a JSON
/// line, to `requests.jsonl`; a failed handshake is appended to `handshakes.txt`.
const HTTPS_SERVER: &str = r#"
import http.server, json, os, ssl, sys, threading
cert, key, out = sys.argv[1:4]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
lock = threading.Lock()

def record(name, line):
    with lock, open(os.path.join(out, name), "a") as f:
        f.write(line + "\n")

class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        record("requests.jsonl", json.dumps(
            {"path": self.path, "body": body.decode(),
             "headers": {k.lower(): v for k, v in self.headers.items()}}))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

class Server(http.server.ThreadingHTTPServer):
    # The handshake runs in the connection's own thread, not in accept().
    def finish_request(self, request, client_address):
        try:
            tls = context.wrap_socket(request, server_side=True)
        except OSError as e:
            record("handshakes.txt", f"handshake failed: {e}")
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            tls.close()

server = Server(("127.0.0.1", 0), Handler)
print("READY", server.server_address[1], flush=True)
server.serve_forever()
"#;

struct HttpsServer {
    _child: Killed,
    port: u16,
    out: tempfile::TempDir,
}

impl HttpsServer {
    fn start(cert: &Path, key: &Path) -> HttpsServer {
        python_ok("ssl, http.server", PYTHON);
        let out = tempfile::tempdir().unwrap();
        let (child, port) = start_python(
            HTTPS_SERVER,
            &[cert, key, out.path()],
            out.path(),
            "https-server",
        );
        HttpsServer {
            _child: child,
            port,
            out,
        }
    }

    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(self.out.path().join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The server's record of failed handshakes, once it holds `count` of them (the
    /// server writes it just after the client hung up).
    fn failed_handshakes(&self, count: usize) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let text =
                std::fs::read_to_string(self.out.path().join("handshakes.txt")).unwrap_or_default();
            if text.lines().count() >= count || std::time::Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

fn webhook(url: String, ca_file: Option<PathBuf>) -> ChannelConfig {
    ChannelConfig::Webhook(WebhookConfig {
        url,
        headers: BTreeMap::new(),
        timeout: Dur::secs(5),
        ca_file,
    })
}

/// One attempt through a fresh outbox: the stats and the row's detail.
fn deliver_once(channel: ChannelConfig, target: &str) -> (DispatchStats, DeliveryRow) {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(vec![("under_test", channel)]);
    let mut dispatcher = Dispatcher::new(
        Outbox::open(&dir.path().join("alerts.db")).unwrap(),
        &config,
    )
    .unwrap();
    let t0 = now_ms();
    dispatcher
        .enqueue(&firing_notifications(&config, target, t0), t0)
        .unwrap();
    let stats = dispatcher.run_once(now_ms()).unwrap();
    let rows = dispatcher.outbox().deliveries(None).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    (stats, rows.into_iter().next().unwrap())
}

/// A certificate failure: a retried attempt (the receiver's certificate may be fixed),
/// whose detail names the TLS problem.
fn assert_certificate_error(stats: DispatchStats, row: &DeliveryRow, problem: &str) {
    assert_eq!(
        (stats.delivered, stats.retried),
        (0, 1),
        "{stats:?} {row:?}"
    );
    assert_eq!(row.status, DeliveryStatus::Pending, "{row:?}");
    let detail = row.detail.as_deref().unwrap();
    assert!(
        detail.contains("certificate") && detail.contains(problem),
        "want a certificate error ({problem}), got: {detail}"
    );
}

#[test]
fn https_webhook_slack_and_alertmanager_trust_the_ca_file_and_only_it() {
    let pki = Pki::new();
    let server = HttpsServer::start(&pki.path("server.pem"), &pki.path("server.key"));
    let base = format!("https://127.0.0.1:{}", server.port);
    let ca = Some(pki.path("ca.pem"));

    // With the CA: delivered over TLS, body intact.
    let (stats, row) = deliver_once(webhook(format!("{base}/hook"), ca.clone()), "tls-ok");
    assert_eq!(stats.delivered, 1, "{stats:?} {row:?}");
    assert_eq!(row.detail.as_deref(), Some("HTTP 200 OK"));
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0]["path"], "/hook");
    let body: Value = serde_json::from_str(requests[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["id"], requests[0]["headers"]["idempotency-key"]);
    assert_eq!(body["alert"]["target"], "tls-ok");

    // Without it: the platform roots do not know our CA. A failed attempt, nothing posted.
    let (stats, row) = deliver_once(webhook(format!("{base}/hook"), None), "tls-no-ca");
    assert_certificate_error(stats, &row, "UnknownIssuer");
    // An unrelated CA is no better.
    let other = Some(pki.path("other-ca.pem"));
    let (stats, row) = deliver_once(webhook(format!("{base}/hook"), other), "tls-other-ca");
    assert_certificate_error(stats, &row, "UnknownIssuer");
    // send_test says the same, as an error value.
    let channel = Channel::from_config("pager", &webhook(format!("{base}/hook"), None)).unwrap();
    let error = send_test(&channel).unwrap_err();
    assert!(error.message.contains("UnknownIssuer"), "{error:?}");
    assert_eq!(server.requests().len(), 1, "no request got through");
    let handshakes = server.failed_handshakes(3);
    assert_eq!(handshakes.lines().count(), 3, "{handshakes}");
    assert!(handshakes.contains("unknown ca"), "{handshakes}");

    // Slack (by name: the DNS SAN) and Alertmanager share the client; same trust.
    let slack = |ca_file| {
        ChannelConfig::Slack(SlackConfig {
            url: format!("https://localhost:{}/services/T/B/X", server.port),
            timeout: Dur::secs(5),
            ca_file,
        })
    };
    let am = |ca_file| {
        ChannelConfig::Alertmanager(AlertmanagerConfig {
            url: base.clone(),
            resend: Dur::secs(60),
            labels: BTreeMap::new(),
            timeout: Dur::secs(5),
            ca_file,
        })
    };
    for (channel, path) in [
        (slack(ca.clone()), "/services/T/B/X"),
        (am(ca.clone()), "/api/v2/alerts"),
    ] {
        let (stats, row) = deliver_once(channel, "tls-kinds");
        assert_eq!(stats.delivered, 1, "{path}: {stats:?} {row:?}");
        assert_eq!(server.requests().last().unwrap()["path"], path);
    }
    for channel in [slack(None), am(None)] {
        let (stats, row) = deliver_once(channel, "tls-kinds-no-ca");
        assert_certificate_error(stats, &row, "UnknownIssuer");
    }
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn https_checks_the_name_in_the_certificate() {
    let pki = Pki::new();
    // Issued by the trusted CA, but for elsewhere.example only.
    let server = HttpsServer::start(&pki.path("elsewhere.pem"), &pki.path("elsewhere.key"));
    let url = format!("https://127.0.0.1:{}/hook", server.port);
    let (stats, row) = deliver_once(webhook(url, Some(pki.path("ca.pem"))), "tls-name");
    assert_certificate_error(stats, &row, "not valid for name \"127.0.0.1\"");
    assert!(server.requests().is_empty());
}

/// aiosmtpd on 127.0.0.1:PORT writing to a maildir. `starttls`: plain connection, STARTTLS
/// required before MAIL, AUTH (leakwatch / s3cret) required, and offered only after
/// STARTTLS. `tls`: TLS from the first byte, no AUTH.
const SMTP_SERVER: &str = r#"
import ssl, sys, threading
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult
mode, port, cert, key, maildir = sys.argv[1:6]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"leakwatch" and auth_data.password == b"s3cret"
    # handled=False: aiosmtpd answers a failure with 535 itself.
    return AuthResult(success=ok, handled=False)

if mode == "starttls":
    options = dict(tls_context=context, require_starttls=True,
                   authenticator=authenticator, auth_required=True, auth_require_tls=True)
else:
    options = dict(ssl_context=context)
controller = Controller(Mailbox(maildir), hostname="127.0.0.1", port=int(port), **options)
controller.start()
print("READY", port, flush=True)
threading.Event().wait()
"#;

fn start_smtp(mode: &str, pki: &Pki, dir: &Path) -> (Killed, u16) {
    python_ok("aiosmtpd", AIOSMTPD);
    let port = free_port().to_string();
    let (child, port) = start_python(
        SMTP_SERVER,
        &[
            Path::new(mode),
            Path::new(&port),
            &pki.path("server.pem"),
            &pki.path("server.key"),
            &dir.join("mail"),
        ],
        dir,
        &format!("smtp-{mode}"),
    );
    (child, port)
}

fn email(
    host: &str,
    port: u16,
    security: SmtpSecurity,
    login: Option<(&str, &str)>,
    ca_file: Option<PathBuf>,
) -> ChannelConfig {
    ChannelConfig::Email(EmailConfig {
        host: host.into(),
        port,
        security,
        username: login.map(|(user, _)| user.to_string()),
        password: login.map(|(_, password)| password.to_string()),
        password_env: None,
        from: "leakwatch <leakwatch@example.com>".into(),
        to: vec!["oncall@example.com".into()],
        timeout: Dur::secs(5),
        ca_file,
    })
}

fn subjects(maildir: &Path) -> Vec<String> {
    mails(maildir)
        .iter()
        .filter_map(|m| m.lines().find_map(|l| l.strip_prefix("Subject: ")))
        .map(str::to_string)
        .collect()
}

#[test]
fn smtp_starttls_with_auth_trusts_the_ca_file_and_only_it() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (_smtp, port) = start_smtp("starttls", &pki, dir.path());
    let maildir = dir.path().join("mail");
    let ca = Some(pki.path("ca.pem"));
    let login = Some(("leakwatch", "s3cret"));

    let channel = email("127.0.0.1", port, SmtpSecurity::Starttls, login, ca.clone());
    let (stats, row) = deliver_once(channel, "starttls-svc");
    assert_eq!(stats.delivered, 1, "{stats:?} {row:?}");
    assert!(
        row.detail.as_deref().unwrap().starts_with("SMTP 250"),
        "{row:?}"
    );
    let got = subjects(&maildir);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("[leakwatch] [FIRING critical] starttls-svc threads Analytics-#"),
        "{got:?}"
    );

    // Without the CA the upgrade fails: nothing (no password either) goes out.
    let channel = email("127.0.0.1", port, SmtpSecurity::Starttls, login, None);
    let (stats, row) = deliver_once(channel, "starttls-no-ca");
    assert_certificate_error(stats, &row, "UnknownIssuer");
    // Over TLS, a wrong password is the server's permanent 535: failed, not retried.
    let channel = email(
        "127.0.0.1",
        port,
        SmtpSecurity::Starttls,
        Some(("leakwatch", "nope")),
        ca,
    );
    let (stats, row) = deliver_once(channel, "starttls-bad-password");
    assert_eq!(stats.failed, 1, "{stats:?} {row:?}");
    assert!(row.detail.as_deref().unwrap().contains("535"), "{row:?}");
    assert_eq!(subjects(&maildir).len(), 1, "only the first mail arrived");
}

#[test]
fn smtp_implicit_tls_trusts_the_ca_file_and_only_it() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (_smtp, port) = start_smtp("tls", &pki, dir.path());
    let maildir = dir.path().join("mail");

    // By name (the DNS SAN) this time.
    let channel = email(
        "localhost",
        port,
        SmtpSecurity::Tls,
        None,
        Some(pki.path("ca.pem")),
    );
    let (stats, row) = deliver_once(channel, "tls-svc");
    assert_eq!(stats.delivered, 1, "{stats:?} {row:?}");
    let channel = Channel::from_config(
        "mail",
        &email(
            "localhost",
            port,
            SmtpSecurity::Tls,
            None,
            Some(pki.path("ca.pem")),
        ),
    )
    .unwrap();
    let report = send_test(&channel).unwrap();
    assert!(report.detail.starts_with("SMTP 250"), "{report:?}");
    let mut got = subjects(&maildir);
    got.sort();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with("[leakwatch] [FIRING critical] tls-svc "),
        "{got:?}"
    );
    assert!(got[1].starts_with("[leakwatch] [TEST] "), "{got:?}");

    for ca_file in [None, Some(pki.path("other-ca.pem"))] {
        let channel = email("localhost", port, SmtpSecurity::Tls, None, ca_file);
        let (stats, row) = deliver_once(channel, "tls-no-ca");
        assert_certificate_error(stats, &row, "UnknownIssuer");
    }
    assert_eq!(subjects(&maildir).len(), 2);
}

#[test]
fn ca_file_is_validated_with_the_channel_and_path() {
    let pki = Pki::new();
    let good = pki.path("ca.pem");
    let missing = pki.path("missing.pem");
    let key_only = pki.path("ca.key");
    let text = format!(
        r#"
        [routes]
        warning = ["hook"]
        critical = ["hook", "chat", "am", "mail"]
        [channels.hook]
        type = "webhook"
        url = "https://hooks.internal/leakwatch"
        ca_file = "{}"
        [channels.chat]
        type = "slack"
        url = "https://chat.internal/hooks/x"
        ca_file = "{}"
        [channels.am]
        type = "alertmanager"
        url = "https://am.internal:9093"
        ca_file = "{}"
        [channels.mail]
        type = "email"
        host = "smtp.internal"
        security = "none"
        from = "leakwatch@example.com"
        to = ["oncall@example.com"]
        ca_file = "{}"
        "#,
        good.display(),
        missing.display(),
        key_only.display(),
        good.display(),
    );
    let config: AlertConfig = toml::from_str(&text).unwrap();
    let problems = config.validate().unwrap_err().problems;
    let all = problems.join("\n");
    assert_eq!(problems.len(), 3, "{all}");
    assert!(
        problems.contains(&format!(
            "channels.chat.ca_file: cannot read {}: No such file or directory (os error 2)",
            missing.display()
        )),
        "{all}"
    );
    assert!(problems.contains(&format!(
        "channels.am.ca_file: {} holds no PEM certificate (want -----BEGIN CERTIFICATE----- blocks)",
        key_only.display()
    )), "{all}");
    assert!(problems.contains(
        &"channels.mail.ca_file: has no effect with security = \"none\"; use \"starttls\" or \"tls\"".to_string()
    ), "{all}");

    // Building a channel checks too: an error value, not a panic.
    let error = Channel::from_config("chat", &config.channels["chat"]).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("channels.chat: ca_file: cannot read"),
        "{error}"
    );
    let ChannelConfig::Email(mail) = &config.channels["mail"] else {
        unreachable!()
    };
    let starttls = ChannelConfig::Email(EmailConfig {
        security: SmtpSecurity::Starttls,
        ca_file: Some(key_only.clone()),
        ..mail.clone()
    });
    let error = Channel::from_config("mail", &starttls).unwrap_err();
    assert!(
        error.to_string().contains("holds no PEM certificate"),
        "{error}"
    );

    // A bundle with several certificates is fine.
    let bundle = pki.path("bundle.pem");
    let both = std::fs::read_to_string(pki.path("other-ca.pem")).unwrap()
        + &std::fs::read_to_string(&good).unwrap();
    std::fs::write(&bundle, both).unwrap();
    let mut fixed = config.clone();
    for (name, channel) in fixed.channels.iter_mut() {
        match channel {
            ChannelConfig::Webhook(c) => c.ca_file = Some(bundle.clone()),
            ChannelConfig::Slack(c) => c.ca_file = Some(bundle.clone()),
            ChannelConfig::Alertmanager(c) => c.ca_file = Some(bundle.clone()),
            ChannelConfig::Email(c) => c.security = SmtpSecurity::Tls,
            ChannelConfig::Exec(_) => unreachable!("{name}"),
        }
    }
    fixed.validate().unwrap();
    for (name, channel) in &fixed.channels {
        Channel::from_config(name, channel).unwrap();
    }
}
