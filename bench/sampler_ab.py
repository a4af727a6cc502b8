#!/usr/bin/env python3
"""A/B cost of the sampler: two builds of `leakwatch-bench` alternated on one population.

The machine is shared and noisy, so the two builds are measured in turns (A B A B ...) on
the same running population, and compared by their medians over the rounds.

    # build A (e.g. the commit before a change) and B (after), each with
    #   cargo build --release -p leakwatch-bench   and copy target/release/leakwatch-bench
    python3 bench/sampler_ab.py A/leakwatch-bench B/leakwatch-bench [--rounds 4] [--files 30]

It builds ../shared/bench/population.c, starts `population 300 40 30 20` (the reference
population of bench/sampler.py: its 30 fds per process are /dev/null, devices, so they have
no path group), and with `--files N` also `--file-procs` processes (default 300) each holding
N regular files named `f-<proc>-<i>.dat` in a scratch directory, so file path groups are
made. Prints per build the median over rounds of the cold pass (median of five fresh
samplers, as leakwatch-bench reports it) and of the steady mean and p90 over `--passes`.
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "bench")


def hold_files(count, files, scratch):
    """Forks `count` children each holding `files` regular files open; returns their pids."""
    pids = []
    for p in range(count):
        pid = os.fork()
        if pid == 0:
            fds = [os.open(os.path.join(scratch, f"f-{p}-{i}.dat"), os.O_CREAT | os.O_RDWR)
                   for i in range(files)]
            signal.pause()
            os._exit(0)
        pids.append(pid)
    return pids


def run(binary, passes):
    out = subprocess.run([binary, "--passes", str(passes), "--no-procfs"], check=True,
                         capture_output=True, text=True).stdout
    return {k: float(v) for k, v in (line.split() for line in out.splitlines())}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--passes", type=int, default=48)
    parser.add_argument("--files", type=int, default=0)
    parser.add_argument("--file-procs", type=int, default=300)
    parser.add_argument("--out", default=os.path.join(ROOT, "target", "bench"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    population = os.path.join(args.out, "population")
    subprocess.run(["gcc", "-O2", "-o", population, f"{SHARED}/population.c", "-lpthread"],
                   check=True)
    pop = subprocess.Popen([population, "300", "40", "30", "20", "1800"],
                           stdout=subprocess.PIPE, text=True)
    scratch = tempfile.mkdtemp(prefix="lwab")
    holders = []
    try:
        ready = pop.stdout.readline().strip()
        if args.files:
            holders = hold_files(args.file_procs, args.files, scratch)
        time.sleep(2)
        rows = {"A": [], "B": []}
        for r in range(args.rounds):
            for name, binary in (("A", args.a), ("B", args.b)):
                row = run(binary, args.passes)
                rows[name].append(row)
                print(f"round {r + 1} {name}: cold {row['cold_cpu_ms']:.1f} ms, steady "
                      f"{row['steady_cpu_ms']:.2f} ms (p90 {row['steady_p90_cpu_ms']:.2f}), "
                      f"{int(row['processes'])} procs, {int(row['fds'])} fds", file=sys.stderr)
        print(f"population: {ready}; file holders: {len(holders)} x {args.files} files")
        print("| build | processes | fds | cold (median of rounds) | steady mean | steady p90 |")
        print("|---|---|---|---|---|---|")
        med = {}
        for name, binary in (("A", args.a), ("B", args.b)):
            rs = rows[name]
            med[name] = {k: statistics.median(r[k] for r in rs)
                         for k in ("cold_cpu_ms", "steady_cpu_ms", "steady_p90_cpu_ms")}
            print(f"| {name} `{binary}` | {int(rs[-1]['processes'])} | {int(rs[-1]['fds']):,} "
                  f"| {med[name]['cold_cpu_ms']:.1f} ms | {med[name]['steady_cpu_ms']:.2f} ms "
                  f"| {med[name]['steady_p90_cpu_ms']:.2f} ms |")
        ratios = " · ".join(f"{k.replace('_cpu_ms', '')} {med['B'][k] / med['A'][k]:.3f}x"
                            for k in ("cold_cpu_ms", "steady_cpu_ms", "steady_p90_cpu_ms"))
        print(f"\nB / A: {ratios}")
    finally:
        for pid in holders:
            os.kill(pid, signal.SIGTERM)
        for pid in holders:
            os.waitpid(pid, 0)
        shutil.rmtree(scratch, ignore_errors=True)
        pop.send_signal(signal.SIGTERM)
        pop.wait()


if __name__ == "__main__":
    main()
