//! What grows in a memory leak (issue 18): two snapshots of the target's memory some time
//! apart, and their difference, captured at first detection while the process still has
//! headroom (incident 004's heap dump, taken near the limit, killed the JVM).
//!
//! - Every process: `/proc/PID/smaps`, summed per mapping (the `[heap]` of malloc's brk,
//!   anonymous mappings — a JVM's or Go's heap, malloc arenas, thread stacks — and each
//!   mapped file), ranked by growth of resident memory. This says *which kind* of memory
//!   grows; it is all that can be read from outside a native or Python process without
//!   attaching to it.
//! - Go services with `pprof_url`: `/debug/pprof/heap` ([`super::pprof`]), allocation sites
//!   ranked by growth of in-use bytes.
//! - JVMs: `jcmd PID GC.class_histogram` (the JDK's own tool; it runs a full GC first, a
//!   pause the benchmark measures), the classes ranked by growth in bytes and instances:
//!   `java.util.HashMap$Node +412,000 instances, +12.6 MiB (74% of heap growth)`.
//!
//! Bounds: each jcmd run has the evidence timeout and output cap; nothing runs when the
//! finding is within 10% of a known limit (a full GC or an attach near the limit is how 004
//! lost its JVM); at most [`MAX_PIDS`] processes; the ranked lists are cut at [`TOP`].

use leakwatch_detect::{format, Finding};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Processes of one target whose memory is snapshotted.
pub const MAX_PIDS: usize = 4;
/// Rows shown in each ranked list.
pub const TOP: usize = 25;
/// No class histogram when the finding's value is at least this fraction of its limit.
pub const HEADROOM_FRACTION: f64 = 0.9;

/// One class of a class histogram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassRow {
    pub instances: u64,
    pub bytes: u64,
    pub name: String,
}

/// Parses the output of `jcmd PID GC.class_histogram` (HotSpot: ` 1:  1234  56789
/// java.util.HashMap$Node (java.base@17)`); other lines (the pid, the header, `Total`) are
/// skipped. The module in parentheses is dropped from the name.
pub fn parse_class_histogram(text: &str) -> Vec<ClassRow> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(rank) = fields.next() else { continue };
        if !rank.ends_with(':') || rank[..rank.len() - 1].parse::<u64>().is_err() {
            continue;
        }
        let (Some(instances), Some(bytes), Some(name)) = (
            fields.next().and_then(|f| f.parse::<u64>().ok()),
            fields.next().and_then(|f| f.parse::<u64>().ok()),
            fields.next(),
        ) else {
            continue;
        };
        rows.push(ClassRow {
            instances,
            bytes,
            name: leakwatch_model::text::visible(name),
        });
    }
    rows
}

/// The growth of one class (or mapping) between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Growth {
    pub name: String,
    /// Instances (classes) or 0 (mappings).
    pub count: i128,
    pub bytes: i128,
    pub bytes_after: u64,
}

/// Per-name differences, largest byte growth first (then by name, for a stable order).
fn diff(
    before: &BTreeMap<String, (u64, u64)>,
    after: &BTreeMap<String, (u64, u64)>,
) -> Vec<Growth> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    let mut out: Vec<Growth> = names
        .into_iter()
        .map(|name| {
            let (c0, b0) = before.get(name).copied().unwrap_or((0, 0));
            let (c1, b1) = after.get(name).copied().unwrap_or((0, 0));
            Growth {
                name: name.clone(),
                count: i128::from(c1) - i128::from(c0),
                bytes: i128::from(b1) - i128::from(b0),
                bytes_after: b1,
            }
        })
        .collect();
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
    out
}

fn by_class(rows: &[ClassRow]) -> BTreeMap<String, (u64, u64)> {
    let mut map: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for row in rows {
        let entry = map.entry(row.name.clone()).or_default();
        entry.0 = entry.0.saturating_add(row.instances);
        entry.1 = entry.1.saturating_add(row.bytes);
    }
    map
}

/// Classes by growth between two histograms, and the heap's total growth in bytes.
pub fn class_growth(before: &[ClassRow], after: &[ClassRow]) -> (Vec<Growth>, i128) {
    let total = |rows: &[ClassRow]| rows.iter().map(|r| i128::from(r.bytes)).sum::<i128>();
    (
        diff(&by_class(before), &by_class(after)),
        total(after) - total(before),
    )
}

/// `/proc/PID/smaps` summed per mapping name: resident and anonymous bytes. A mapping
/// without a path is `[anon]`; `[heap]`, `[stack]` and files keep their names.
pub fn parse_smaps(text: &str) -> BTreeMap<String, (u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if first.contains('-') && first.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            // `start-end perms offset dev inode [path]`: the path is the rest of the line.
            let path = line.splitn(6, char::is_whitespace).nth(5).map(str::trim);
            let name = match path {
                Some(p) if !p.is_empty() => leakwatch_model::text::visible(p),
                _ => "[anon]".to_string(),
            };
            current = Some(name);
            continue;
        }
        let Some(name) = &current else { continue };
        let mut kb = || {
            fields
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        match first {
            "Rss:" => out.entry(name.clone()).or_default().0 += kb(),
            "Anonymous:" => out.entry(name.clone()).or_default().1 += kb(),
            _ => {}
        }
    }
    out
}

/// Resident bytes per mapping; the anonymous part rides along in `count` (as bytes).
fn smaps_growth(
    before: &BTreeMap<String, (u64, u64)>,
    after: &BTreeMap<String, (u64, u64)>,
) -> Vec<Growth> {
    let rss = |m: &BTreeMap<String, (u64, u64)>| -> BTreeMap<String, (u64, u64)> {
        m.iter()
            .map(|(k, (rss, anon))| (k.clone(), (*anon, *rss)))
            .collect()
    };
    diff(&rss(before), &rss(after))
}

/// `+12.2 MiB`, `-9.8 KiB`: a signed change in binary units (the engine's formatting).
fn mib(bytes: i128) -> String {
    let sign = if bytes < 0 { "-" } else { "+" };
    format!("{sign}{}", format::bytes(bytes.unsigned_abs() as f64))
}

/// `+920,000`: a signed change of a count.
fn grouped(n: i128) -> String {
    let sign = if n < 0 { "-" } else { "+" };
    format!("{sign}{}", format::count(n.unsigned_abs() as f64))
}

/// The one line for the incident's summary: the class (or mapping) that grew most, its rate
/// and its share of the growth. `None` when nothing grew.
pub fn headline(top: &Growth, total: i128, seconds: f64, what: &str) -> Option<String> {
    if top.bytes <= 0 || seconds <= 0.0 {
        return None;
    }
    let per_min = (top.bytes as f64 * 60.0 / seconds) as i128;
    let share = if total > 0 {
        format!(
            " ({:.0}% of {what} growth)",
            top.bytes as f64 * 100.0 / total as f64
        )
    } else {
        String::new()
    };
    Some(format!(
        "memory leak: {} {}/min{share}",
        top.name,
        mib(per_min)
    ))
}

fn render(out: &mut String, rows: &[Growth], total: i128, seconds: f64, count_label: Option<&str>) {
    let growing: Vec<&Growth> = rows
        .iter()
        .filter(|g| g.bytes > 0 || g.count > 0)
        .take(TOP)
        .collect();
    if growing.is_empty() {
        out.push_str("  nothing grew\n");
        return;
    }
    for g in growing {
        let share = if total > 0 {
            format!("{:>5.1}%", g.bytes as f64 * 100.0 / total as f64)
        } else {
            "     -".to_string()
        };
        let rate = mib((g.bytes as f64 * 60.0 / seconds.max(1e-9)) as i128);
        let count = match count_label {
            Some(label) => format!("{:>14} {label}  ", grouped(g.count)),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "  {:>12} {share}  {rate:>12}/min  {count}{}",
            mib(g.bytes),
            g.name
        );
    }
}

/// What one process's two snapshots said.
pub struct ProcessGrowth {
    pub text: String,
    /// Raw snapshots to keep beside `heap-growth.txt`: (file name, bytes, note).
    pub raw: Vec<(String, Vec<u8>, String)>,
    /// The line for the summary: a JVM's class when there is one, else the top mapping.
    pub headline: Option<String>,
    /// The JVM class line alone, with the growth of that class in bytes (the largest
    /// among a target's JVMs makes the headline).
    pub class_headline: Option<(i128, String)>,
}

/// Whether a class histogram may be taken: refused near a known limit.
pub fn headroom(finding: &Finding) -> Result<(), String> {
    match finding.limit {
        Some(limit) if limit > 0.0 && finding.current >= HEADROOM_FRACTION * limit => Err(format!(
            "not taken: {:.0}% of the limit is used (a full GC or an attach this close to the \
             limit can kill the process, as a heap dump did in incident 004)",
            finding.current * 100.0 / limit
        )),
        _ => Ok(()),
    }
}

/// A JVM's heap as its performance counters tell it (`jcmd PID PerfCounter.print`, the
/// counters `jstat` reads; the same names for every HotSpot collector): summed over the
/// generations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapInfo {
    /// `-Xmx`: the most the heap may grow to.
    pub max: u64,
    /// Reserved from the OS now.
    pub committed: u64,
    /// Occupied now, garbage not yet collected included.
    pub used: u64,
}

/// Reads [`HeapInfo`] from `PerfCounter.print` output (`sun.gc.generation.N.maxCapacity`,
/// `.capacity`, `.space.M.used`). `None` without those counters (`-XX:-UsePerfData`).
pub fn parse_perf_heap(text: &str) -> Option<HeapInfo> {
    let mut info = HeapInfo {
        max: 0,
        committed: 0,
        used: 0,
    };
    let mut seen = false;
    for line in text.lines() {
        let Some((name, value)) = line.trim().split_once('=') else {
            continue;
        };
        let Some(rest) = name.strip_prefix("sun.gc.generation.") else {
            continue;
        };
        let Ok(value) = value.trim().parse::<u64>() else {
            continue;
        };
        // `N.maxCapacity`, `N.capacity`, `N.space.M.used` (N and M digits).
        let mut parts = rest.split('.');
        if !parts
            .next()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        {
            continue;
        }
        let field = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("maxCapacity"), None, _, _) => &mut info.max,
            (Some("capacity"), None, _, _) => &mut info.committed,
            (Some("space"), Some(m), Some("used"), None)
                if m.bytes().all(|b| b.is_ascii_digit()) =>
            {
                &mut info.used
            }
            _ => continue,
        };
        *field = field.saturating_add(value);
        seen = true;
    }
    (seen && info.max > 0).then_some(info)
}

/// A heap dump is refused when the heap is at least this full.
pub const DUMP_HEAP_FRACTION: f64 = 0.9;

/// Whether a heap dump (`GC.heap_dump`, on request only) may be taken of a JVM whose heap is
/// `heap`, with `free_disk` bytes free where the dump goes. It runs a full GC and walks
/// every live object: near `-Xmx` that can end in an OutOfMemoryError or a kill, which is
/// how incident 004 lost its JVM; and the file is about as large as the live heap.
pub fn dump_headroom(heap: Option<HeapInfo>, free_disk: Option<u64>) -> Result<u64, String> {
    let Some(heap) = heap else {
        return Err(
            "refused: the JVM's heap size could not be read (jcmd PID PerfCounter.print), \
                    so the headroom cannot be checked"
                .into(),
        );
    };
    let fraction = heap.used as f64 / heap.max as f64;
    if fraction >= DUMP_HEAP_FRACTION {
        return Err(format!(
            "refused: the heap is {:.0}% full ({} of its {} maximum in use, garbage included); \
             a dump runs a full GC and walks every object, which this close to the limit can \
             kill the JVM, as it did in incident 004",
            fraction * 100.0,
            format::bytes(heap.used as f64),
            format::bytes(heap.max as f64)
        ));
    }
    // The dump holds the live objects, each with a record header and 8-byte ids: up to
    // about twice their heap size for small objects (a 446 MiB heap of HashMap entries
    // dumped to 714 MiB here).
    let needed = heap.used.saturating_mul(2).saturating_add(64 << 20);
    match free_disk {
        Some(free) if free < needed => Err(format!(
            "refused: {} free on the disk of the incident folder, and the dump may need {}",
            format::bytes(free as f64),
            format::bytes(needed as f64)
        )),
        None => Err("refused: the free space of the incident folder's disk cannot be read".into()),
        Some(_) => Ok(needed),
    }
}

/// A snapshot of one process: its smaps, and for a JVM its class histogram.
pub struct Snapshot {
    smaps: Result<BTreeMap<String, (u64, u64)>, String>,
    histogram: Option<(Vec<u8>, String)>,
    /// A JVM's heap sizes (`PerfCounter.print`), when read.
    pub heap: Option<HeapInfo>,
}

/// Takes one snapshot of `pid`: its smaps now, with the class histogram the caller took
/// (`jcmd` output and how the run ended) when it is a JVM and the headroom allowed one.
pub fn snapshot(pid: u32, histogram: Option<(Vec<u8>, String)>) -> Snapshot {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))
        .map(|text| parse_smaps(&text))
        .map_err(|e| format!("cannot read /proc/{pid}/smaps: {e}"));
    Snapshot {
        smaps,
        histogram,
        heap: None,
    }
}

/// Compares two snapshots of `pid` taken `seconds` apart.
pub fn compare(
    pid: u32,
    before: Snapshot,
    after: Snapshot,
    seconds: f64,
    refused: Option<&str>,
) -> ProcessGrowth {
    let mut text = format!("pid {pid}: {seconds:.0} s between the two snapshots\n");
    let mut raw = Vec::new();
    let mut headline_out = None;
    let mut class_headline = None;
    if let Some(heap) = after.heap {
        let _ = writeln!(
            text,
            "\nJVM heap (jcmd PerfCounter.print): maximum {}, committed {}, in use {} \
             (garbage included; the class histogram's total is what is live)",
            format::bytes(heap.max as f64),
            format::bytes(heap.committed as f64),
            format::bytes(heap.used as f64)
        );
    }
    if let Some(reason) = refused {
        let _ = writeln!(text, "\nclass histogram: {reason}");
    }
    if let (Some((b0, n0)), Some((b1, n1))) = (&before.histogram, &after.histogram) {
        raw.push((
            format!("class-histogram-{pid}-1.txt"),
            b0.clone(),
            n0.clone(),
        ));
        raw.push((
            format!("class-histogram-{pid}-2.txt"),
            b1.clone(),
            n1.clone(),
        ));
        let h0 = parse_class_histogram(&String::from_utf8_lossy(b0));
        let h1 = parse_class_histogram(&String::from_utf8_lossy(b1));
        if h0.is_empty() || h1.is_empty() {
            let _ = writeln!(text, "\nclass histogram: no classes read ({n0}; {n1})");
        } else {
            let (rows, total) = class_growth(&h0, &h1);
            // A class that grew in bytes without new instances is a backing array that was
            // reallocated (a HashMap's table doubling): a consequence of the objects it
            // holds, listed apart, never the headline.
            let (objects, resized): (Vec<Growth>, Vec<Growth>) =
                rows.into_iter().partition(|g| g.count > 0);
            let _ = writeln!(
                text,
                "\nJVM heap by class (jcmd GC.class_histogram, live objects after a full GC): {} in total\n\
                 {:>14} {:>6}  {:>16}  {:>14} {:9}  class",
                mib(total),
                "growth",
                "share",
                "rate",
                "instances",
                ""
            );
            render(&mut text, &objects, total, seconds, Some("instances"));
            if resized.iter().any(|g| g.bytes > 0) {
                text.push_str(
                    "  grown without new instances (a collection's backing array reallocated):\n",
                );
                render(&mut text, &resized, total, seconds, Some("instances"));
            }
            class_headline = objects.first().and_then(|top| {
                headline(top, total, seconds, "heap").map(|line| (top.bytes, line))
            });
            headline_out = class_headline.as_ref().map(|(_, line)| line.clone());
        }
    }
    match (&before.smaps, &after.smaps) {
        (Ok(m0), Ok(m1)) => {
            let rows = smaps_growth(m0, m1);
            let total: i128 = rows.iter().map(|g| g.bytes).sum();
            let _ = writeln!(
                text,
                "\nresident memory by mapping (/proc/PID/smaps; [anon] holds a JVM's or Go's heap, \
                 malloc arenas and thread stacks, [heap] malloc's brk heap): {} in total\n\
                 {:>14} {:>6}  {:>16}  mapping",
                mib(total),
                "growth",
                "share",
                "rate"
            );
            render(&mut text, &rows, total, seconds, None);
            if headline_out.is_none() {
                headline_out = rows
                    .first()
                    .and_then(|top| headline(top, total, seconds, "resident"));
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            let _ = writeln!(text, "\nsmaps: {e}");
        }
    }
    ProcessGrowth {
        text,
        raw,
        headline: headline_out,
        class_headline,
    }
}

/// Compares two heap profiles of a Go service (each the fetched bytes and how the fetch
/// ended), taken `seconds` apart: allocation sites ranked by growth of in-use bytes.
pub fn compare_go(
    before: (Vec<u8>, String),
    after: (Vec<u8>, String),
    seconds: f64,
) -> ProcessGrowth {
    let sites =
        |bytes: &[u8]| super::pprof::decode(bytes).and_then(|p| super::pprof::inuse_by_site(&p));
    let mut text = String::new();
    let mut headline_out = None;
    match (sites(&before.0), sites(&after.0)) {
        (Ok(s0), Ok(s1)) => {
            let rows = diff(&s0, &s1);
            let total: i128 = rows.iter().map(|g| g.bytes).sum();
            let _ = writeln!(
                text,
                "Go heap by allocation site (/debug/pprof/heap, in use as of the last GC): {} in total\n\
                 {:>14} {:>6}  {:>16}  {:>14} {:7}  site <- callers",
                mib(total),
                "growth",
                "share",
                "rate",
                "objects",
                ""
            );
            render(&mut text, &rows, total, seconds, Some("objects"));
            headline_out = rows
                .first()
                .and_then(|top| headline(top, total, seconds, "heap"));
        }
        (Err(e), _) | (_, Err(e)) => {
            let _ = writeln!(text, "Go heap profile: {e} ({}; {})", before.1, after.1);
        }
    }
    ProcessGrowth {
        text,
        raw: vec![
            ("heap-profile-1.pb.gz".to_string(), before.0, before.1),
            ("heap-profile-2.pb.gz".to_string(), after.0, after.1),
        ],
        headline: headline_out,
        class_headline: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERF: &str = "sun.gc.collector.1.invocations=0\n\
sun.gc.generation.0.capacity=22347776\n\
sun.gc.generation.0.maxCapacity=22347776\n\
sun.gc.generation.0.space.0.used=4248608\n\
sun.gc.generation.0.space.1.used=0\n\
sun.gc.generation.0.space.2.used=2228224\n\
sun.gc.generation.0.spaces=3\n\
sun.gc.generation.1.capacity=44761088\n\
sun.gc.generation.1.maxCapacity=44761088\n\
sun.gc.generation.1.space.0.used=13051968\n\
sun.gc.generation.1.space.0.capacity=44761088\n";

    #[test]
    fn heap_info_sums_the_generations_and_a_full_heap_is_not_dumped() {
        let heap = parse_perf_heap(PERF).unwrap();
        assert_eq!(
            heap,
            HeapInfo {
                max: 22_347_776 + 44_761_088,
                committed: 22_347_776 + 44_761_088,
                used: 4_248_608 + 2_228_224 + 13_051_968,
            }
        );
        assert_eq!(parse_perf_heap("sun.rt.x=1\nnot a counter\n"), None);
        // 29% full with plenty of disk: allowed, and what it may need is said.
        let needed = dump_headroom(Some(heap), Some(10 << 30)).unwrap();
        assert!(needed > heap.used, "{needed}");
        // Not enough disk, no disk figure, no heap figure: refused with the reason.
        let err = dump_headroom(Some(heap), Some(1 << 20)).unwrap_err();
        assert!(err.contains("free on the disk"), "{err}");
        assert!(dump_headroom(Some(heap), None).is_err());
        assert!(dump_headroom(None, Some(10 << 30))
            .unwrap_err()
            .contains("could not be read"));
        let full = HeapInfo {
            used: heap.max / 100 * 95,
            ..heap
        };
        let err = dump_headroom(Some(full), Some(10 << 30)).unwrap_err();
        assert!(
            err.contains("95% full") && err.contains("incident 004"),
            "{err}"
        );
    }

    const HISTOGRAM_1: &str = "12345:\n num     #instances         #bytes  class name (module)\n\
-------------------------------------------------------\n\
   1:         20000         640000  java.util.HashMap$Node (java.base@17.0.13)\n\
   2:          5000         480000  [B (java.base@17.0.13)\n\
   3:         20000         320000  java.lang.Long (java.base@17.0.13)\n\
Total         45000        1440000\n";
    const HISTOGRAM_2: &str = "12345:\n num     #instances         #bytes  class name (module)\n\
-------------------------------------------------------\n\
   1:        420000       13440000  java.util.HashMap$Node (java.base@17.0.13)\n\
   2:        420000        6720000  java.lang.Long (java.base@17.0.13)\n\
   3:          5000         470000  [B (java.base@17.0.13)\n\
   4:             1        2097168  [Ljava.util.HashMap$Node; (java.base@17.0.13)\n\
Total        845001       22727168\n";

    #[test]
    fn class_histograms_are_parsed_and_ranked_by_growth() {
        let h0 = parse_class_histogram(HISTOGRAM_1);
        assert_eq!(h0.len(), 3);
        assert_eq!(
            h0[0],
            ClassRow {
                instances: 20000,
                bytes: 640000,
                name: "java.util.HashMap$Node".into()
            }
        );
        let h1 = parse_class_histogram(HISTOGRAM_2);
        let (rows, total) = class_growth(&h0, &h1);
        assert_eq!(total, 22_727_168 - 1_440_000);
        let names: Vec<&str> = rows.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "java.util.HashMap$Node",
                "java.lang.Long",
                "[Ljava.util.HashMap$Node;",
                "[B"
            ]
        );
        assert_eq!(rows[0].count, 400_000);
        assert_eq!(rows[0].bytes, 12_800_000);
        assert_eq!(rows[3].bytes, -10_000);
        // Over 60 s: 12.2 MiB a minute, 60% of the heap's growth.
        assert_eq!(
            headline(&rows[0], total, 60.0, "heap").unwrap(),
            "memory leak: java.util.HashMap$Node +12.2 MiB/min (60% of heap growth)"
        );
    }

    #[test]
    fn smaps_is_summed_per_mapping() {
        let smaps = "00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon\n\
Rss:                 100 kB\nAnonymous:             0 kB\n\
00e03000-00e24000 rw-p 00000000 00:00 0                                  [heap]\n\
Rss:                 132 kB\nAnonymous:           132 kB\n\
7f2c4c000000-7f2c4c021000 rw-p 00000000 00:00 0 \n\
Rss:                  40 kB\nAnonymous:            40 kB\n\
7f2c50000000-7f2c50021000 rw-p 00000000 00:00 0\n\
Rss:                  60 kB\nAnonymous:            60 kB\n\
7f2c55000000-7f2c55021000 rw-p 00000000 00:00 0   /tmp/with space (deleted)\n\
Rss:                   4 kB\n";
        let m = parse_smaps(smaps);
        assert_eq!(m["/usr/bin/dbus-daemon"], (100 * 1024, 0));
        assert_eq!(m["[heap]"], (132 * 1024, 132 * 1024));
        assert_eq!(m["[anon]"], (100 * 1024, 100 * 1024));
        assert_eq!(m["/tmp/with space (deleted)"], (4 * 1024, 0));
    }

    #[test]
    fn no_histogram_near_the_limit() {
        let mut finding = crate::evidence::test_finding("svc", "memory", "rss");
        finding.limit = Some(1000.0);
        finding.current = 950.0;
        assert!(headroom(&finding).unwrap_err().contains("95% of the limit"));
        finding.current = 500.0;
        assert!(headroom(&finding).is_ok());
        finding.limit = None;
        assert!(headroom(&finding).is_ok());
    }

    #[test]
    fn hostile_class_names_are_escaped() {
        let rows = parse_class_histogram("   1:   1   16  evil\u{1b}]0;x\u{7}Name (m)\n");
        assert_eq!(rows[0].name, "evil\\e]0;x\\x07Name");
    }
}
