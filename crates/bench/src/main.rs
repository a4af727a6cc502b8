//! `leakwatch-bench`: what one sample of this host costs, measured side by side in one run.
//!
//! Prints, as `key value` lines (the bench script turns them into ratios):
//! - `cold_cpu_ms`: CPU of a first pass of a new sampler (every file read, nothing cached);
//! - `steady_cpu_ms` / `steady_p90_cpu_ms` / `steady_max_cpu_ms`: CPU per pass once caches are warm, over
//!   `--passes` passes (so staggered revalidation is included in the mean);
//! - `procfs_cpu_ms`: the same naive full read done with the `procfs` crate, to justify the
//!   hand-written parsers by measurement;
//! - host shape: processes, threads, fds, TCP sockets seen.
//!
//! CPU is the calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), not wall time, so a
//! noisy neighbour on the shared machine changes the numbers less.

use leakwatch_proc::{Options, Sampler, Selection};
use std::time::Duration;

fn thread_cpu_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// The naive full pass through the `procfs` crate: stat, status, every thread's stat (for
/// its comm), every fd's target, and the TCP tables.
fn procfs_pass() -> (u64, u64) {
    let mut threads = 0u64;
    let mut fds = 0u64;
    for process in procfs::process::all_processes().expect("procfs").flatten() {
        let _ = process.stat();
        let _ = process.status();
        if let Ok(tasks) = process.tasks() {
            for task in tasks.flatten() {
                if let Ok(stat) = task.stat() {
                    threads += 1;
                    std::hint::black_box(stat.comm);
                }
            }
        }
        if let Ok(iter) = process.fd() {
            for fd in iter.flatten() {
                fds += 1;
                std::hint::black_box(fd.target);
            }
        }
    }
    let _ = std::hint::black_box(procfs::net::tcp());
    let _ = std::hint::black_box(procfs::net::tcp6());
    (threads, fds)
}

fn main() {
    let mut passes = 32u32;
    let mut interval_ms = 0u64;
    let mut skip_procfs = false;
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--passes" => {
                passes = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--passes N")
            }
            "--interval-ms" => {
                interval_ms = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--interval-ms N")
            }
            "--no-procfs" => skip_procfs = true,
            // Ablations, to see where a pass's time goes.
            "--no-sockets" => options.sockets = false,
            "--no-thread-names" => options.thread_names = false,
            "--no-fd-details" => options.fd_details = false,
            "--revalidate-every" => {
                options.revalidate_every = args.next().and_then(|v| v.parse().ok()).expect("N")
            }
            _ => {
                eprintln!("usage: leakwatch-bench [--passes N] [--interval-ms MS] [--no-procfs] [--no-sockets] [--no-thread-names] [--no-fd-details] [--revalidate-every N]");
                std::process::exit(2);
            }
        }
    }

    // A cold pass is one pass of a new sampler: nothing cached. Take the median of five,
    // since a single pass on a shared machine is noisy.
    let mut colds = Vec::new();
    let mut sampler = None;
    let mut first = None;
    for _ in 0..5 {
        let before = thread_cpu_us();
        let mut fresh = Sampler::new(options.clone(), Selection::All).expect("sampler");
        let sample = fresh.sample().expect("first pass");
        colds.push(thread_cpu_us() - before);
        sampler = Some(fresh);
        first = Some(sample);
    }
    let (mut sampler, first) = (sampler.unwrap(), first.unwrap());
    colds.sort_unstable();
    let cold = colds[colds.len() / 2];
    let threads: u64 = first
        .processes
        .iter()
        .map(|p| u64::from(p.threads.total))
        .sum();
    let fds: u64 = first.processes.iter().map(|p| u64::from(p.fds.total)).sum();
    let tcp: u64 = first
        .processes
        .iter()
        .map(|p| u64::from(p.sockets.tcp_total()))
        .sum();
    println!("processes {}", first.processes.len());
    println!("threads {threads}");
    println!("fds {fds}");
    println!("tcp_sockets_owned {tcp}");
    println!("cold_cpu_ms {}", ms(cold));
    println!("cold_reads {}", first.stats.reads);

    let mut costs = Vec::new();
    let mut reads = 0u64;
    for _ in 0..passes {
        if interval_ms > 0 {
            std::thread::sleep(Duration::from_millis(interval_ms));
        }
        let before = thread_cpu_us();
        let sample = sampler.sample().expect("pass");
        costs.push(thread_cpu_us() - before);
        reads += sample.stats.reads;
    }
    costs.sort_unstable();
    let mean = costs.iter().sum::<u64>() / costs.len().max(1) as u64;
    println!("steady_cpu_ms {}", ms(mean));
    println!(
        "steady_p90_cpu_ms {}",
        ms(costs[(costs.len() * 9 / 10).min(costs.len() - 1)])
    );
    println!("steady_max_cpu_ms {}", ms(*costs.last().unwrap()));
    println!("steady_reads_per_pass {}", reads / u64::from(passes.max(1)));
    println!("cache_entries {}", sampler_cache_entries(&mut sampler));

    if !skip_procfs {
        // Two runs, keep the cheaper: the first warms the kernel's dentry cache as ours did.
        let mut best = u64::MAX;
        for _ in 0..2 {
            let before = thread_cpu_us();
            std::hint::black_box(procfs_pass());
            best = best.min(thread_cpu_us() - before);
        }
        println!("procfs_cpu_ms {}", ms(best));
    }
}

fn sampler_cache_entries(sampler: &mut Sampler) -> u64 {
    sampler.sample().map(|s| s.stats.cache_entries).unwrap_or(0)
}
