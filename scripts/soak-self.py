#!/usr/bin/env python3
"""The self-soak benchmark (issue 16 part 4; BENCHMARKS.md, "Soak: the agent against itself").

Runs a release `leakwatch agent` (fast preset, 1 s) inside a memory cgroup of its own (v1
or v2; 1 GiB, so a leak cannot take the host down), then churns the host for --churn
seconds and stays quiet for --quiet seconds, recording the agent's memory, threads, fds,
targets and detection time every --every seconds into OUT/soak.csv. Churn, per second:
  - ~5 short `sleep`s from a shell loop (processes the agent must forget),
  - one new program name (a copy of a tiny Python script, `churn-WORD.py`, alive ~5 s): a
    new target each when the agent admits it, which it must evict when it is gone,
  - a long-lived Python process starting 20 threads a second, each with a unique,
    non-numeric name that lives ~1 s (thread groups the agent must bound).
At the end it prints the curve summary: RSS at the end of the first hour, at the end of
the churn and at the end, and the growth over each half.

    python3 scripts/soak-self.py --churn 3600 --quiet 3600 --out /tmp/soak
    python3 scripts/soak-self.py --churn 120 --quiet 60 --out /tmp/soak-short   # a try
    python3 scripts/soak-self.py --compare LEAKWATCH_MALLOC_TRIM=0 ...   # two agents, side by side
    python3 scripts/soak-self.py --compare-bin /tmp/old/leakwatch ...    # against another build

With --compare NAME=VALUE a second agent runs beside the first through the same churn,
with that environment variable set (its own cgroup, port and data dir): a side-by-side
comparison on one noisy machine; with --compare-bin PATH the second agent is another
build. Rows then carry the agent's label.

Needs root (cgroup) and a release build (`cargo build --release -p leakwatch`), or --bin.
"""
import argparse
import csv
import json
import os
import random
import shutil
import signal
import string
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

THREADS = r"""
import random, string, threading, time
def word():
    return "".join(random.choice(string.ascii_lowercase) for _ in range(8))
def life():
    time.sleep(1.0)
while True:
    for _ in range(20):
        threading.Thread(target=life, name="soak-" + word(), daemon=True).start()
    time.sleep(1.0)
"""

SHORT = "import time\ntime.sleep(5)\n"


def make_cgroup(name, limit):
    """A memory cgroup for the agent: v2 if mounted unified, else v1. Returns the procs file."""
    v2 = "/sys/fs/cgroup/cgroup.controllers"
    if os.path.exists(v2) and "memory" in open(v2).read():
        path = f"/sys/fs/cgroup/{name}"
        os.makedirs(path, exist_ok=True)
        open(f"{path}/memory.max", "w").write(str(limit))
        return f"{path}/cgroup.procs", path
    path = f"/sys/fs/cgroup/memory/{name}"
    os.makedirs(path, exist_ok=True)
    open(f"{path}/memory.limit_in_bytes", "w").write(str(limit))
    return f"{path}/cgroup.procs", path


def status(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "Threads"):
            out[key] = int(value.split()[0])
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


def agent_info(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/agent", timeout=5) as r:
            return json.load(r)
    except Exception:
        return {}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--churn", type=int, default=3600, help="seconds of churn")
    ap.add_argument("--quiet", type=int, default=3600, help="seconds of quiet after it")
    ap.add_argument("--every", type=int, default=30, help="seconds between records")
    ap.add_argument("--out", default="/tmp/leakwatch-soak")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/leakwatch"))
    ap.add_argument("--port", type=int, default=19890)
    ap.add_argument("--compare", metavar="NAME=VALUE",
                    help="also run a second agent with this environment variable set")
    ap.add_argument("--compare-bin", metavar="PATH",
                    help="also run a second agent from this binary (e.g. a build of an "
                         "earlier commit), labelled by its path")
    args = ap.parse_args()
    if args.compare and args.compare_bin:
        sys.exit("soak-self: --compare or --compare-bin, not both")
    if os.geteuid() != 0:
        sys.exit("soak-self: needs root for the memory cgroup")
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(f"{args.out}/progs")
    variants = [("default", {}, args.bin)]
    if args.compare:
        name, _, value = args.compare.partition("=")
        variants.append((args.compare, {name: value}, args.bin))
    if args.compare_bin:
        if not os.access(args.compare_bin, os.X_OK):
            sys.exit(f"soak-self: {args.compare_bin} is not an executable")
        variants.append((args.compare_bin, {}, args.compare_bin))
    agents = []
    for i, (label, env, binary) in enumerate(variants):
        port = args.port + i
        config = f"{args.out}/agent-{i}.toml"
        open(config, "w").write(
            f'[agent]\ninterval = "1s"\nlisten = "127.0.0.1:{port}"\n[detect]\npreset = "fast"\n'
        )
        procs, cgroup = make_cgroup(f"leakwatch-soak-{os.getpid()}-{i}", 1 << 30)
        log = open(f"{args.out}/agent-{i}.log", "w")
        process = subprocess.Popen(
            [binary, "agent", "--config", config, "--data-dir", f"{args.out}/data-{i}"],
            stdout=log, stderr=log, start_new_session=True, env={**os.environ, **env},
            preexec_fn=lambda procs=procs: open(procs, "w").write(str(os.getpid())),
        )
        agents.append({"label": label, "process": process, "port": port, "cgroup": cgroup, "rows": []})
    children = []

    def churn_start():
        sleeps = subprocess.Popen(
            ["bash", "-c", "while :; do for i in 1 2 3 4 5; do sleep 0.$((RANDOM%9+1)) & done; wait; done"],
            start_new_session=True)
        threads = subprocess.Popen([sys.executable, "-c", THREADS], start_new_session=True)
        children.extend([sleeps, threads])

    def churn_stop():
        for child in children:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            child.wait()
        children.clear()

    started = time.time()
    rows = []
    writer = csv.writer(open(f"{args.out}/soak.csv", "w", newline=""))
    writer.writerow(["agent", "t_s", "phase", "rss_kb", "rss_anon_kb", "threads", "fds", "targets", "last_detect_ms", "samples", "store_catalog_slots", "detect_catalog_slots"])
    churn_start()
    n = 0
    next_record = started
    shorts = []
    try:
        while True:
            now = time.time()
            t = now - started
            if t >= args.churn + args.quiet:
                break
            phase = "churn" if t < args.churn else "quiet"
            if phase == "quiet" and children:
                churn_stop()
            if phase == "churn":
                n += 1
                word = "".join(random.choice(string.ascii_lowercase) for _ in range(8))
                prog = f"{args.out}/progs/churn-{word}.py"
                open(prog, "w").write(SHORT)
                shorts.append(subprocess.Popen([sys.executable, prog]))
                for p in [p for p in shorts if p.poll() is not None]:
                    shorts.remove(p)
                    os.unlink(p.args[1])
            for i, a in enumerate(agents):
                if a["process"].poll() is not None:
                    sys.exit(f"soak-self: agent {a['label']} exited ({a['process'].returncode}); see {args.out}/agent-{i}.log")
            if now >= next_record:
                for a in agents:
                    st = status(a["process"].pid)
                    info = agent_info(a["port"])
                    row = [round(t), phase, st["VmRSS"], st["RssAnon"], st["Threads"], st["fds"],
                           info.get("targets"), round(info.get("last_detect_us", 0) / 1000, 1), info.get("samples"),
                           info.get("store_catalog_slots"), info.get("detect_catalog_slots")]
                    writer.writerow([a["label"]] + row)
                    a["rows"].append(row)
                    print(a["label"], *row, flush=True)
                next_record += args.every
            time.sleep(1.0)
    finally:
        churn_stop()
        for p in shorts:
            p.kill()
        for a in agents:
            a["process"].send_signal(signal.SIGTERM)
            a["process"].wait(timeout=30)
            try:
                os.rmdir(a["cgroup"])
            except OSError:
                pass

    for a in agents:
        rows = a["rows"]

        def at(seconds):
            return min(rows, key=lambda r: abs(r[0] - seconds))

        first_hour = at(min(3600, args.churn))
        end_churn = at(args.churn)
        end = rows[-1]
        quiet = [r[2] for r in rows if r[1] == "quiet"]
        print(f"\n[{a['label']}]")
        print(f"RSS (kB): start {rows[0][2]}, at {first_hour[0]} s {first_hour[2]}, end of churn {end_churn[2]}, end {end[2]}")
        if quiet:
            mid = (max(quiet) + min(quiet)) / 2
            print(f"RSS when quiet (kB): {min(quiet)}-{max(quiet)}, +/-{(max(quiet) - min(quiet)) / 2 / mid * 100:.1f}% around {mid:.0f}")
        print(f"RssAnon (kB): start {rows[0][3]}, at {first_hour[0]} s {first_hour[3]}, end of churn {end_churn[3]}, end {end[3]}")
        print(f"threads {min(r[4] for r in rows)}-{max(r[4] for r in rows)}, fds {min(r[5] for r in rows)}-{max(r[5] for r in rows)}, "
              f"detection {max(r[7] for r in rows if r[7] is not None)} ms at most; {n} programs churned")


if __name__ == "__main__":
    main()
