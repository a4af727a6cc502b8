//! App-reported gauges: a target may name a Prometheus text endpoint of the watched process
//! (`http://127.0.0.1:6060/metrics`) and the gauges to follow (`go_goroutines`,
//! `jvm_threads_live_threads`, `hikaricp_connections_active`, ...). They are scraped every
//! interval on their own thread, so a slow or broken endpoint never delays sampling; the
//! sampler stores the latest fresh values as `gauge{NAME}` series of the target.

use crate::sync::Locked;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One target's scrape configuration.
#[derive(Debug, Clone)]
pub struct GaugeSource {
    pub target: String,
    pub url: String,
    /// What to follow; empty: the [`DEFAULT_GAUGES`] the endpoint has.
    pub gauges: Vec<Selector>,
}

/// Followed when a target gives `metrics_url` and no `gauges`: well-known gauges of leaking
/// resources, as Go, Micrometer, the Prometheus Java client, OpenTelemetry, Node.js and
/// HikariCP name them. Those the endpoint does not have are skipped.
pub const DEFAULT_GAUGES: &[&str] = &[
    "go_goroutines",
    "go_threads",
    "process_open_fds",
    "jvm_threads_live_threads",
    "jvm_threads_current",
    "jvm_gc_live_data_size_bytes",
    "jvm_memory_used_after_last_gc_bytes{area=\"heap\"}",
    "jvm_memory_used_bytes{area=\"heap\"}",
    "jvm_memory_bytes_used{area=\"heap\"}",
    "hikaricp_connections_active",
    "hikaricp_connections_pending",
    "nodejs_active_handles_total",
    "nodejs_heap_size_used_bytes",
];

/// At most this many gauges per target, labels per selector, and bytes per selector.
pub const MAX_GAUGES: usize = 64;
pub const MAX_SELECTOR_LABELS: usize = 8;
pub const MAX_SELECTOR_LEN: usize = 256;

/// A gauge to follow: a metric name and the labels a sample must carry to count
/// (`jvm_memory_used_bytes{area="heap"}`); the samples matching it are summed (the label
/// sets it does not fix, such as the pools of the heap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    pub name: String,
    pub labels: Vec<(String, String)>,
}

impl Selector {
    /// Parses `name` or `name{label="value",...}` (values in double quotes, `\"` and `\\`
    /// escaped), bounded by [`MAX_SELECTOR_LEN`] and [`MAX_SELECTOR_LABELS`].
    pub fn parse(text: &str) -> Result<Selector, String> {
        let text = text.trim();
        if text.is_empty() || text.len() > MAX_SELECTOR_LEN {
            return Err(format!(
                "gauge {text:?} must be 1 to {MAX_SELECTOR_LEN} bytes"
            ));
        }
        let (name, rest) = match text.find('{') {
            Some(i) => (&text[..i], Some(&text[i..])),
            None => (text, None),
        };
        if !valid_metric_name(name) {
            return Err(format!(
                "gauge {text:?}: {name:?} is not a metric name (letters, digits, '_' and ':')"
            ));
        }
        let labels = match rest {
            None => Vec::new(),
            Some(rest) => {
                let (labels, after) =
                    parse_labels(rest).ok_or_else(|| format!("gauge {text:?}: bad label set"))?;
                if !after.trim().is_empty() {
                    return Err(format!("gauge {text:?}: text after the label set"));
                }
                labels
            }
        };
        if labels.len() > MAX_SELECTOR_LABELS {
            return Err(format!(
                "gauge {text:?}: at most {MAX_SELECTOR_LABELS} labels"
            ));
        }
        Ok(Selector {
            name: name.to_string(),
            labels,
        })
    }

    /// True when a sample of `name` with `labels` counts towards this gauge.
    fn matches(&self, name: &str, labels: &[(String, String)]) -> bool {
        self.name == name
            && self
                .labels
                .iter()
                .all(|wanted| labels.iter().any(|have| have == wanted))
    }

    /// The same labels on the metric that reports this one's capacity, by naming
    /// convention: `jvm_memory_used_bytes` -> `jvm_memory_max_bytes`,
    /// `hikaricp_connections_active` -> `hikaricp_connections_max`, `process_open_fds` ->
    /// `process_max_fds`, `jvm_gc_live_data_size_bytes` -> `jvm_gc_max_data_size_bytes`.
    pub fn capacity_candidates(&self) -> Vec<Selector> {
        let base = self
            .name
            .replace("_after_last_gc", "")
            .replace("_after_gc", "");
        let words: Vec<&str> = base.split('_').collect();
        let mut out: Vec<Selector> = Vec::new();
        for (i, word) in words.iter().enumerate() {
            if !matches!(
                *word,
                "used" | "active" | "open" | "current" | "live" | "inuse"
            ) {
                continue;
            }
            for replacement in ["max", "limit"] {
                let mut renamed = words.clone();
                renamed[i] = replacement;
                let name = renamed.join("_");
                if name != self.name && !out.iter().any(|s| s.name == name) {
                    out.push(Selector {
                        name,
                        labels: self.labels.clone(),
                    });
                }
            }
        }
        out
    }
}

impl std::fmt::Display for Selector {
    /// `name{a="x",b="y"}`: what the gauge series is called (`gauge{...}`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)?;
        if self.labels.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (key, value)) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
            write!(f, "{key}=\"{escaped}\"")?;
        }
        f.write_str("}")
    }
}

/// The selectors of a target's `gauges` (the defaults when empty).
pub fn selectors(gauges: &[String]) -> Result<Vec<Selector>, String> {
    if gauges.len() > MAX_GAUGES {
        return Err(format!("at most {MAX_GAUGES} gauges"));
    }
    gauges.iter().map(|g| Selector::parse(g)).collect()
}

fn valid_metric_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses `{a="x",b="y"}` at the start of `text`: the pairs and the text after `}`. Label
/// values may hold `}` and `,` inside quotes and `\"`, `\\`, `\n` escapes.
fn parse_labels(text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut rest = text.strip_prefix('{')?;
    let mut labels = Vec::new();
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        if !valid_metric_name(key) || key.contains(':') {
            return None;
        }
        rest = rest[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.push((key.to_string(), value));
        rest = rest[end + 1..].trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return None;
        }
    }
}

/// The latest scrape of one target.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// When the last scrape finished (successful or not).
    pub at: Option<Instant>,
    /// `(gauge, value)`, the gauge as its selector reads (`jvm_memory_used_bytes{area="heap"}`);
    /// samples matching one selector are summed. Reported capacities of followed gauges
    /// (`jvm_memory_max_bytes{area="heap"}`) are included.
    pub values: Vec<(String, f64)>,
    /// Why the last scrape failed, if it did.
    pub error: Option<String>,
}

/// Shared between the scraper thread and the sampler/HTTP.
#[derive(Default)]
pub struct Gauges {
    pub latest: Mutex<HashMap<String, Scrape>>,
    pub errors: std::sync::atomic::AtomicU64,
}

impl Gauges {
    /// The values of `target` scraped within `max_age`, for the sampler to store.
    pub fn fresh(&self, target: &str, max_age: Duration) -> Vec<(String, f64)> {
        let latest = self.latest.locked();
        match latest.get(target) {
            Some(scrape) if scrape.at.is_some_and(|t| t.elapsed() <= max_age) => {
                scrape.values.clone()
            }
            _ => Vec::new(),
        }
    }

    /// The last error of each target's scrape, for the API.
    pub fn errors(&self) -> HashMap<String, String> {
        self.latest
            .locked()
            .iter()
            .filter_map(|(target, s)| s.error.clone().map(|e| (target.clone(), e)))
            .collect()
    }
}

/// Why a body is not usable.
#[derive(Debug, PartialEq)]
pub enum ParseError {
    /// Not one line parsed as a sample: probably not a Prometheus endpoint at all.
    NotPrometheusText { first_bad_line: usize },
}

/// Parses the Prometheus text exposition format far enough to read gauge values: every
/// `name{labels} value [timestamp]` line, comments skipped. The samples matching a selector
/// are summed (goroutines of one process are reported once; connections of several pools
/// add up; `{area="heap"}` sums the heap's pools and leaves non-heap out). Returns the value
/// of each selector that matched at least one finite sample, in the order given. Lines that
/// do not parse are skipped, unless nothing parses.
pub fn parse_text(body: &str, wanted: &[Selector]) -> Result<Vec<(Selector, f64)>, ParseError> {
    parse_text_with(body, wanted, wanted.len())
}

/// [`parse_text`] where the selectors from index `capacities` on are capacities: their
/// negative samples mean "no maximum" (a JVM memory pool without one reports -1) and are
/// left out of the sum.
pub fn parse_text_with(
    body: &str,
    wanted: &[Selector],
    capacities: usize,
) -> Result<Vec<(Selector, f64)>, ParseError> {
    let mut sums: Vec<Option<f64>> = vec![None; wanted.len()];
    let mut parsed = 0usize;
    let mut first_bad = None;
    for (number, line) in body.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, rest) = match line.find(['{', ' ', '\t']) {
            Some(i) => (&line[..i], &line[i..]),
            None => {
                first_bad.get_or_insert(number + 1);
                continue;
            }
        };
        let (labels, rest) = if rest.starts_with('{') {
            match parse_labels(rest) {
                Some(parsed) => parsed,
                None => {
                    first_bad.get_or_insert(number + 1);
                    continue;
                }
            }
        } else {
            (Vec::new(), rest)
        };
        let value = rest.split_whitespace().next().and_then(parse_value);
        let Some(value) = value else {
            first_bad.get_or_insert(number + 1);
            continue;
        };
        if !valid_metric_name(name) {
            first_bad.get_or_insert(number + 1);
            continue;
        }
        parsed += 1;
        if !value.is_finite() {
            continue;
        }
        for (i, (selector, sum)) in wanted.iter().zip(sums.iter_mut()).enumerate() {
            if i >= capacities && value < 0.0 {
                continue;
            }
            if selector.matches(name, &labels) {
                *sum = Some(sum.unwrap_or(0.0) + value);
            }
        }
    }
    if parsed == 0 {
        if let Some(first_bad_line) = first_bad {
            return Err(ParseError::NotPrometheusText { first_bad_line });
        }
    }
    Ok(wanted
        .iter()
        .zip(sums)
        .filter_map(|(selector, sum)| sum.map(|v| (selector.clone(), v)))
        .collect())
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// Scrapes every source once per `interval` until `stop` is set.
pub fn scrape_loop(
    sources: Vec<GaugeSource>,
    interval: Duration,
    gauges: &Gauges,
    stop: &std::sync::atomic::AtomicBool,
) {
    if sources.is_empty() {
        return;
    }
    // A slow endpoint gets at most half an interval (and never more than 5 s), so one
    // scrape round fits in an interval.
    let timeout = (interval / 2)
        .min(Duration::from_secs(5))
        .max(Duration::from_millis(200));
    let client = match reqwest::blocking::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(error = %error, "cannot build the gauge scraper");
            return;
        }
    };
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        for source in &sources {
            crate::health::beat();
            let scrape = scrape_one(&client, source);
            if let Some(error) = &scrape.error {
                gauges.errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(target = %source.target, url = %source.url, error = %error, "gauge scrape failed");
            }
            gauges.latest.locked().insert(source.target.clone(), scrape);
        }
        next += interval;
        while Instant::now() < next && !stop.load(Ordering::Relaxed) {
            crate::health::beat();
            std::thread::sleep(Duration::from_millis(100).min(next - Instant::now()));
        }
        if Instant::now() > next + interval {
            next = Instant::now();
        }
    }
}

fn scrape_one(client: &reqwest::blocking::Client, source: &GaugeSource) -> Scrape {
    let failed = |error: String| Scrape {
        at: Some(Instant::now()),
        values: Vec::new(),
        error: Some(error),
    };
    let response = match client.get(&source.url).send() {
        Ok(response) => response,
        Err(error) if error.is_timeout() => return failed(format!("{}: timed out", source.url)),
        Err(error) => return failed(format!("{}: {error}", source.url)),
    };
    if !response.status().is_success() {
        return failed(format!("{}: HTTP {}", source.url, response.status()));
    }
    let body = match response.text() {
        Ok(body) => body,
        Err(error) => return failed(format!("{}: {error}", source.url)),
    };
    let defaults = source.gauges.is_empty();
    let followed: Vec<Selector> = if defaults {
        DEFAULT_GAUGES
            .iter()
            .filter_map(|g| Selector::parse(g).ok())
            .collect()
    } else {
        source.gauges.clone()
    };
    // The followed gauges, then the capacities they may report.
    let mut wanted = followed.clone();
    for selector in &followed {
        for candidate in selector.capacity_candidates() {
            if !wanted.contains(&candidate) {
                wanted.push(candidate);
            }
        }
    }
    match parse_text_with(&body, &wanted, followed.len()) {
        Ok(values) => {
            let found = |s: &Selector| values.iter().any(|(v, _)| v == s);
            let missing: Vec<String> = followed
                .iter()
                .filter(|s| !found(s))
                .map(Selector::to_string)
                .collect();
            let error = if defaults {
                (!followed.iter().any(found)).then(|| {
                    format!(
                        "{}: none of the default gauges found (name them in gauges)",
                        source.url
                    )
                })
            } else {
                (!missing.is_empty())
                    .then(|| format!("{}: no gauge named {}", source.url, missing.join(", ")))
            };
            Scrape {
                at: Some(Instant::now()),
                error,
                values: values
                    .into_iter()
                    .map(|(selector, value)| (selector.to_string(), value))
                    .collect(),
            }
        }
        Err(ParseError::NotPrometheusText { first_bad_line }) => failed(format!(
            "{}: not Prometheus text (line {first_bad_line} does not parse)",
            source.url
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selectors(list: &[&str]) -> Vec<Selector> {
        list.iter().map(|s| Selector::parse(s).unwrap()).collect()
    }

    fn values(found: Vec<(Selector, f64)>) -> Vec<(String, f64)> {
        found.into_iter().map(|(s, v)| (s.to_string(), v)).collect()
    }

    #[test]
    fn reads_gauges_and_sums_label_sets() {
        let body = "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 42\nhikaricp_connections_active{pool=\"a\"} 3\nhikaricp_connections_active{pool=\"b}\"} 4 1700000000000\nother 1\n";
        let found = parse_text(
            body,
            &selectors(&["go_goroutines", "hikaricp_connections_active"]),
        )
        .unwrap();
        assert_eq!(
            values(found),
            vec![
                ("go_goroutines".to_string(), 42.0),
                ("hikaricp_connections_active".to_string(), 7.0)
            ]
        );
    }

    /// Micrometer's JVM memory: heap and non-heap pools, the max of a pool without one
    /// reported as -1.
    #[test]
    fn label_selectors_pick_the_heap() {
        let body = concat!(
            "jvm_memory_used_bytes{area=\"heap\",id=\"G1 Eden Space\"} 100\n",
            "jvm_memory_used_bytes{area=\"heap\",id=\"G1 Old Gen\"} 400\n",
            "jvm_memory_used_bytes{area=\"nonheap\",id=\"Metaspace\"} 50\n",
            "jvm_memory_max_bytes{area=\"heap\",id=\"G1 Eden Space\"} -1\n",
            "jvm_memory_max_bytes{area=\"heap\",id=\"G1 Old Gen\"} 1000\n",
            "pool_size{name=\"a \\\"quoted\\\" , one\"} 7\n",
        );
        let heap = Selector::parse("jvm_memory_used_bytes{area=\"heap\"}").unwrap();
        let max = heap.capacity_candidates();
        assert_eq!(max[0].to_string(), "jvm_memory_max_bytes{area=\"heap\"}");
        let quoted = Selector::parse(r#"pool_size{name="a \"quoted\" , one"}"#).unwrap();
        let mut wanted = vec![heap.clone(), quoted.clone()];
        wanted.extend(max);
        let found = values(parse_text_with(body, &wanted, 2).unwrap());
        assert_eq!(
            found,
            vec![
                ("jvm_memory_used_bytes{area=\"heap\"}".to_string(), 500.0),
                (quoted.to_string(), 7.0),
                ("jvm_memory_max_bytes{area=\"heap\"}".to_string(), 1000.0),
            ]
        );
        // Everything: heap and non-heap.
        let all = values(parse_text(body, &selectors(&["jvm_memory_used_bytes"])).unwrap());
        assert_eq!(all[0].1, 550.0);
    }

    #[test]
    fn capacities_are_found_by_naming_convention() {
        let names = |s: &str| -> Vec<String> {
            Selector::parse(s)
                .unwrap()
                .capacity_candidates()
                .into_iter()
                .map(|c| c.to_string())
                .collect()
        };
        assert!(names("hikaricp_connections_active").contains(&"hikaricp_connections_max".into()));
        assert!(names("process_open_fds").contains(&"process_max_fds".into()));
        assert!(names("jvm_gc_live_data_size_bytes").contains(&"jvm_gc_max_data_size_bytes".into()));
        assert!(names("jvm_memory_used_after_last_gc_bytes{area=\"heap\"}")
            .contains(&"jvm_memory_max_bytes{area=\"heap\"}".into()));
        assert!(names("go_goroutines").is_empty());
    }

    #[test]
    fn bad_selectors_are_refused() {
        for bad in [
            "",
            "9lives",
            "a-b",
            "a{b=\"c\"",
            "a{b=c}",
            "a{b=\"c\"} x",
            "a{1=\"c\"}",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("a{}", "b".repeat(MAX_SELECTOR_LEN));
        assert!(Selector::parse(&long).is_err());
        let many: String = (0..9).map(|i| format!("l{i}=\"v\",")).collect();
        assert!(Selector::parse(&format!("a{{{many}}}")).is_err());
        assert!(DEFAULT_GAUGES.iter().all(|g| Selector::parse(g).is_ok()));
    }

    #[test]
    fn garbage_is_an_error_naming_the_line() {
        let error = parse_text(
            "<html>\n<body>oops</body>\n",
            &selectors(&["go_goroutines"]),
        )
        .unwrap_err();
        assert_eq!(error, ParseError::NotPrometheusText { first_bad_line: 1 });
        // A partly broken body still yields what parses.
        let found = parse_text(
            "garbage line here\ngo_goroutines 5\n",
            &selectors(&["go_goroutines"]),
        )
        .unwrap();
        assert_eq!(values(found), vec![("go_goroutines".to_string(), 5.0)]);
    }

    #[test]
    fn special_values() {
        let found = parse_text("a +Inf\nb NaN\nc -1.5e3\n", &selectors(&["a", "b", "c"])).unwrap();
        // Non-finite values are not stored: a gauge of +Inf is not a count.
        assert_eq!(values(found), vec![("c".to_string(), -1500.0)]);
    }
}
