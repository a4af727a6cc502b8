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
    pub gauges: Vec<String>,
}

/// The latest scrape of one target.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// When the last scrape finished (successful or not).
    pub at: Option<Instant>,
    /// `(gauge name, value)`; a gauge reported with several label sets is summed.
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
            Some(scrape)
                if scrape.error.is_none() && scrape.at.is_some_and(|t| t.elapsed() <= max_age) =>
            {
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
/// `name{labels} value [timestamp]` line, comments skipped. Values of one name with
/// different labels are summed (goroutines of one process are reported once; connections of
/// several pools add up). Lines that do not parse are skipped, unless nothing parses.
pub fn parse_text(body: &str, wanted: &[String]) -> Result<Vec<(String, f64)>, ParseError> {
    let mut sums: HashMap<&str, f64> = HashMap::new();
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
        let rest = if rest.starts_with('{') {
            // Label values may contain '}' inside quotes: find the closing brace outside them.
            let mut in_quotes = false;
            let mut escaped = false;
            let mut end = None;
            for (i, ch) in rest.char_indices() {
                match ch {
                    '\\' if in_quotes && !escaped => {
                        escaped = true;
                        continue;
                    }
                    '"' if !escaped => in_quotes = !in_quotes,
                    '}' if !in_quotes => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
                escaped = false;
            }
            match end {
                Some(end) => &rest[end + 1..],
                None => {
                    first_bad.get_or_insert(number + 1);
                    continue;
                }
            }
        } else {
            rest
        };
        let value = rest.split_whitespace().next().and_then(parse_value);
        let Some(value) = value else {
            first_bad.get_or_insert(number + 1);
            continue;
        };
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        if !valid_name {
            first_bad.get_or_insert(number + 1);
            continue;
        }
        parsed += 1;
        if wanted.iter().any(|w| w == name) && value.is_finite() {
            *sums.entry(name).or_insert(0.0) += value;
        }
    }
    if parsed == 0 {
        if let Some(first_bad_line) = first_bad {
            return Err(ParseError::NotPrometheusText { first_bad_line });
        }
    }
    Ok(wanted
        .iter()
        .filter_map(|w| sums.get(w.as_str()).map(|v| (w.clone(), *v)))
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
/// The gauge sources of the configured targets (those with a `metrics_url`).
pub fn sources(rules: &[crate::config::TargetRule]) -> Vec<GaugeSource> {
    rules
        .iter()
        .filter_map(|rule| {
            rule.metrics_url.as_ref().map(|url| GaugeSource {
                target: rule.name.clone(),
                url: url.clone(),
                gauges: rule.gauges.clone(),
            })
        })
        .collect()
}

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
            let scrape = scrape_one(&client, source);
            if let Some(error) = &scrape.error {
                gauges.errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(target = %source.target, url = %source.url, error = %error, "gauge scrape failed");
            }
            gauges.latest.locked().insert(source.target.clone(), scrape);
        }
        next += interval;
        while Instant::now() < next && !stop.load(Ordering::Relaxed) {
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
    match parse_text(&body, &source.gauges) {
        Ok(values) => {
            let missing: Vec<&str> = source
                .gauges
                .iter()
                .filter(|g| !values.iter().any(|(name, _)| name == *g))
                .map(String::as_str)
                .collect();
            Scrape {
                at: Some(Instant::now()),
                error: (!missing.is_empty())
                    .then(|| format!("{}: no gauge named {}", source.url, missing.join(", "))),
                values,
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

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_gauges_and_sums_label_sets() {
        let body = "# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 42\nhikaricp_connections_active{pool=\"a\"} 3\nhikaricp_connections_active{pool=\"b}\"} 4 1700000000000\nother 1\n";
        let values = parse_text(
            body,
            &names(&["go_goroutines", "hikaricp_connections_active"]),
        )
        .unwrap();
        assert_eq!(
            values,
            vec![
                ("go_goroutines".to_string(), 42.0),
                ("hikaricp_connections_active".to_string(), 7.0)
            ]
        );
    }

    #[test]
    fn garbage_is_an_error_naming_the_line() {
        let error =
            parse_text("<html>\n<body>oops</body>\n", &names(&["go_goroutines"])).unwrap_err();
        assert_eq!(error, ParseError::NotPrometheusText { first_bad_line: 1 });
        // A partly broken body still yields what parses.
        let values = parse_text(
            "garbage line here\ngo_goroutines 5\n",
            &names(&["go_goroutines"]),
        )
        .unwrap();
        assert_eq!(values, vec![("go_goroutines".to_string(), 5.0)]);
    }

    #[test]
    fn special_values() {
        let values = parse_text("a +Inf\nb NaN\nc -1.5e3\n", &names(&["a", "b", "c"])).unwrap();
        // Non-finite values are not stored: a gauge of +Inf is not a count.
        assert_eq!(values, vec![("c".to_string(), -1500.0)]);
    }
}
