//! Which code creates a Go service's leaking goroutines (issue 14): two goroutine dumps
//! (`/debug/pprof/goroutine?debug=2`) `creation_window` apart. Every goroutine but the
//! first carries a `created by F` frame: the function whose `go` statement started it, and
//! where. Goroutines are grouped by that creator, what they run (their innermost frame
//! outside the runtime) and their state, and ranked by growth between the dumps, so the
//! groups that leak come first: `main.handle (server.go:42) -> main.leakyWait [chan
//! receive] +60`.

use leakwatch_detect::format;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Groups listed.
const TOP: usize = 15;

/// What a group of goroutines has in common.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Group {
    /// `created by` function and its `file:line` (the file's base name), or `(none)` for
    /// the main goroutine and those started by the runtime itself.
    pub creator: String,
    /// The innermost frame outside the Go runtime: what the goroutine runs now.
    pub running: String,
    /// The state in the dump's header, without its wait time (`chan receive`, `IO wait`).
    pub state: String,
}

/// Counts goroutines per [`Group`] in a `debug=2` dump. Lines are made visible (no control
/// characters reach the evidence file from a function name).
pub fn parse(dump: &str) -> BTreeMap<Group, u64> {
    let mut out: BTreeMap<Group, u64> = BTreeMap::new();
    for block in dump.split("\n\n") {
        let mut lines = block.lines().map(str::trim_end);
        let Some(header) = lines.find(|l| l.starts_with("goroutine ")) else {
            continue;
        };
        // `goroutine 6 [chan receive, 2 minutes]:`
        let state = header
            .split_once('[')
            .and_then(|(_, rest)| rest.split_once(']'))
            .map(|(inside, _)| inside.split(',').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let rest: Vec<&str> = lines.collect();
        let mut running = None;
        let mut creator = None;
        let mut i = 0;
        while i < rest.len() {
            let line = rest[i];
            if let Some(function) = line.strip_prefix("created by ") {
                // `created by main.main in goroutine 1` (Go 1.21+) or `created by main.main`.
                let function = function.split(" in goroutine ").next().unwrap_or(function);
                let place = rest.get(i + 1).map(|l| location(l)).unwrap_or_default();
                creator = Some(if place.is_empty() {
                    function.to_string()
                } else {
                    format!("{function} ({place})")
                });
                break;
            }
            if !line.starts_with('\t') && running.is_none() && !is_runtime(line) {
                running = Some(function_of(line));
            }
            i += 1;
        }
        let group = Group {
            creator: leakwatch_model::text::visible(creator.as_deref().unwrap_or("(none)")),
            running: leakwatch_model::text::visible(running.as_deref().unwrap_or("(runtime)")),
            state: leakwatch_model::text::visible(&state),
        };
        *out.entry(group).or_default() += 1;
    }
    out
}

/// `main.leakyWait(0x0?)` -> `main.leakyWait`.
fn function_of(line: &str) -> String {
    match line.rfind('(') {
        Some(at) if line.ends_with(')') => line[..at].to_string(),
        _ => line.to_string(),
    }
}

/// The runtime's own frames (parking, scheduling) say how a goroutine waits, not what for.
fn is_runtime(line: &str) -> bool {
    line.starts_with("runtime.") || line.starts_with("runtime/") || line.starts_with("internal/")
}

/// `\t/src/app/server.go:42 +0x4f` -> `server.go:42`.
fn location(line: &str) -> String {
    let path = line.trim().split(" +0x").next().unwrap_or("");
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// What two dumps `seconds` apart say: the text for `creation.txt` and its one line.
pub struct Creators {
    pub text: String,
    pub headline: Option<String>,
}

/// Ranks the groups of `after` by growth since `before`.
pub fn compare(
    before: &BTreeMap<Group, u64>,
    after: &BTreeMap<Group, u64>,
    seconds: f64,
) -> Creators {
    let total = |m: &BTreeMap<Group, u64>| m.values().sum::<u64>();
    let (n0, n1) = (total(before), total(after));
    let mut text = format!(
        "goroutines by creator (/debug/pprof/goroutine?debug=2, two dumps {seconds:.0} s apart): \
         {} -> {} ({:+})\n\n{:>8} {:>8}  created by (where) -> running now [state]\n",
        format::count(n0 as f64),
        format::count(n1 as f64),
        i128::from(n1) - i128::from(n0),
        "growth",
        "now"
    );
    let mut rows: Vec<(i128, u64, &Group)> = after
        .iter()
        .map(|(g, &n)| {
            let was = before.get(g).copied().unwrap_or(0);
            (i128::from(n) - i128::from(was), n, g)
        })
        .collect();
    rows.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
    for (growth, now, g) in rows.iter().take(TOP) {
        let _ = writeln!(
            text,
            "{growth:>+8} {:>8}  {} -> {} [{}]",
            format::count(*now as f64),
            g.creator,
            g.running,
            g.state
        );
    }
    if rows.len() > TOP {
        let _ = writeln!(text, "  ... {} more groups", rows.len() - TOP);
    }
    let grown: i128 = rows.iter().map(|r| r.0.max(0)).sum();
    let headline = rows.first().filter(|r| r.0 > 0).map(|(growth, _, g)| {
        format!(
            "{:.0}% of {} new goroutines in {seconds:.0} s were created by {}, running {} [{}]",
            *growth as f64 * 100.0 / grown as f64,
            format::count(grown as f64),
            g.creator,
            g.running,
            g.state
        )
    });
    if headline.is_none() {
        text.push_str("\nno group of goroutines grew between the two dumps\n");
    }
    Creators { text, headline }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Go 1.19 dump (created by without "in goroutine") and a Go 1.21 one.
    const DUMP: &str = "goroutine 1 [IO wait]:
internal/poll.runtime_pollWait(0x7f3c, 0x72)
\t/usr/lib/go-1.19/src/runtime/netpoll.go:305 +0x89
net/http.(*Server).Serve(0xc000, {0x6f, 0xc0})
\t/usr/lib/go-1.19/src/net/http/server.go:3070 +0x385
main.main()
\t/tmp/x/pprofleak.go:40 +0x1b4

goroutine 6 [chan receive, 3 minutes]:
runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)
\t/usr/lib/go-1.19/src/runtime/proc.go:363 +0xd6
runtime.chanrecv1(0x0?, 0x0?)
\t/usr/lib/go-1.19/src/runtime/chan.go:442 +0x18
main.leakyWait(0x0?)
\t/tmp/x/pprofleak.go:16 +0x25
created by main.handle
\t/tmp/x/pprofleak.go:22 +0x4f

goroutine 7 [chan receive]:
main.leakyWait(0x0?)
\t/tmp/x/pprofleak.go:16 +0x25
created by main.handle in goroutine 1
\t/tmp/x/pprofleak.go:22 +0x4f
";

    #[test]
    fn goroutines_are_grouped_by_creator_and_ranked_by_growth() {
        let after = parse(DUMP);
        let leaky = Group {
            creator: "main.handle (pprofleak.go:22)".into(),
            running: "main.leakyWait".into(),
            state: "chan receive".into(),
        };
        assert_eq!(after.get(&leaky), Some(&2), "{after:#?}");
        let main = Group {
            creator: "(none)".into(),
            running: "net/http.(*Server).Serve".into(),
            state: "IO wait".into(),
        };
        assert_eq!(after.get(&main), Some(&1), "{after:#?}");
        let before: BTreeMap<Group, u64> = [(main, 1)].into_iter().collect();
        let creators = compare(&before, &after, 30.0);
        assert_eq!(
            creators.headline.as_deref(),
            Some(
                "100% of 2 new goroutines in 30 s were created by main.handle (pprofleak.go:22), \
                 running main.leakyWait [chan receive]"
            )
        );
        assert!(creators.text.contains("1 -> 3 (+2)"), "{}", creators.text);
        // Nothing grew: said, and no headline.
        let flat = compare(&after, &after, 30.0);
        assert!(flat.headline.is_none());
        assert!(flat.text.contains("no group of goroutines grew"));
        // A hostile function name is made visible, not passed to a terminal.
        let hostile = parse("goroutine 9 [select]:\nmain.\u{1b}[2Jx()\n\t/a.go:1 +0x1\n");
        assert!(hostile.keys().all(|g| !g.running.contains('\u{1b}')));
    }
}
