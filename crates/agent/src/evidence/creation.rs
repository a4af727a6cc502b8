//! Which code creates the leaking threads (issue 14), for JVMs: a short JFR recording of
//! `jdk.ThreadStart` with stack traces (started with the JDK's own `jcmd PID JFR.start`, no
//! restart, no agent flags; read back with the JDK's `jfr print --json`). The event's stack
//! is the starting thread's at `Thread.start()`: where the thread was created. New threads
//! are grouped by name as the sampler groups them (digits collapsed, on the 15 bytes the
//! kernel keeps), their stacks by the innermost application frame and its callers.

use leakwatch_detect::format;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The recording's settings: thread starts with their stacks, nothing else.
pub const JFC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<configuration version="2.0" label="leakwatch" description="Thread starts with the creating stack (leakwatch creation sites)">
  <event name="jdk.ThreadStart">
    <setting name="enabled">true</setting>
    <setting name="stackTrace">true</setting>
  </event>
</configuration>
"#;

/// Frames from these packages are the platform's: a creation site is the innermost frame
/// outside them (`ThreadPoolExecutor.addWorker` is how, not where).
const PLATFORM: &[&str] = &[
    "java.", "javax.", "jdk.", "sun.", "com.sun.", "kotlin.", "scala.",
];

/// Callers shown after the creation site.
const CALLERS: usize = 2;
/// Sites listed.
const TOP: usize = 10;

/// One thread start: the new thread's name group and the creating stack, innermost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub group: String,
    pub frames: Vec<String>,
}

/// The starts read from `jfr print --json` output.
#[derive(Debug, Default)]
pub struct Starts {
    pub starts: Vec<Start>,
    /// False when the output ended inside the events (jfr's JSON is 6-11 KB an event, by
    /// stack depth, so a busy recording is cut at the output cap): `starts` are the first
    /// ones printed.
    pub complete: bool,
    /// Events that were not valid JSON.
    pub unreadable: usize,
}

/// Reads `jfr print --json --events jdk.ThreadStart` output, event by event, so that output
/// cut at the cap still gives the events before the cut.
pub fn parse_starts(json: &str) -> Result<Starts, String> {
    let (objects, complete) = event_objects(json.as_bytes())?;
    let mut out = Starts {
        starts: Vec::with_capacity(objects.len()),
        complete,
        unreadable: 0,
    };
    for object in objects {
        // One event serde_json refuses (a thread name with a lone UTF-16 surrogate, say)
        // is counted, not fatal.
        let Ok(event) = serde_json::from_slice::<serde_json::Value>(object) else {
            out.unreadable += 1;
            continue;
        };
        if event["type"] != "jdk.ThreadStart" {
            continue;
        }
        out.starts.push(start_of(&event["values"]));
    }
    Ok(out)
}

/// The objects of the `events` array of jfr's `{"recording": {"events": [...]}}`, and
/// whether the array ended (false: the text was cut inside it).
fn event_objects(json: &[u8]) -> Result<(Vec<&[u8]>, bool), String> {
    const KEY: &[u8] = b"\"events\"";
    let Some(key) = json.windows(KEY.len()).position(|w| w == KEY) else {
        // Not jfr's shape: say whether it is JSON at all.
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| format!("not jfr's JSON: {e}"))?;
        let _ = value;
        return Err("no recording.events in jfr's JSON".into());
    };
    let mut at = key + KEY.len();
    let skip_ws = |at: &mut usize| {
        while json.get(*at).is_some_and(|b| b.is_ascii_whitespace()) {
            *at += 1;
        }
    };
    for expected in [b':', b'['] {
        skip_ws(&mut at);
        match json.get(at) {
            Some(&b) if b == expected => at += 1,
            None => return Ok((Vec::new(), false)),
            Some(_) => return Err("not jfr's JSON: recording.events is not an array".into()),
        }
    }
    let mut objects = Vec::new();
    loop {
        while json
            .get(at)
            .is_some_and(|b| b.is_ascii_whitespace() || *b == b',')
        {
            at += 1;
        }
        match json.get(at) {
            None => return Ok((objects, false)),
            Some(b']') => return Ok((objects, true)),
            Some(b'{') => {}
            Some(_) => return Err(format!("not jfr's JSON: unexpected byte at {at}")),
        }
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        let begin = at;
        let end = loop {
            let Some(&b) = json.get(at) else {
                return Ok((objects, false));
            };
            at += 1;
            if in_string {
                match b {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        break at;
                    }
                }
                _ => {}
            }
        };
        objects.push(&json[begin..end]);
    }
}

/// One `jdk.ThreadStart` event's values: the new thread's group and the creating stack.
fn start_of(values: &serde_json::Value) -> Start {
    let name = values["thread"]["javaName"]
        .as_str()
        .or_else(|| values["thread"]["osName"].as_str())
        .unwrap_or("");
    // The kernel keeps 15 bytes of a thread's name (cut mid-character if need be): group as
    // the sampler sees it.
    let kept = &name.as_bytes()[..name.len().min(15)];
    let group = leakwatch_proc::parse::thread_name::normalise(kept);
    let frames = values["stackTrace"]["frames"]
        .as_array()
        .map(|frames| {
            frames
                .iter()
                .map(|f| {
                    let class = f["method"]["type"]["name"]
                        .as_str()
                        .unwrap_or("?")
                        .replace('/', ".");
                    let method = f["method"]["name"].as_str().unwrap_or("?");
                    leakwatch_model::text::visible(&format!("{class}.{method}"))
                })
                .collect()
        })
        .unwrap_or_default();
    Start { group, frames }
}

/// The number of `jdk.ThreadStart` events in a recording, from `jfr summary` output (a
/// table of event types with their counts).
pub fn starts_in_summary(summary: &str) -> Option<usize> {
    summary.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("jdk.ThreadStart"))
            .then(|| words.next()?.parse().ok())
            .flatten()
    })
}

/// The creation site of one start: its innermost application frame and `CALLERS` callers
/// (the innermost frames when all are the platform's); `None` without a stack.
fn site(frames: &[String]) -> Option<String> {
    if frames.is_empty() {
        return None;
    }
    let first_app = frames
        .iter()
        .position(|f| !PLATFORM.iter().any(|p| f.starts_with(p)))
        .unwrap_or(0);
    Some(
        frames[first_app..]
            .iter()
            .take(1 + CALLERS)
            .cloned()
            .collect::<Vec<_>>()
            .join(" <- "),
    )
}

/// What a recording said about one process.
pub struct Creation {
    pub text: String,
    /// "97% of new `Analytics-#` threads were started from `A.b <- C.d`".
    pub headline: Option<String>,
}

/// Ranks the creation sites of the starts of `group` (all starts when `None`) in a recording
/// of `seconds`. When jfr's output was cut (see [`Starts::complete`]) only the first starts
/// are ranked, and `recorded` is how many the recording holds (from `jfr summary`; `None`
/// when it did not say); the text and the headline say so.
pub fn summarise(
    pid: u32,
    parsed: &Starts,
    recorded: Option<usize>,
    group: Option<&str>,
    seconds: f64,
) -> Creation {
    let starts = &parsed.starts;
    let of_group: Vec<&Start> = starts
        .iter()
        .filter(|s| group.is_none_or(|g| s.group == g))
        .collect();
    let what = group.map_or("threads".to_string(), |g| format!("{g} threads"));
    let first = format::count(starts.len() as f64);
    let mut text = if parsed.complete {
        format!(
            "pid {pid}: {} thread starts in {seconds:.0} s (JFR jdk.ThreadStart), {} of them {what}\n",
            starts.len(),
            of_group.len()
        )
    } else {
        let total = match recorded {
            Some(recorded) if recorded >= starts.len() => format::count(recorded as f64),
            _ => format!("at least {first} (jfr summary did not say how many)"),
        };
        format!(
            "pid {pid}: {total} thread starts in {seconds:.0} s (JFR jdk.ThreadStart); only the \
             first {first} are ranked (jfr's JSON output is cut at the evidence output cap), {} \
             of them {what}\n",
            format::count(of_group.len() as f64)
        )
    };
    if parsed.unreadable > 0 {
        let _ = writeln!(
            text,
            "({} events were not valid JSON and are not counted)",
            parsed.unreadable
        );
    }
    let sample = if parsed.complete {
        String::new()
    } else {
        format!(" (among the first {first} thread starts recorded)")
    };
    let mut by_site: BTreeMap<String, (usize, &Start)> = BTreeMap::new();
    let mut without_stack = 0;
    for start in &of_group {
        match site(&start.frames) {
            Some(site) => by_site.entry(site).or_insert((0, start)).0 += 1,
            None => without_stack += 1,
        }
    }
    let mut ranked: Vec<(String, usize, &Start)> =
        by_site.into_iter().map(|(k, (n, s))| (k, n, s)).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let with_stack: usize = ranked.iter().map(|r| r.1).sum();
    if ranked.is_empty() {
        let _ = writeln!(
            text,
            "  no new {what} with a stack in the window{sample} ({without_stack} without)"
        );
        return Creation {
            text,
            headline: None,
        };
    }
    for (site, n, example) in ranked.iter().take(TOP) {
        let share = *n as f64 * 100.0 / with_stack as f64;
        let _ = writeln!(
            text,
            "\n{share:>5.1}% {:>7}  {site}",
            format::count(*n as f64)
        );
        for frame in &example.frames {
            let _ = writeln!(text, "                 {frame}");
        }
    }
    if without_stack > 0 {
        let _ = writeln!(text, "\n({without_stack} starts had no stack)");
    }
    let (top_site, n, _) = &ranked[0];
    let share = *n as f64 * 100.0 / with_stack as f64;
    Creation {
        text,
        headline: Some(format!(
            "{share:.0}% of new {what} were started from {top_site}{sample}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, frames: &[(&str, &str)]) -> serde_json::Value {
        serde_json::json!({
            "type": "jdk.ThreadStart",
            "values": {
                "thread": {"javaName": name},
                "parentThread": {"javaName": "leaker"},
                "stackTrace": {"truncated": false, "frames": frames.iter().map(|(c, m)| serde_json::json!({
                    "method": {"type": {"name": c}, "name": m}, "lineNumber": 1
                })).collect::<Vec<_>>()}
            }
        })
    }

    #[test]
    fn creation_sites_are_the_innermost_application_frames() {
        let pool = [
            ("java/util/concurrent/ThreadPoolExecutor", "addWorker"),
            ("java/util/concurrent/ThreadPoolExecutor", "execute"),
            ("com/acme/analytics/Client", "<init>"),
            ("com/acme/Analytics", "track"),
            ("com/acme/Api", "handle"),
        ];
        let mut events: Vec<_> = (0..29)
            .map(|i| event(&format!("Analytics-{i}"), &pool))
            .collect();
        events.push(event("Analytics-99", &[("com/acme/Other", "spawn")]));
        events.push(event("GC Thread#3", &[("java/lang/Thread", "start")]));
        events.push(event("Analytics-100", &[]));
        let json = serde_json::json!({"recording": {"events": events}}).to_string();
        let parsed = parse_starts(&json).unwrap();
        assert!(parsed.complete);
        assert_eq!(parsed.starts.len(), 32);
        assert_eq!(parsed.starts[0].group, "Analytics-#");
        let creation = summarise(7, &parsed, None, Some("Analytics-#"), 30.0);
        assert_eq!(
            creation.headline.as_deref(),
            Some("97% of new Analytics-# threads were started from com.acme.analytics.Client.<init> <- com.acme.Analytics.track <- com.acme.Api.handle")
        );
        assert!(creation.text.starts_with("pid 7: 32 thread starts in 30 s (JFR jdk.ThreadStart), 31 of them Analytics-# threads\n"), "{}", creation.text);
        assert!(
            creation.text.contains("(1 starts had no stack)"),
            "{}",
            creation.text
        );
        assert!(creation
            .text
            .contains("java.util.concurrent.ThreadPoolExecutor.addWorker"));
    }

    #[test]
    fn long_names_group_as_the_kernel_cuts_them_and_bad_input_is_said() {
        let json = serde_json::json!({"recording": {"events": [
            event("OkHttp ConnectionPool-12", &[("a/B", "c")])
        ]}})
        .to_string();
        // The kernel keeps "OkHttp Connecti".
        assert_eq!(
            parse_starts(&json).unwrap().starts[0].group,
            "OkHttp Connecti"
        );
        assert!(parse_starts("not json")
            .unwrap_err()
            .contains("not jfr's JSON"));
        assert!(parse_starts("{}")
            .unwrap_err()
            .contains("no recording.events"));
        let empty = Starts {
            complete: true,
            ..Starts::default()
        };
        let none = summarise(1, &empty, None, Some("x-#"), 5.0);
        assert!(none.headline.is_none());
        assert!(none.text.contains("no new x-# threads with a stack"));
    }

    #[test]
    fn output_cut_inside_the_events_gives_the_events_before_the_cut() {
        // A thread name with braces, brackets, quotes and a backslash must not end an event.
        let names = ["w-1", "tricky {[\"\\}]", "w-2", "w-3"];
        let events: Vec<_> = names
            .iter()
            .map(|n| event(n, &[("com/acme/Pool", "grow"), ("com/acme/Api", "handle")]))
            .collect();
        let json =
            serde_json::to_string_pretty(&serde_json::json!({"recording": {"events": events}}))
                .unwrap();
        let whole = parse_starts(&json).unwrap();
        assert!(whole.complete);
        assert_eq!(whole.starts.len(), 4);
        assert_eq!(whole.starts[1].group, "tricky {[\"\\}]");
        // Cut anywhere inside the third event: two events, not complete.
        let third = json.match_indices("\"jdk.ThreadStart\"").nth(2).unwrap().0;
        for cut in [third, third + 40, json.len() - 20] {
            let parsed = parse_starts(&json[..cut]).unwrap();
            assert!(!parsed.complete, "cut at {cut}");
            assert!(
                parsed.starts.len() >= 2 && parsed.starts.len() < 4,
                "cut at {cut}"
            );
        }
        let cut = parse_starts(&json[..third]).unwrap();
        let creation = summarise(9, &cut, Some(1031), None, 5.0);
        assert!(
            creation.text.starts_with(
                "pid 9: 1,031 thread starts in 5 s (JFR jdk.ThreadStart); only the first 2 are ranked"
            ),
            "{}",
            creation.text
        );
        assert_eq!(
            creation.headline.as_deref(),
            Some("100% of new threads were started from com.acme.Pool.grow <- com.acme.Api.handle (among the first 2 thread starts recorded)")
        );
        // jfr summary did not say: a lower bound, never the sample's size as the total.
        let unknown = summarise(9, &cut, None, None, 5.0);
        assert!(
            unknown
                .text
                .starts_with("pid 9: at least 2 (jfr summary did not say how many) thread starts"),
            "{}",
            unknown.text
        );
        // A group absent from the first starts: said to be among them, not in the window.
        let absent = summarise(9, &cut, Some(1031), Some("Analytics-#"), 5.0);
        assert!(absent.headline.is_none());
        assert!(
            absent.text.contains("no new Analytics-# threads with a stack in the window (among the first 2 thread starts recorded)"),
            "{}",
            absent.text
        );
    }

    #[test]
    fn an_event_that_is_not_json_is_counted_not_fatal() {
        let good = event("w-1", &[("com/acme/Pool", "grow")]).to_string();
        // A lone surrogate, as jfr prints a thread name holding one: serde_json refuses it.
        let bad = r#"{"type": "jdk.ThreadStart", "values": {"thread": {"javaName": "\ud800"}}}"#;
        let json = format!(r#"{{"recording": {{"events": [{good}, {bad}, {good}]}}}}"#);
        let parsed = parse_starts(&json).unwrap();
        assert!(parsed.complete);
        assert_eq!((parsed.starts.len(), parsed.unreadable), (2, 1));
        let creation = summarise(3, &parsed, None, None, 5.0);
        assert!(
            creation
                .text
                .contains("(1 events were not valid JSON and are not counted)"),
            "{}",
            creation.text
        );
    }

    #[test]
    fn the_number_of_starts_is_read_from_jfr_summary() {
        let summary = " Event Type                              Count  Size (bytes)\n\
            =============================================================\n \
            jdk.ThreadStart                          1031         13201\n \
            jdk.ActiveSetting                         104          3385\n";
        assert_eq!(starts_in_summary(summary), Some(1031));
        assert_eq!(starts_in_summary("jdk.ThreadStartX 5\n"), None);
        assert_eq!(starts_in_summary(""), None);
    }
}
