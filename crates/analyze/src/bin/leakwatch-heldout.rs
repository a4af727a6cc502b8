//! `leakwatch-heldout`: draws the randomized corpus from a seed set, replays every draw
//! online through the engine and the baselines, and prints per-class tables (markdown for
//! BENCHMARKS.md, or JSON).

use leakwatch_analyze::evaluate::{
    evaluate, live, live_markdown, markdown, summarize, EvalOptions, History,
};
use leakwatch_analyze::generate::{
    draws, generate, Class, DrawSpec, INTERVALS, PUBLISHED_SEEDS, TUNING_SEEDS,
};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: leakwatch-heldout [--seeds tuning|published|N,N...] [--per-class N] [--evaluations N]
                         [--history all|agent] [--threads N] [--class NAME]... [--set PARAM=VALUE]...
                         [--details N] [--live N] [--infer-restarts] [--json | --json-out FILE]
       leakwatch-heldout --explain ID --at HOURS [--history all|agent] [--set PARAM=VALUE]...
       leakwatch-heldout --dump ID [--restarts-to FILE]
       leakwatch-heldout --list [--seeds ...] [--per-class N] [--class NAME]...

Draws --per-class series (default 12) of every class from every seed of the set (default:
the tuning seeds), each at 1 s, 10 s, 1 min or 5 min in turn, and evaluates the engine
(Params::for_interval, the production preset) online at --evaluations times per series
(default 300, at least 6 intervals apart), each seeing only what was known then; the
baselines static 75% and predict_linear(x[6h], 4h) > limit at every sample.

--seeds published is the held-out set of BENCHMARKS.md: never tune on it.
--history agent judges only the last 8,640 intervals (and the persistence look-back),
as the agent's detector does; all (the default) judges everything up to each time, as
`leakwatch analyze` does.
--details N lists the first N false alarms and misses with what was drawn (default 30).
--live N adds the fast-preset check at 1 s: N steady leaks and N flat controls.
--infer-restarts gives every draw without restart records the restarts inferred from its
resets, as `leakwatch analyze --infer-restarts` does.
--json prints everything (every draw's scores) as JSON instead of the tables; --json-out
FILE writes it to FILE as well as printing the tables.
--explain prints the engine's reasoning on draw ID (e.g. fill/s101/3) HOURS after its start.
--dump prints draw ID as CSV (time,series,value,limit) for `leakwatch analyze`; its
restarts go to --restarts-to FILE as time,target,reason.";

struct Args {
    seeds: Vec<u64>,
    per_class: usize,
    classes: Vec<Class>,
    options: EvalOptions,
    json: bool,
    json_out: Option<String>,
    details: usize,
    live: usize,
    explain: Option<String>,
    at: Option<f64>,
    dump: Option<String>,
    restarts_to: Option<String>,
    list: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seeds: TUNING_SEEDS.to_vec(),
        per_class: 12,
        classes: Vec::new(),
        options: EvalOptions {
            progress: true,
            ..EvalOptions::default()
        },
        json: false,
        json_out: None,
        details: 30,
        live: 0,
        explain: None,
        at: None,
        dump: None,
        restarts_to: None,
        list: false,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(arg) = iter.next() {
        let mut value = |name: &str| iter.next().ok_or_else(|| format!("{name} needs a value"));
        let positive = |name: &str, text: String| -> Result<usize, String> {
            text.parse()
                .ok()
                .filter(|n: &usize| *n > 0)
                .ok_or_else(|| format!("{name} needs a positive number"))
        };
        match arg.as_str() {
            "--seeds" => {
                args.seeds = match value("--seeds")?.as_str() {
                    "tuning" => TUNING_SEEDS.to_vec(),
                    "published" => PUBLISHED_SEEDS.to_vec(),
                    list => list
                        .split(',')
                        .map(|s| s.trim().parse().map_err(|_| format!("bad seed {s:?}")))
                        .collect::<Result<_, _>>()?,
                }
            }
            "--per-class" => args.per_class = positive("--per-class", value("--per-class")?)?,
            "--evaluations" => {
                args.options.evaluations = positive("--evaluations", value("--evaluations")?)?
            }
            "--threads" => args.options.threads = positive("--threads", value("--threads")?)?,
            "--details" => {
                args.details = value("--details")?
                    .parse()
                    .map_err(|_| "--details needs a number")?
            }
            "--live" => args.live = positive("--live", value("--live")?)?,
            "--history" => {
                args.options.history = match value("--history")?.as_str() {
                    "all" => History::All,
                    "agent" => History::Agent,
                    other => return Err(format!("--history: all or agent, not {other:?}")),
                }
            }
            "--class" => {
                let name = value("--class")?;
                args.classes
                    .push(Class::parse(&name).ok_or_else(|| format!("no class named {name:?}"))?);
            }
            "--set" => args.options.overrides.push(value("--set")?),
            "--json" => args.json = true,
            "--infer-restarts" => args.options.infer_restarts = true,
            "--json-out" => args.json_out = Some(value("--json-out")?),
            "--explain" => args.explain = Some(value("--explain")?),
            "--at" => {
                args.at = Some(
                    value("--at")?
                        .parse()
                        .map_err(|_| "--at needs a number of hours")?,
                )
            }
            "--dump" => args.dump = Some(value("--dump")?),
            "--restarts-to" => args.restarts_to = Some(value("--restarts-to")?),
            "--list" => args.list = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.classes.is_empty() {
        args.classes = Class::ALL.to_vec();
    }
    Ok(args)
}

/// `class/sSEED/INDEX` back to its draw.
fn parse_id(id: &str) -> Result<DrawSpec, String> {
    let bad = || format!("draw id {id:?}: expected CLASS/sSEED/INDEX, e.g. fill/s101/3");
    let mut parts = id.split('/');
    let class = parts.next().and_then(Class::parse).ok_or_else(bad)?;
    let seed = parts
        .next()
        .and_then(|s| s.strip_prefix('s'))
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let index: usize = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let intervals = class.intervals();
    Ok(DrawSpec {
        class,
        seed,
        index,
        interval: intervals[index % intervals.len()],
    })
}

fn explain(id: &str, hours: f64, options: &EvalOptions) -> Result<(), String> {
    let spec = parse_id(id)?;
    let mut generated = generate(&spec);
    if options.infer_restarts && generated.case.restarts.is_empty() {
        generated.case.restarts =
            leakwatch_analyze::evaluate::inferred_restarts(&generated.case.series);
    }
    let params = options.params(spec.interval)?;
    let case = &generated.case;
    let now = case.start + hours * 3600.0;
    let from = match options.history {
        History::All => f64::NEG_INFINITY,
        History::Agent => now - leakwatch_analyze::evaluate::AGENT_WINDOW_INTERVALS * spec.interval,
    };
    println!(
        "{id}: {} at {} s, {:.1}h: {}",
        generated.case.name,
        spec.interval,
        (case.end - case.start) / 3600.0,
        generated.notes
    );
    for series in &case.series {
        let points = series
            .points
            .iter()
            .filter(|p| p.t > from)
            .copied()
            .collect();
        let visible = leakwatch_detect::Series::new(series.key.clone(), points, series.limit);
        let restarts: Vec<_> = case
            .restarts
            .iter()
            .filter(|r| r.t > from)
            .cloned()
            .collect();
        println!("{}:", series.key);
        for line in leakwatch_detect::explain(&visible, &restarts, now, &params) {
            println!("  {line}");
        }
    }
    Ok(())
}

fn dump(id: &str, restarts_to: Option<&str>) -> Result<(), String> {
    let spec = parse_id(id)?;
    let generated = generate(&spec);
    let mut out = String::from("time,series,value,limit\n");
    for series in &generated.case.series {
        let limit = series.limit.map(|l| l.to_string()).unwrap_or_default();
        for p in &series.points {
            out.push_str(&format!("{},{},{},{limit}\n", p.t, series.key, p.v));
        }
    }
    print!("{out}");
    if let Some(path) = restarts_to {
        let mut text = String::from("time,target,reason\n");
        for r in &generated.case.restarts {
            text.push_str(&format!("{},{},{}\n", r.t, r.target, r.reason));
        }
        std::fs::write(path, text).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("leakwatch-heldout: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = if let Some(id) = &args.explain {
        match args.at {
            Some(hours) => explain(id, hours, &args.options),
            None => Err("--explain needs --at HOURS".to_string()),
        }
    } else if let Some(id) = &args.dump {
        dump(id, args.restarts_to.as_deref())
    } else {
        run(&args)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("leakwatch-heldout: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let specs = draws(&args.seeds, &args.classes, args.per_class);
    if args.list {
        for spec in &specs {
            let generated = generate(spec);
            println!(
                "{} {} s {} samples: {}",
                spec.id(),
                spec.interval,
                generated.case.sample_count(),
                generated.notes
            );
        }
        return Ok(());
    }
    let started = Instant::now();
    let scores = evaluate(&specs, &args.options)?;
    let summary = summarize(&scores);
    let live_scores = (args.live > 0).then(|| live(args.seeds[0], args.live));
    let report = serde_json::json!({
            "seeds": args.seeds,
            "per_class": args.per_class,
            "evaluations": args.options.evaluations,
            "history": args.options.history,
            "overrides": args.options.overrides,
            "summary": summary,
            "draws": scores,
            "live": live_scores,
    });
    let report = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    if let Some(path) = &args.json_out {
        std::fs::write(path, &report).map_err(|e| format!("{path}: {e}"))?;
    }
    if args.json {
        println!("{report}");
    } else {
        println!(
            "Seeds {:?}, {} per class, intervals {:?} s, {} evaluations per series, history: {:?}{}.\n",
            args.seeds,
            args.per_class,
            INTERVALS,
            args.options.evaluations,
            args.options.history,
            if args.options.overrides.is_empty() {
                String::new()
            } else {
                format!(", overrides {:?}", args.options.overrides)
            }
        );
        print!("{}", markdown(&scores, &summary, args.details));
        if let Some(live_scores) = &live_scores {
            println!(
                "\nLive check, Params::fast(1 s), every sample ({} leaks, {} controls):\n",
                args.live, args.live
            );
            print!("{}", live_markdown(live_scores));
        }
    }
    eprintln!(
        "evaluated {} draws in {:.0}s",
        scores.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
