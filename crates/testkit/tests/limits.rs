//! Limits that bite before the host's (issue 13 part 4 and 5), on real processes watched by
//! a real agent at 1 s with the fast preset: a declared pool capacity replaces
//! RLIMIT_NOFILE in a CLOSE_WAIT leak's forecast and is named; a JVM-style metrics endpoint
//! followed with the default gauges yields a heap-after-GC finding against the heap max the
//! endpoint reports, with heap used folded into it.
//!
//! The metrics endpoint is the test's own (Micrometer's names, labels and -1 for pools
//! without a maximum), not a JVM: a JVM's heap after GC cannot be driven to a known slope
//! within a test's minute.

use leakwatch_testkit::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;

fn findings_of(agent: &Agent, target: &str) -> Vec<Value> {
    agent
        .findings_of(target)
        .into_iter()
        .filter(|f| f["kind"] == "leak")
        .collect()
}

#[test]
fn a_declared_pool_replaces_the_fd_limit_in_the_forecast() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // The server closes every connection at once: the clients keep each in CLOSE_WAIT.
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    let agent = Agent::start(
        "[detect]\npreset = \"fast\"\n\
         [[target]]\nname = \"pooled\"\ncmdline = \"comm=pooled\"\n\
         [[target.limit]]\nseries = \"tcp{CLOSE_WAIT}\"\ncapacity = 300\nname = \"pool\"\n\
         [[target.limit]]\nseries = \"tcp_peer{CLOSE_WAIT *}\"\ncapacity = 300\nname = \"pool\"\n\
         [[target]]\nname = \"plain\"\ncmdline = \"comm=plain\"\n",
    );
    let _pooled = Leaky::start(&["comm=pooled", &format!("leak-connect={addr}:120")]);
    let _plain = Leaky::start(&["comm=plain", &format!("leak-connect={addr}:120")]);
    let mut seen = (Vec::new(), Vec::new());
    let found = eventually(120, || {
        seen = (findings_of(&agent, "pooled"), findings_of(&agent, "plain"));
        let rooted = |f: &Vec<Value>| {
            f.iter().any(|f| {
                f["attribution"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("CLOSE_WAIT"))
            })
        };
        rooted(&seen.0) && rooted(&seen.1)
    });
    assert!(found, "{seen:#?}");
    let pooled = &seen.0[0];
    let plain = &seen.1[0];
    assert_eq!(pooled["limit"], 300.0, "{pooled:#}");
    let summary = pooled["summary"].as_str().unwrap();
    assert!(summary.contains("limit 300 (pool, declared)"), "{summary}");
    let plain_summary = plain["summary"].as_str().unwrap();
    assert!(plain_summary.contains("(RLIMIT_NOFILE)"), "{plain_summary}");
    assert!(plain["limit"].as_f64().unwrap() > 300.0, "{plain:#}");
    // The same leak, the pool a fraction of the fd limit: forecast sooner.
    let eta = |f: &Value| f["eta_seconds"].as_f64().unwrap_or(f64::INFINITY);
    assert!(eta(pooled) < eta(plain), "{pooled:#} vs {plain:#}");
}

/// Micrometer's JVM memory gauges: heap after GC grows 2 MiB per scrape, heap used is that
/// plus a collector sawtooth, the heap max is 512 MiB (its Eden pool reports -1).
fn serve_jvm_metrics() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        const MIB: u64 = 1024 * 1024;
        let mut scrapes = 0u64;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            scrapes += 1;
            let old = 100 * MIB + scrapes * 2 * MIB;
            let eden = (scrapes % 8) * 6 * MIB;
            let body = format!(
                "# TYPE jvm_memory_used_after_last_gc_bytes gauge\n\
                 jvm_memory_used_after_last_gc_bytes{{area=\"heap\",id=\"G1 Old Gen\"}} {old}\n\
                 jvm_memory_used_after_last_gc_bytes{{area=\"nonheap\",id=\"Metaspace\"}} {meta}\n\
                 jvm_memory_used_bytes{{area=\"heap\",id=\"G1 Old Gen\"}} {old}\n\
                 jvm_memory_used_bytes{{area=\"heap\",id=\"G1 Eden Space\"}} {eden}\n\
                 jvm_memory_used_bytes{{area=\"nonheap\",id=\"Metaspace\"}} {meta}\n\
                 jvm_memory_max_bytes{{area=\"heap\",id=\"G1 Old Gen\"}} {max}\n\
                 jvm_memory_max_bytes{{area=\"heap\",id=\"G1 Eden Space\"}} -1\n\
                 jvm_memory_max_bytes{{area=\"nonheap\",id=\"Metaspace\"}} -1\n\
                 jvm_threads_live_threads 31\n",
                meta = 40 * MIB,
                max = 512 * MIB,
            );
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn heap_after_gc_leaks_against_the_reported_heap_max() {
    let port = serve_jvm_metrics();
    // No `gauges`: the default set, of which this endpoint has four.
    let agent = Agent::start(&format!(
        "[detect]\npreset = \"fast\"\n\
         [[target]]\nname = \"shop\"\ncmdline = \"comm=shop\"\nmetrics_url = \"http://127.0.0.1:{port}/metrics\"\n"
    ));
    let _shop = Leaky::start(&["comm=shop"]);
    let mut seen = Vec::new();
    let found = eventually(120, || {
        seen = findings_of(&agent, "shop");
        seen.iter().any(|f| {
            f["attribution"]
                .as_str()
                .is_some_and(|a| a.starts_with("jvm_memory_used_after_last_gc_bytes"))
                && f["consequences"].as_array().is_some_and(|c| !c.is_empty())
        })
    });
    assert!(found, "{seen:#?}");
    let gauges: Vec<&Value> = seen.iter().filter(|f| f["resource"] == "gauge").collect();
    assert_eq!(gauges.len(), 1, "heap used is folded in: {seen:#?}");
    let leak = gauges[0];
    assert_eq!(
        leak["attribution"],
        "jvm_memory_used_after_last_gc_bytes{area=\"heap\"}"
    );
    assert_eq!(leak["limit"], 512.0 * 1024.0 * 1024.0, "{leak:#}");
    let summary = leak["summary"].as_str().unwrap();
    assert!(
        summary.contains("limit 512.0 MiB (jvm_memory_max_bytes, reported) in ~"),
        "{summary}"
    );
    assert!(summary.contains("iB/h)"), "bytes read as bytes: {summary}");
    assert!(
        summary.contains("also: gauge jvm_memory_used_bytes{area=\"heap\"}"),
        "{summary}"
    );
    // The gauges stored: the followed ones the endpoint has, and the capacity.
    let targets = agent.get_json("/api/v1/targets").unwrap();
    let shop = targets["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "shop")
        .unwrap();
    assert!(shop["gauge_error"].is_null(), "{shop:#}");
}
