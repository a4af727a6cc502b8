#!/usr/bin/env python3
"""The agent's whole cost per sample against netdata's apps.plugin, side by side in one run
(issue 16 part 5).

Starts the synthetic population of ../shared/bench (300 x S processes, 40 threads, 30 files
and 20 TCP connection pairs each) and, in alternating rounds on the same population:

  - runs a release `leakwatch agent --interval 1s` (default config otherwise: production
    preset, embedded store in a fresh data dir) and measures, after a warm-up, the CPU
    (user + system) of each of its threads over the measured seconds, divided by the
    samples it took in them (`/api/v1/agent`): sampling (lw-sampler), storage (lw-writer),
    detection (lw-detect) and the rest (HTTP, alerts, evidence, main);
  - runs netdata's apps.plugin at its 1 s update and measures its CPU per iteration (one
    iteration a second; it exits when its stdin closes, so a pipe is held open).

Rounds alternate (agent, apps.plugin, agent, ...) so that drift on a shared machine hits
both; the table gives medians. Needs root (the agent reads every process) and netdata's
apps.plugin (`apt-get install netdata-core`), a release build
(`cargo build --release -p leakwatch`) or --bin.

    python3 bench/agent_cost.py                       # 1x and 4x, 3 rounds of 60 s
    python3 bench/agent_cost.py --scales 1 --rounds 1 --seconds 20   # a try

What it does not measure: the agent's detection once its window is full (8,640 samples, 2.4
hours at 1 s: each pass re-reads the live targets' window, so passes grow until then; see
"Detection time and the store's catalog" and the soaks in BENCHMARKS.md §2).
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "bench")
OUT = os.path.join(ROOT, "target", "bench")
APPS = "/usr/lib/netdata/plugins.d/apps.plugin"
TCK = os.sysconf("SC_CLK_TCK")
STAGES = {"lw-sampler": "sampling", "lw-writer": "storage", "lw-detect": "detection"}


def cpu_of(path):
    """CPU seconds (user + system) from a stat file, and the comm it names."""
    with open(path, "rb") as f:
        data = f.read()
    comm = data[data.index(b"(") + 1:data.rindex(b")")].decode(errors="replace")
    fields = data.rsplit(b")", 1)[1].split()
    return comm, (int(fields[11]) + int(fields[12])) / TCK


def threads_cpu(pid):
    """CPU seconds per stage of a process's threads (dead threads' CPU is in no task: the
    process total keeps it, so 'other' is the total minus the named stages)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            comm, cpu = cpu_of(f"/proc/{pid}/task/{tid}/stat")
        except (FileNotFoundError, ProcessLookupError):
            continue
        stage = STAGES.get(comm)
        if stage:
            out[stage] = out.get(stage, 0.0) + cpu
    # The process's stat counts its live and dead threads (not its children: the agent
    # starts none here, with no findings to capture evidence for).
    _, out["total"] = cpu_of(f"/proc/{pid}/stat")
    return out


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def agent_round(binary, port, warmup, seconds):
    data = tempfile.mkdtemp(prefix="lw-cost-")
    log = open(os.path.join(data, "agent.log"), "w")
    proc = subprocess.Popen([binary, "agent", "--interval", "1s", "--data-dir", data,
                             "--listen", f"127.0.0.1:{port}"], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}/api/v1/agent"
    try:
        for _ in range(300):
            try:
                get_json(url)
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(warmup)
        a, s0 = threads_cpu(proc.pid), get_json(url)
        time.sleep(seconds)
        b, s1 = threads_cpu(proc.pid), get_json(url)
        samples = s1["samples"] - s0["samples"]
        if samples <= 0:
            raise SystemExit(f"the agent took no samples in {seconds} s (see {data}/agent.log)")
        row = {k: (b.get(k, 0.0) - a.get(k, 0.0)) * 1000 / samples for k in b}
        row["other"] = row["total"] - sum(row.get(k, 0.0) for k in STAGES.values())
        row["samples"] = samples
        row["detect_runs"] = s1["detect_runs"] - s0["detect_runs"]
        row["targets"] = s1["targets"]
        row["rss_mb"] = s1["rss_bytes"] / 1e6
        return row
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def apps_round(warmup, seconds):
    env = dict(os.environ, NETDATA_CONFIG_DIR="/etc/netdata",
               NETDATA_USER_CONFIG_DIR="/etc/netdata",
               NETDATA_STOCK_CONFIG_DIR="/usr/lib/netdata/conf.d")
    proc = subprocess.Popen([APPS, "1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    try:
        time.sleep(warmup)  # its first iterations build its caches
        _, before = cpu_of(f"/proc/{proc.pid}/stat")
        start = time.time()
        time.sleep(seconds)
        _, after = cpu_of(f"/proc/{proc.pid}/stat")
        iterations = time.time() - start  # one a second
        return (after - before) * 1000 / iterations
    finally:
        proc.kill()
        proc.wait()


def measure_scale(scale, args, per_round, old_pid_max, pid_max_path):
    procs = 300 * scale
    if procs * 41 > int(old_pid_max) * 0.8:
        open(pid_max_path, "w").write("4194304")
    life = args.rounds * per_round + 120
    pop = subprocess.Popen([f"{OUT}/population", str(procs), "40", "30", "20", str(life)],
                           stdout=subprocess.PIPE, text=True)
    try:
        ready = pop.stdout.readline().strip()
        time.sleep(2)
        agents, apps = [], []
        for r in range(args.rounds):
            agents.append(agent_round(args.bin, args.port, args.warmup, args.seconds))
            apps.append(apps_round(args.warmup, args.seconds))
            a = agents[-1]
            print(f"{scale}x round {r + 1}: agent {a['total']:.1f} ms/sample "
                  f"(sampling {a.get('sampling', 0):.1f}, storage {a.get('storage', 0):.1f}, "
                  f"detection {a.get('detection', 0):.1f}, other {a['other']:.1f}; "
                  f"{a['samples']} samples, {a['detect_runs']} detection passes, "
                  f"{a['targets']} targets); apps.plugin {apps[-1]:.1f} ms/iteration",
                  file=sys.stderr)
        med = lambda k: statistics.median(a.get(k, 0.0) for a in agents)
        return {"scale": scale, "population": ready, "rounds": agents,
                "apps_plugin_ms": apps, "agent_ms": med("total"),
                "sampling_ms": med("sampling"), "storage_ms": med("storage"),
                "detection_ms": med("detection"), "other_ms": med("other"),
                "apps_ms": statistics.median(apps)}
    finally:
        pop.send_signal(signal.SIGTERM)
        pop.wait()
        time.sleep(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", default="1,4")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=60, help="measured seconds per round")
    ap.add_argument("--warmup", type=int, default=20, help="seconds before measuring")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/leakwatch"))
    ap.add_argument("--port", type=int, default=19471)
    ap.add_argument("--json", action="store_true", help="print the raw rows as JSON too")
    args = ap.parse_args()
    if not os.path.exists(APPS):
        sys.exit(f"{APPS} not found: apt-get install netdata-core")
    if not os.path.exists(args.bin):
        sys.exit(f"{args.bin} not found: cargo build --release -p leakwatch, or --bin")
    os.makedirs(OUT, exist_ok=True)
    subprocess.run(["gcc", "-O2", "-o", f"{OUT}/population", f"{SHARED}/population.c",
                    "-lpthread"], check=True)
    pid_max_path = "/proc/sys/kernel/pid_max"
    old_pid_max = open(pid_max_path).read().strip()
    # The port must be free: another agent there would answer for the one measured.
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{args.port}/", timeout=2)
        answered = True
    except urllib.error.HTTPError:
        answered = True
    except OSError:
        answered = False
    if answered:
        sys.exit(f"something already answers on 127.0.0.1:{args.port}: pass --port")
    results = []
    per_round = 2 * (args.seconds + args.warmup + 5)
    try:
        for scale in [int(s) for s in args.scales.split(",")]:
            results.append(measure_scale(scale, args, per_round, old_pid_max, pid_max_path))
    finally:
        open(pid_max_path, "w").write(old_pid_max)
    print(f"| population | agent CPU per 1 s sample (median of {args.rounds}) | sampling | "
          "storage | detection | other | apps.plugin per iteration | agent / apps.plugin |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['scale']}x ({r['population']}) | {r['agent_ms']:.1f} ms | "
              f"{r['sampling_ms']:.1f} ms | {r['storage_ms']:.1f} ms | "
              f"{r['detection_ms']:.1f} ms | {r['other_ms']:.1f} ms | {r['apps_ms']:.1f} ms | "
              f"{r['agent_ms'] / r['apps_ms']:.2f}x |")
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
