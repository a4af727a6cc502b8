//! Delivery channels. Each turns a [`Notification`] into one request (HTTP, SMTP, or a
//! process run) and says whether the receiver took it, and if not whether to retry.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use leakwatch_exec::{Exit, Keep, Program};
use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate as SmtpCertificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use reqwest::blocking::Client;
use serde::Serialize;

use crate::config::{
    read_ca_file, ChannelConfig, ConfigError, EmailConfig, ExecConfig, SmtpSecurity,
};
use crate::lifecycle::{AlertPayload, AlertState, Notification, Reason, Severity};
use crate::payload;
use crate::time::now_ms;

/// What a receiver said when it accepted a notification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryReport {
    pub channel: String,
    pub kind: String,
    /// e.g. `HTTP 200 OK`, `SMTP 250 2.0.0 Ok: queued`, `exit 0`.
    pub detail: String,
    pub http_status: Option<u16>,
    pub elapsed_ms: u64,
}

/// Why a receiver did not accept a notification.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// Worth trying again (network error, timeout, HTTP 5xx/408/429, SMTP 4xx, exec failure).
    pub retryable: bool,
    pub message: String,
    pub http_status: Option<u16>,
}

impl SendError {
    fn retry(message: impl Into<String>) -> SendError {
        SendError {
            retryable: true,
            message: message.into(),
            http_status: None,
        }
    }
    fn permanent(message: impl Into<String>) -> SendError {
        SendError {
            retryable: false,
            message: message.into(),
            http_status: None,
        }
    }
}

enum Inner {
    Webhook {
        client: Client,
        url: String,
        headers: Vec<(String, String)>,
    },
    Slack {
        client: Client,
        url: String,
    },
    Alertmanager {
        client: Client,
        url: String,
        ends_after_ms: u64,
        labels: std::collections::BTreeMap<String, String>,
    },
    Exec(ExecConfig),
    Email {
        transport: Box<SmtpTransport>,
        from: Mailbox,
        to: Vec<Mailbox>,
    },
}

/// A configured channel, ready to send. Build once; HTTP connections are reused.
///
/// HTTP channels use reqwest's blocking client: create, use and drop a `Channel` outside any
/// async runtime (e.g. on the dispatcher's own thread).
pub struct Channel {
    name: String,
    kind: &'static str,
    inner: Inner,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish()
    }
}

/// The HTTP client of one channel. `ca_file` adds trusted roots to the platform's; the
/// server's certificate is always verified.
pub(crate) fn http_client(timeout: Duration, ca_file: Option<&Path>) -> Result<Client, String> {
    let mut builder = Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("leakwatch/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let (_, certs) = read_ca_file(path).map_err(|e| format!("ca_file: {e}"))?;
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| format!("HTTP client: {e}"))
}

fn bad(name: &str, problem: String) -> ConfigError {
    ConfigError {
        problems: vec![format!("channels.{name}: {problem}")],
    }
}

impl Channel {
    /// Builds a channel from its (validated) configuration.
    pub fn from_config(name: &str, config: &ChannelConfig) -> Result<Channel, ConfigError> {
        let inner = match config {
            ChannelConfig::Webhook(c) => Inner::Webhook {
                client: http_client(c.timeout.0, c.ca_file.as_deref()).map_err(|e| bad(name, e))?,
                url: c.url.clone(),
                headers: c
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            },
            ChannelConfig::Slack(c) => Inner::Slack {
                client: http_client(c.timeout.0, c.ca_file.as_deref()).map_err(|e| bad(name, e))?,
                url: c.url.clone(),
            },
            ChannelConfig::Alertmanager(c) => Inner::Alertmanager {
                client: http_client(c.timeout.0, c.ca_file.as_deref()).map_err(|e| bad(name, e))?,
                url: format!("{}/api/v2/alerts", c.url.trim_end_matches('/')),
                ends_after_ms: c.resend.as_ms().saturating_mul(4),
                labels: c.labels.clone(),
            },
            ChannelConfig::Exec(c) => Inner::Exec(c.clone()),
            ChannelConfig::Email(c) => email_transport(name, c)?,
        };
        Ok(Channel {
            name: name.to_string(),
            kind: config.kind(),
            inner,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// One attempt. `Ok` only when the receiver acknowledged the notification.
    pub fn send(&self, n: &Notification) -> Result<DeliveryReport, SendError> {
        let started = Instant::now();
        let sent_ms = now_ms();
        let detail = match &self.inner {
            Inner::Webhook {
                client,
                url,
                headers,
            } => {
                let mut request = client.post(url).json(&payload::webhook_body(n, sent_ms));
                for (k, v) in headers {
                    request = request.header(k, v);
                }
                http_send(request.header("Idempotency-Key", &n.id))?
            }
            Inner::Slack { client, url } => http_send(
                client
                    .post(url)
                    .header("Idempotency-Key", &n.id)
                    .json(&payload::slack_body(n)),
            )?,
            Inner::Alertmanager {
                client,
                url,
                ends_after_ms,
                labels,
            } => {
                let body = serde_json::Value::Array(vec![payload::alertmanager_alert(
                    n,
                    sent_ms,
                    *ends_after_ms,
                    labels,
                )]);
                http_send(
                    client
                        .post(url)
                        .header("Idempotency-Key", &n.id)
                        .json(&body),
                )?
            }
            Inner::Exec(c) => (run_exec(c, n, sent_ms)?, None),
            Inner::Email {
                transport,
                from,
                to,
            } => (send_mail(transport, from, to, n, sent_ms)?, None),
        };
        Ok(DeliveryReport {
            channel: self.name.clone(),
            kind: self.kind.to_string(),
            detail: detail.0,
            http_status: detail.1,
            elapsed_ms: started.elapsed().as_millis() as u64,
        })
    }
}

fn http_send(
    request: reqwest::blocking::RequestBuilder,
) -> Result<(String, Option<u16>), SendError> {
    let response = request.send().map_err(|e| {
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else {
            "request failed"
        };
        // reqwest's Display omits the cause; the chain says e.g. "connection refused".
        let mut message = format!("{what}: {e}");
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        SendError::retry(message)
    })?;
    let status = response.status();
    let code = status.as_u16();
    // Read (a bounded part of) the body so the connection can be reused and errors say why.
    let mut body = String::new();
    let _ = response.take(2048).read_to_string(&mut body);
    let detail = format!("HTTP {code} {}", status.canonical_reason().unwrap_or(""))
        .trim_end()
        .to_string();
    if status.is_success() {
        return Ok((detail, Some(code)));
    }
    let body = body.trim();
    let message = if body.is_empty() {
        detail
    } else {
        format!("{detail}: {}", body.chars().take(300).collect::<String>())
    };
    Err(SendError {
        retryable: status.is_server_error() || code == 408 || code == 429,
        message,
        http_status: Some(code),
    })
}

fn run_exec(c: &ExecConfig, n: &Notification, sent_ms: u64) -> Result<String, SendError> {
    let input = serde_json::to_vec(&payload::webhook_body(n, sent_ms))
        .map_err(|e| SendError::permanent(format!("payload: {e}")))?;
    let argv = std::iter::once(&c.program)
        .chain(&c.args)
        .cloned()
        .collect();
    // Its own process group, killed whole at the timeout: what it starts in the background
    // dies with it. A grandchild that escaped the group and holds the pipes open after the
    // program exits gets a second to finish its output, no more.
    let run = Program::new(argv, c.timeout.0)
        .env("LEAKWATCH_ALERT_ID", &n.id)
        .env("LEAKWATCH_ALERT_REASON", n.reason.as_str())
        .stdin(input)
        .cap(c.max_output_bytes, Keep::Head)
        .grace(Duration::from_secs(1))
        .run();
    let tail = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .trim()
            .chars()
            .rev()
            .take(300)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<String>()
    };
    let out = &run.stdout.bytes;
    match &run.exit {
        Exit::NotStarted(e) => Err(SendError::retry(format!("cannot run {:?}: {e}", c.program))),
        Exit::WaitFailed(e) => Err(SendError::retry(format!(
            "waiting for {:?}: {e}",
            c.program
        ))),
        Exit::TimedOut | Exit::Cancelled => Err(SendError::retry(format!(
            "{:?} killed after {:?} timeout",
            c.program, c.timeout.0
        ))),
        Exit::Code(0) => Ok(format!(
            "exit 0, {} bytes of output{}",
            out.len(),
            if out.is_empty() {
                String::new()
            } else {
                format!(": {}", tail(out))
            }
        )),
        status => Err(SendError::retry(format!(
            "{:?} failed ({status}): {}",
            c.program,
            tail(&run.stderr.bytes)
        ))),
    }
}

fn email_transport(name: &str, c: &EmailConfig) -> Result<Inner, ConfigError> {
    // The server's certificate must be valid for `host`, issued by a webpki (Mozilla) root
    // or by one in `ca_file`.
    let tls_parameters = || -> Result<TlsParameters, ConfigError> {
        let mut params = TlsParameters::builder(c.host.clone());
        if let Some(path) = &c.ca_file {
            let (pem, _) = read_ca_file(path).map_err(|e| bad(name, format!("ca_file: {e}")))?;
            let certs = SmtpCertificate::from_pem(&pem)
                .map_err(|e| bad(name, format!("ca_file: {}: {e}", path.display())))?;
            params = params.add_root_certificate(certs);
        }
        params
            .build_rustls()
            .map_err(|e| bad(name, format!("TLS to {}: {e}", c.host)))
    };
    let builder = SmtpTransport::builder_dangerous(&c.host);
    let builder = match c.security {
        SmtpSecurity::None => builder,
        SmtpSecurity::Starttls => builder.tls(Tls::Required(tls_parameters()?)),
        SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls_parameters()?)),
    };
    let mut builder = builder.port(c.port).timeout(Some(c.timeout.0));
    if let Some(user) = &c.username {
        let password = match (&c.password, &c.password_env) {
            (Some(p), _) => p.clone(),
            (None, Some(var)) => std::env::var(var).map_err(|_| {
                bad(
                    name,
                    format!("password_env: environment variable {var} is not set"),
                )
            })?,
            (None, None) => String::new(),
        };
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    let from = c
        .from
        .parse()
        .map_err(|e| bad(name, format!("from {:?}: {e}", c.from)))?;
    let to =
        c.to.iter()
            .map(|t| t.parse().map_err(|e| bad(name, format!("to {t:?}: {e}"))))
            .collect::<Result<Vec<Mailbox>, _>>()?;
    Ok(Inner::Email {
        transport: Box::new(builder.build()),
        from,
        to,
    })
}

fn send_mail(
    transport: &SmtpTransport,
    from: &Mailbox,
    to: &[Mailbox],
    n: &Notification,
    sent_ms: u64,
) -> Result<String, SendError> {
    let mut message = Message::builder()
        .from(from.clone())
        .subject(payload::email_subject(n))
        .header(ContentType::TEXT_PLAIN);
    for recipient in to {
        message = message.to(recipient.clone());
    }
    let message = message
        .body(payload::email_body(n, sent_ms))
        .map_err(|e| SendError::permanent(format!("building the mail: {e}")))?;
    match transport.send(&message) {
        Ok(response) => Ok(format!(
            "SMTP {} {}",
            response.code(),
            response.message().collect::<Vec<_>>().join(" ")
        )),
        Err(e) => Err(SendError {
            // Permanent means a 5xx reply; everything else (4xx, network, TLS) may pass later.
            retryable: !e.is_permanent(),
            message: format!("SMTP: {e}"),
            http_status: None,
        }),
    }
}

/// Sends a clearly marked test alert (`[TEST]`, `test: true`, label `test="true"`) through
/// `channel` right now, bypassing the outbox, and reports what the receiver answered.
pub fn send_test(channel: &Channel) -> Result<DeliveryReport, SendError> {
    let now = now_ms();
    let alert = AlertPayload {
        fingerprint: crate::lifecycle::fingerprint(&["leakwatch", "test", channel.name()]),
        alertname: "LeakwatchTest".into(),
        kind: "test".into(),
        severity: Severity::Warning,
        state: AlertState::Firing,
        target: "leakwatch".into(),
        resource: "test".into(),
        attribution: channel.name().to_string(),
        starts_ms: now,
        ends_ms: None,
        summary: format!(
            "test alert from leakwatch to channel {:?} ({}); no action needed",
            channel.name(),
            channel.kind()
        ),
        finding: None,
        incident: None,
    };
    channel.send(&Notification::new(channel.name(), Reason::Test, now, alert))
}
