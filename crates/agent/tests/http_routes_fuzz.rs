//! Random requests against every route of the agent's router (issue 16: no request can take
//! the agent down). Each route of `http::ROUTES` gets random paths under it (its parameters
//! and trailing segments: long, empty, `..`, non-UTF-8 percent-escapes), random query
//! strings (its own keys and others, repeated; numbers at and beyond i64, negative, huge;
//! durations out of range; very long values) and, for POST and DELETE, random bodies (the
//! right JSON shape with wild values, the wrong shapes, deep nesting, megabyte strings,
//! bytes that are not JSON). The requests go through the in-process router (tower
//! `oneshot`) of a real agent started in a temporary data dir (stages sampling the host,
//! alerting configured so the silence routes are live).
//!
//! Every answer must be: no panic; no 5xx but the documented "busy" 503s (the alert inbox
//! full, a request over `http_request_timeout`; `/healthz`'s 503s would mean the agent
//! under test is unhealthy, a failure too); a body under 16 MiB; a JSON
//! `{"error"}` body for any 4xx and 5xx outside the HTML pages; and a 4xx for input that is
//! invalid by construction (out-of-range timestamps, a missing required key, a body that is
//! not a silence).
//!
//! Cases per route: 512 (a few seconds); `LEAKWATCH_FUZZ_CASES=100000` runs more (a soak),
//! `LEAKWATCH_FUZZ_SEED=N` another fixed seed.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use leakwatch_agent::config::Config;
use leakwatch_agent::daemon::{self, Mode};
use leakwatch_agent::http::{router, Settings, ROUTES};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunConfig, RngAlgorithm, TestRng, TestRunner};
use tower::ServiceExt;

/// The largest answer accepted.
const MAX_BODY: usize = 16 << 20;

/// An incident seeded in the data dir, so the incident routes also answer with content.
const INCIDENT: &str = "20261206-000000-svc-threads-ab12";
/// One of a live target (seeded once one is known), so captures can be asked for.
const LIVE_INCIDENT: &str = "20261206-000000-live-memory-cd34";

fn seed_incident(data: &std::path::Path) {
    seed_incident_of(data, INCIDENT, "svc");
}

fn seed_incident_of(data: &std::path::Path, id: &str, target: &str) {
    let dir = leakwatch_agent::evidence::incidents_dir(data).join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("threads.txt"), "worker-1\nworker-2\n").unwrap();
    let record = serde_json::json!({
        "version": 1, "id": id, "created_ms": 1_796_000_000_000i64,
        "target": target, "resource": "threads", "attribution": "", "kind": "leak",
        "summary": "threads +100 in 1h",
        "finding": {"kind": "leak", "target": target, "resource": "threads", "attribution": ""},
        "files": [{"name": "threads.txt", "bytes": 18, "note": "ok"}],
    });
    std::fs::write(dir.join("incident.json"), record.to_string()).unwrap();
    let root = leakwatch_agent::evidence::incidents_dir(data);
    leakwatch_agent::standalone::incidents::load(&root, id).unwrap();
}

/// A random path parameter or extra segment, already percent-encoded where needed.
fn segment(known: &[String]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(known.to_vec()).prop_map(|s| percent(&s)),
        4 => "[a-zA-Z0-9._-]{1,24}",
        1 => Just(String::from("..")),
        1 => Just(String::from(".")),
        1 => Just(String::from("%2e%2e%2fetc%2fpasswd")),
        1 => prop::collection::vec(any::<u8>(), 1..16).prop_map(|bytes| {
            bytes.iter().map(|b| format!("%{b:02X}")).collect::<String>()
        }),
        1 => (1usize..20_000).prop_map(|n| "a".repeat(n)),
        1 => "\\PC{1,12}".prop_map(|s| percent(&s)),
    ]
}

/// Percent-encodes everything but unreserved characters.
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A random query value, percent-encoded.
fn value(known: &[String]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(known.to_vec()).prop_map(|s| percent(&s)),
        3 => any::<i64>().prop_map(|n| n.to_string()),
        1 => Just(i64::MIN.to_string()),
        1 => Just(i64::MAX.to_string()),
        1 => Just((1i64 << 53).to_string()),
        1 => Just(((1i64 << 53) + 1).to_string()),
        1 => Just("-1".to_string()),
        1 => Just("99999999999999999999999999".to_string()),
        1 => Just("1e308".to_string()),
        1 => Just("NaN".to_string()),
        2 => prop::sample::select(vec![
            "1h", "6h", "35d", "36d", "10000y", "100000000000y", "0s", "-1s", "1ms", "soon",
            "18446744073709551615s",
        ])
        .prop_map(String::from),
        2 => "[a-z0-9._{}=-]{0,24}",
        1 => Just(String::new()),
        1 => prop::collection::vec(any::<u8>(), 1..24)
            .prop_map(|bytes| bytes.iter().map(|b| format!("%{b:02X}")).collect()),
        1 => (1usize..100_000).prop_map(|n| "x".repeat(n)),
        1 => "\\PC{0,16}".prop_map(|s| percent(&s)),
    ]
}

/// A random query string: known keys and others, repeated, sometimes malformed.
fn query(known: &[String]) -> impl Strategy<Value = String> {
    let key = prop_oneof![
        4 => prop::sample::select(vec![
            "target", "resource", "attribution", "since", "from_ms", "to_ms", "limit",
        ])
        .prop_map(String::from),
        1 => "[a-z_%0-9]{0,12}",
    ];
    prop_oneof![
        1 => Just(String::new()),
        6 => prop::collection::vec((key, value(known)), 0..8).prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        }),
        1 => "[=&%a-z0-9]{0,40}",
    ]
}

/// Random JSON, nested up to a few levels.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        "\\PC{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z]{0,8}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A silence of the right shape with wild values.
fn silence() -> impl Strategy<Value = serde_json::Value> {
    let text = prop_oneof![
        3 => "[a-z0-9._-]{0,16}",
        1 => (0usize..4096).prop_map(|n| "r".repeat(n)),
        1 => (4096usize..(2 << 20)).prop_map(|n| "x".repeat(n)),
        1 => "\\PC{0,16}",
    ];
    let duration = prop_oneof![
        3 => prop::sample::select(vec![
            "2h", "1s", "0s", "365d", "366d", "10000y", "-1h", "", "forever",
            "18446744073709551615s",
        ])
        .prop_map(String::from),
        1 => "[0-9a-z ]{0,12}",
    ];
    let name = prop_oneof![8 => "[a-z0-9._-]{0,16}", 1 => text.clone()];
    (name.clone(), prop::option::of(name), duration, text, json()).prop_map(
        |(target, resource, duration, reason, extra)| {
            let mut body = serde_json::json!({"target": target, "for": duration, "reason": reason});
            if let Some(resource) = resource {
                body["resource"] = resource.into();
            }
            // Sometimes a field of the wrong type.
            if extra.is_number() {
                body["for"] = extra;
            }
            body
        },
    )
}

/// A random request body: a silence, a capture request, other JSON, deep nesting, not JSON
/// at all.
fn body(route: &str) -> impl Strategy<Value = Vec<u8>> {
    // The route's own request shape most often.
    let (silences, captures) = if route.ends_with("/captures") {
        (1, 8)
    } else {
        (4, 1)
    };
    prop_oneof![
        silences => silence().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        captures => prop::sample::select(vec!["heap", "heap-dump", "threads", ""])
            .prop_map(|what| serde_json::to_vec(&serde_json::json!({ "what": what })).unwrap()),
        2 => json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => (1usize..100_000).prop_map(|depth| {
            let mut text = "[".repeat(depth);
            text.push_str(&"]".repeat(depth));
            text.into_bytes()
        }),
        1 => (1usize..50_000).prop_map(|depth| "{\"a\":".repeat(depth).into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => Just(Vec::new()),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    uri: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

/// Requests under `route` with one of its `methods`; `known` are names that exist (a
/// target, the seeded incident and its file), so some requests reach content.
fn cases(
    route: &'static str,
    methods: &'static [&'static str],
    known: &[String],
) -> impl Strategy<Value = Case> {
    let holes = route.matches('{').count();
    // Bodies are costly to generate: only for the routes that read one.
    let body = if methods.iter().any(|m| *m != "GET") {
        body(route).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    (
        prop::sample::select(methods.to_vec()),
        prop::collection::vec(segment(known), holes..=holes),
        prop::option::weighted(0.1, segment(known)),
        query(known),
        body,
        prop::sample::select(vec![
            Some("application/json"),
            Some("application/json"),
            Some("text/plain"),
            None,
        ]),
    )
        .prop_map(move |(method, params, extra, query, body, content_type)| {
            let mut params = params.into_iter();
            let mut path = String::new();
            for part in route.split('/').skip(1) {
                path.push('/');
                if part.starts_with('{') {
                    path.push_str(&params.next().unwrap_or_default());
                } else {
                    path.push_str(part);
                }
            }
            if let Some(extra) = extra {
                path.push('/');
                path.push_str(&extra);
            }
            let uri = if query.is_empty() {
                path
            } else {
                format!("{path}?{query}")
            };
            let with_body = method != "GET";
            Case {
                method,
                uri,
                content_type: content_type.filter(|_| with_body),
                body: if with_body { body } else { Vec::new() },
            }
        })
}

/// Whether the query gives `key` a value that is an integer beyond ±2^53 (an out-of-range
/// timestamp) or not an integer at all: the range routes must refuse it.
fn bad_timestamp(query: &str, key: &str) -> bool {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .any(|(k, v)| {
            k == key
                && v.parse::<i64>()
                    .map_or(true, |n| n.unsigned_abs() > 1u64 << 53)
        })
}

fn has_key(query: &str, key: &str) -> bool {
    query
        .split('&')
        .any(|p| p.split_once('=').map_or(p, |(k, _)| k) == key)
}

/// Checks one answer; `Err` names what is wrong.
fn check(route: &str, case: &Case, status: StatusCode, body: &[u8]) -> Result<(), String> {
    if body.len() > MAX_BODY {
        return Err(format!("{} bytes answered", body.len()));
    }
    // The documented 503s: the alert stage's inbox is full (a silence change, try again),
    // a request over `http_request_timeout`. Any other 5xx is a bug.
    let text = String::from_utf8_lossy(body);
    let busy = status == StatusCode::SERVICE_UNAVAILABLE
        && (text.contains("too many alert changes waiting")
            || text.contains("evidence stage has too much work waiting")
            || text.contains("agent.http_request_timeout"));
    if status.is_server_error() && !busy {
        return Err(format!("{status}: {text}"));
    }
    let html = route == "/" || route == "/target/{name}";
    if (status.is_client_error() || status.is_server_error()) && !html {
        let error: Result<serde_json::Value, _> = serde_json::from_slice(body);
        if !error.as_ref().is_ok_and(|e| e["error"].is_string()) {
            return Err(format!(
                "{status} without a JSON error: {:?}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ));
        }
    }
    let query = case.uri.split_once('?').map_or("", |(_, q)| q);
    let invalid = match (route, case.method) {
        ("/api/v1/series", _) | ("/target/{name}", _) => {
            bad_timestamp(query, "from_ms") || bad_timestamp(query, "to_ms")
        }
        _ => false,
    } || match (route, case.method) {
        ("/api/v1/series", _) | ("/api/v1/restarts", _) => !has_key(query, "target"),
        (_, "DELETE") => !has_key(query, "target"),
        ("/api/v1/silences", "POST") => serde_json::from_slice::<serde_json::Value>(&case.body)
            .map_or(true, |v| !v["target"].is_string() || !v["for"].is_string()),
        (_, "POST") => serde_json::from_slice::<serde_json::Value>(&case.body)
            .map_or(true, |v| v["what"] != "heap" && v["what"] != "heap-dump"),
        _ => false,
    };
    // A path with a trailing segment the route does not have is not routed (404).
    if invalid && !status.is_client_error() {
        return Err(format!("{status} for invalid input"));
    }
    Ok(())
}

#[test]
fn every_route_answers_random_requests_without_panic_or_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[agent]\ninterval = \"1s\"\n\
                [alerts.routes]\nwarning = [\"hook\"]\ncritical = [\"hook\"]\n\
                [alerts.channels.hook]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\n";
    let config = Config::parse(text, &dir.path().join("leakwatch.toml")).unwrap();
    seed_incident(&dir.path().join("data"));
    let (shared, threads) = daemon::start(&config, &dir.path().join("data"), Mode::Host).unwrap();
    let app = router(shared.clone(), Settings::of(&config.agent));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Wait for the first target in the store: its name is one the cases use.
    let mut known: Vec<String> = vec![
        INCIDENT.into(),
        "threads.txt".into(),
        "incident.json".into(),
    ];
    let started = std::time::Instant::now();
    let target = loop {
        let request = Request::get("/api/v1/targets")
            .header("host", "127.0.0.1")
            .body(Body::empty())
            .unwrap();
        let response = runtime.block_on(app.clone().oneshot(request)).unwrap();
        let body = runtime
            .block_on(response.into_body().collect())
            .unwrap()
            .to_bytes();
        let targets: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if let Some(name) = targets["targets"][0]["name"].as_str() {
            break name.to_string();
        }
        assert!(
            started.elapsed().as_secs() < 30,
            "no target stored: {targets}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    seed_incident_of(&dir.path().join("data"), LIVE_INCIDENT, &target);
    known.push(LIVE_INCIDENT.into());
    known.push(target);
    let cases_per_route = std::env::var("LEAKWATCH_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(512);
    let seed: u64 = std::env::var("LEAKWATCH_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(16);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    for (route, methods) in ROUTES {
        let run_config = RunConfig {
            cases: cases_per_route,
            failure_persistence: None,
            max_shrink_iters: 256,
            ..RunConfig::default()
        };
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
        let mut runner = TestRunner::new_with_rng(run_config, rng);
        let started = std::time::Instant::now();
        let answered = std::cell::Cell::new(0usize);
        let result = runner.run(&cases(route, methods, &known), |case| {
            let mut request = Request::builder()
                .method(Method::from_bytes(case.method.as_bytes()).unwrap())
                .uri(&case.uri)
                .header("host", "127.0.0.1");
            if let Some(content_type) = case.content_type {
                request = request.header("content-type", content_type);
            }
            let Ok(request) = request.body(Body::from(case.body.clone())) else {
                // Not a URI hyper would pass on (e.g. a raw space): not a request.
                return Ok(());
            };
            let (status, body) = runtime.block_on(async {
                let response = app.clone().oneshot(request).await.unwrap();
                let status = response.status();
                let limited = http_body_util::Limited::new(response.into_body(), MAX_BODY + 1);
                let body = limited.collect().await.map(|b| b.to_bytes().to_vec());
                (status, body)
            });
            let body = body.map_err(|e| TestCaseError::fail(format!("body: {e}")))?;
            if status.is_success() {
                answered.set(answered.get() + 1);
            }
            check(route, &case, status, &body).map_err(|why| {
                TestCaseError::fail(format!("{} {}: {why}", case.method, short(&case.uri)))
            })
        });
        if let Err(failure) = result {
            panic!("{route}: {failure}");
        }
        eprintln!(
            "{route}: {cases_per_route} cases in {:?}, {} answered 2xx",
            started.elapsed(),
            answered.get()
        );
        // The cases reach the routes' handlers, not only their error paths.
        assert!(answered.get() > 0, "{route}: no case answered 2xx");
        // Every method of the route is routed: a plain request is not the router's 404/405.
        for method in *methods {
            let path = route.replace("{name}", "x").replace("{id}", "x");
            let request = Request::builder()
                .method(*method)
                .uri(&path)
                .header("host", "127.0.0.1")
                .body(Body::empty())
                .unwrap();
            let response = runtime.block_on(app.clone().oneshot(request)).unwrap();
            let body = runtime
                .block_on(response.into_body().collect())
                .unwrap()
                .to_bytes();
            let text = String::from_utf8_lossy(&body);
            assert!(
                !text.contains("no route"),
                "{method} {route} is listed in ROUTES but not routed: {text}"
            );
        }
    }
    shared
        .stop
        .store(true, std::sync::atomic::Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }
}

fn short(uri: &str) -> String {
    if uri.len() > 200 {
        format!("{}… ({} bytes)", &uri[..200], uri.len())
    } else {
        uri.to_string()
    }
}
