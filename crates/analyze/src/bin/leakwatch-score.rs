//! `leakwatch-score`: replays the synthetic corpus through the engine and the baselines
//! and prints the scores as a markdown table (for BENCHMARKS.md) or JSON.

use leakwatch_analyze::corpus::corpus_with_seed;
use leakwatch_analyze::score::{markdown, score_corpus, totals, ScoreOptions};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: leakwatch-score [--json] [--evaluations N] [--threads N] [--seed N] [--set PARAM=VALUE]... [--case NAME]...
       leakwatch-score --explain NAME --at HOURS

Replays every case of the synthetic corpus through leakwatch-detect, a static 75%-of-limit
threshold and predict_linear(x[6h], 4h) > limit, evaluating each case N times (default
400) with only the samples known at each time, and prints per-case and total scores.
Exits 1 when a leak is missed or a healthy case raises a leak alarm.

--seed N draws the same scenarios with other random numbers (0, the default, is the
reference corpus).

--set overrides one engine parameter (a field of leakwatch_detect::Params, see
docs/detection.md), e.g. --set trend_p_value=0.001, to see how scores depend on it.

--explain prints the engine's reasoning for every series of case NAME, HOURS after the
case starts: each regime it judged and why it was or was not a leak.";

struct Args {
    json: bool,
    explain: Option<(String, f64)>,
    seed: u64,
    options: ScoreOptions,
    cases: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        json: false,
        explain: None,
        seed: 0,
        options: ScoreOptions::default(),
        cases: Vec::new(),
    };
    let mut iter = std::env::args().skip(1);
    while let Some(arg) = iter.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            iter.next()
                .and_then(|v| v.parse().ok())
                .filter(|n: &usize| *n > 0)
                .ok_or_else(|| format!("{name} needs a positive number"))
        };
        match arg.as_str() {
            "--json" => args.json = true,
            "--evaluations" => args.options.evaluations = number("--evaluations")?,
            "--threads" => args.options.threads = number("--threads")?,
            "--set" => {
                let assignment = iter.next().ok_or("--set needs PARAM=VALUE")?;
                leakwatch_analyze::score::set_param(&mut args.options.params, &assignment)?;
            }
            "--seed" => {
                args.seed = iter
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--seed needs a number")?
            }
            "--case" => args
                .cases
                .push(iter.next().ok_or("--case needs a case name")?),
            "--explain" => {
                let name = iter.next().ok_or("--explain needs a case name")?;
                args.explain = Some((name, args.explain.map_or(f64::NAN, |e| e.1)));
            }
            "--at" => {
                let hours: f64 = iter
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--at needs a number of hours")?;
                let name = args.explain.take().map(|e| e.0).unwrap_or_default();
                args.explain = Some((name, hours));
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

fn explain(name: &str, hours: f64, seed: u64, options: &ScoreOptions) -> ExitCode {
    let Some(case) = corpus_with_seed(seed).into_iter().find(|c| c.name == name) else {
        eprintln!("leakwatch-score: no case named {name:?}");
        return ExitCode::from(2);
    };
    if !hours.is_finite() || name.is_empty() {
        eprintln!("leakwatch-score: --explain needs both a case name and --at HOURS");
        return ExitCode::from(2);
    }
    let now = case.start + hours * 3600.0;
    for series in &case.series {
        println!("{}:", series.key);
        for line in leakwatch_detect::explain(series, &case.restarts, now, &options.params) {
            println!("  {line}");
        }
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("leakwatch-score: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Some((name, hours)) = &args.explain {
        return explain(name, *hours, args.seed, &args.options);
    }
    let started = Instant::now();
    let mut cases = corpus_with_seed(args.seed);
    if !args.cases.is_empty() {
        cases.retain(|c| args.cases.iter().any(|name| name == c.name));
        if cases.is_empty() {
            eprintln!("leakwatch-score: no case matches {:?}", args.cases);
            return ExitCode::from(2);
        }
    }
    let samples: usize = cases.iter().map(|c| c.sample_count()).sum();
    let rows = score_corpus(&cases, &args.options);
    let totals = totals(&rows);
    if args.json {
        let report = serde_json::json!({ "cases": rows, "totals": totals });
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("leakwatch-score: {error}");
                return ExitCode::from(2);
            }
        }
    } else {
        print!("{}", markdown(&rows, &totals));
        println!("\nWhat the engine said at detection:\n");
        for row in rows.iter().filter(|r| r.summary_at_detection.is_some()) {
            println!(
                "- {}: {}",
                row.case,
                row.summary_at_detection.as_deref().unwrap_or("")
            );
        }
    }
    eprintln!(
        "scored {} cases ({} samples, {} evaluations each) in {:.1}s",
        rows.len(),
        samples,
        args.options.evaluations,
        started.elapsed().as_secs_f64()
    );
    let ok = totals.leakwatch.leaks_detected == totals.leak_cases
        && totals.leakwatch.healthy_cases_with_false_alarms == 0;
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
