#!/usr/bin/env python3
"""Runs the live scenarios against a real `leakwatch agent` and scores its findings.

    python3 scenarios/run.py [--only ID,ID] [--duration 150] [--json FILE] [--bin-dir DIR]

One agent (1-second samples, `[detect] preset = "fast"`, 127.0.0.1 only) watches every
scenario at once; each scenario is a script (`scenarios/*.sh`) that starts its workload,
prints LEAK_START when its leak begins, and stops by itself after --duration seconds. Each
scenario's processes are one `[[target]]` of the agent. `/api/v1/findings` is polled every
second; per scenario the runner reports whether the leak was detected, whether the first
leak finding named the expected series, the delay in samples from LEAK_START to the first
poll that showed it (suspected or confirmed), when the expected series was confirmed, and
false alarms (*confirmed* leak or saturation findings on a healthy target, or on a leaking
target before its leak began: what would be alerted; suspected ones are listed apart),
then prints a markdown table.

Needs: leakwatch and the testkit binaries built (`cargo build -p leakwatch -p
leakwatch-testkit --bins`), a JDK, Go, PostgreSQL 15. Python standard library only.
Exit status 0 when every leak is detected with the right attribution within --max-delay
samples and no healthy scenario raised an alarm, 1 otherwise.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


@dataclass
class Scenario:
    id: str
    leak: bool
    rule: str  # the body of the agent's [[target]] rule
    right: list = field(default_factory=list)  # (resource, attribution regex) pairs
    needs: str = ""  # "go", "java", "testkit-java", "postgres"


SCENARIOS = [
    Scenario("000-analytics-threads", True, 'cmdline = "scenario=000"',
             [("threads", r"^Analytics-#$")], "testkit-java"),
    Scenario("001-close-wait", True, 'comm = "^session-client$"',
             [("tcp", r"^CLOSE_WAIT$"), ("tcp_peer", r"^CLOSE_WAIT ")]),
    Scenario("002-goroutines-crashloop", True, 'comm = "^goleak$"',
             [("fds", r"^pipe$")], "go"),
    Scenario("003-nightly-db-connections", True, 'cmdline = "pgclient\\\\.py"',
             [("tcp", r"^ESTABLISHED$"), ("tcp_peer", r"^ESTABLISHED .*:\d+$")], "postgres"),
    Scenario("004-memoize-heap", True, 'cmdline = "scenario=004"',
             [("memory", r"^(rss|anon)$")], "java"),
    Scenario("healthy-jvm-gc-sawtooth", False, 'cmdline = "scenario=healthy-sawtooth"',
             needs="java"),
    Scenario("healthy-pool-warmup", False, 'cmdline = "scenario=healthy-pool"', needs="java"),
    Scenario("healthy-thread-bursts", False, 'cmdline = "scenario=healthy-bursts"',
             needs="java"),
    Scenario("healthy-cache-plateau", False, 'cmdline = "scenario=healthy-cache"',
             needs="java"),
    Scenario("healthy-deploy-restart", False, 'comm = "^deploy-svc$"'),
    Scenario("healthy-idle-postgres", False, 'cmdline = "lwidle"', needs="postgres"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def build_workloads(selected, build: str) -> None:
    needs = {s.needs for s in selected}
    if "java" in needs:
        subprocess.run(["javac", "-d", f"{build}/java", f"{HERE}/java/Service.java"], check=True)
    if "testkit-java" in needs:
        subprocess.run(["javac", "-d", f"{build}/testkit-java",
                        f"{ROOT}/crates/testkit/java/Analytics.java"], check=True)
    if "go" in needs:
        env = dict(os.environ, GOCACHE=f"{build}/gocache", GOFLAGS="-mod=mod")
        subprocess.run(["go", "build", "-o", f"{build}/goleak", f"{HERE}/go/goleak.go"],
                       check=True, env=env, cwd=f"{HERE}/go")


class Running:
    """One scenario script, its LEAK_START time and its output."""

    def __init__(self, scenario: Scenario, env: dict):
        self.scenario = scenario
        self.leak_start = None
        self.ports = (env["PORT1"], env["PORT2"])
        self.process = subprocess.Popen(
            ["bash", f"{HERE}/{scenario.id}.sh"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            line = line.rstrip("\n")
            if line == "LEAK_START" and self.leak_start is None:
                self.leak_start = time.time()
            self.lines.append(line)

    def stop(self):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def score(scenario: Scenario, running: Running, seen: dict, confirmed: dict,
          interval: float) -> dict:
    """seen: (target, kind, resource, attribution) -> (time first shown, suspected or
    confirmed, rank in that poll); confirmed: the same key -> time first shown confirmed.

    A false alarm is a *confirmed* leak or saturation on a healthy target (what would be
    alerted); suspected ones on healthy targets are counted apart ("suspected").

    The detection is the first poll, after LEAK_START, that shows a leak finding on the
    target; several series usually pass at the same poll (threads Analytics-# and the
    memory of their stacks, CLOSE_WAIT sockets and the fds holding them), so attribution is
    right when the expected series is among the leak findings first shown at that poll.
    """
    mine = sorted((t, rank, key) for key, (t, rank) in seen.items() if key[0] == scenario.id)
    leak_start = running.leak_start
    false_alarms, suspected, shared_cgroup, first_leak = [], [], [], None
    at_detection = []
    for t, _, (_, kind, resource, attribution) in mine:
        if kind == "crash_loop":
            continue
        if (resource, attribution) == ("memory", "cgroup"):
            # Every scenario runs in the runner's cgroup: this series is the sum of all of
            # them (and of the agent), not the target's own memory. Reported apart.
            shared_cgroup.append(kind)
            continue
        after_start = scenario.leak and leak_start is not None and t >= leak_start
        if after_start and kind == "leak" and (first_leak is None or t == first_leak[0]):
            first_leak = first_leak or (t, resource, attribution)
            at_detection.append((resource, attribution))
        elif not after_start:
            key = (scenario.id, kind, resource, attribution)
            if key in confirmed:
                false_alarms.append(f"{kind} {resource} {attribution}".strip())
            else:
                suspected.append(f"{kind} {resource} {attribution}".strip())
    result = {
        "scenario": scenario.id,
        "truth": "leak" if scenario.leak else "healthy",
        "detected": first_leak is not None,
        "right_attribution": None,
        "delay_samples": None,
        "first_finding": None,
        "crash_loop": any(key[1] == "crash_loop" for _, _, key in mine),
        "false_alarms": false_alarms,
        "suspected": suspected,
        "shared_cgroup_findings": len(shared_cgroup),
        "findings": [f"{k[1]} {k[2]} {k[3]}".strip() for _, _, k in mine],
    }
    if first_leak:
        t = first_leak[0]

        def expected(resource, attribution):
            return any(resource == r and re.search(a, attribution) for r, a in scenario.right)

        right = [pair for pair in at_detection if expected(*pair)]
        resource, attribution = (right or at_detection)[0]
        result["first_finding"] = f"{resource} {attribution}".strip()
        result["right_attribution"] = bool(right)
        result["also_at_detection"] = [f"{r} {a}".strip() for r, a in at_detection]
        result["delay_samples"] = max(0, int(-(-(t - leak_start) // interval)))
    # When the expected series itself was first reported, whatever came before it.
    expected_times = [
        seen_at for seen_at, _, (_, kind, resource, attribution) in mine
        if kind == "leak" and leak_start is not None and t >= leak_start
        and any(resource == r and re.search(a, attribution) for r, a in scenario.right)]
    result["expected_delay_samples"] = (
        max(0, int(-(-(expected_times[0] - leak_start) // interval))) if expected_times else None)
    # When the expected series was first confirmed (alerted).
    confirmed_times = sorted(
        at for (target, kind, resource, attribution), at in confirmed.items()
        if target == scenario.id and kind == "leak" and leak_start is not None
        and at >= leak_start
        and any(resource == r and re.search(a, attribution) for r, a in scenario.right))
    result["confirmed_delay_samples"] = (
        max(0, int(-(-(confirmed_times[0] - leak_start) // interval)))
        if confirmed_times else None)
    return result


def markdown(results: list) -> str:
    rows = ["| scenario | truth | detected | attribution (first leak finding) | delay (samples) "
            "| expected series reported after (samples) | crash loop | false alarms "
            "| shared-cgroup findings |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if r["truth"] == "leak":
            detected = "yes" if r["detected"] else "MISSED"
            attribution = ("right" if r["right_attribution"] else "WRONG") + \
                f" ({r['first_finding']})" if r["detected"] else "-"
            delay = str(r["delay_samples"]) if r["detected"] else "-"
            expected = r["expected_delay_samples"]
            delay += f" | {expected if expected is not None else 'never'}"
        else:
            detected = "silent" if not r["false_alarms"] else "ALARM"
            attribution, delay = "-", "- | -"
        crash = "yes" if r["crash_loop"] else "-"
        alarms = str(len(r["false_alarms"])) + (
            f" ({'; '.join(r['false_alarms'])})" if r["false_alarms"] else "")
        if r.get("suspected"):
            alarms += f", suspected only: {'; '.join(r['suspected'])}"
        rows.append(f"| {r['scenario']} | {r['truth']} | {detected} | {attribution} | {delay} "
                    f"| {crash} | {alarms} | {r['shared_cgroup_findings']} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated scenario ids (prefixes allowed)")
    # 200 s: the Go service of 002 must crash three times (once a minute) for a crash loop.
    parser.add_argument("--duration", type=int, default=200)
    parser.add_argument("--max-delay", type=int, default=30,
                        help="samples within which a leak must be detected for exit 0")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--bin-dir", default=os.path.join(ROOT, "target", "debug"))
    parser.add_argument("--leaks-out",
                        help="write `leakwatch leaks` as a user sees it, taken every 10 s while "
                             "every scenario still runs (the last such), to this file")
    args = parser.parse_args()
    interval = 1.0
    selected = SCENARIOS
    if args.only:
        wanted = args.only.split(",")
        selected = [s for s in SCENARIOS if any(s.id.startswith(w) for w in wanted)]
    if not selected:
        print("no scenario selected", file=sys.stderr)
        return 2

    work = tempfile.mkdtemp(prefix="lw-scenarios.")
    build = os.path.join(work, "build")
    agent = None
    running = []
    try:
        build_workloads(selected, build)
        port = free_port()
        config = os.path.join(work, "leakwatch.toml")
        with open(config, "w") as out:
            out.write(f'[agent]\ninterval = "1s"\nlisten = "127.0.0.1:{port}"\n\n')
            out.write('[detect]\npreset = "fast"\n')
            for s in selected:
                out.write(f'\n[[target]]\nname = "{s.id}"\n{s.rule}\n')
        agent_log = open(os.path.join(work, "agent.log"), "w")
        agent = subprocess.Popen(
            [os.path.join(args.bin_dir, "leakwatch"), "agent", "--config", config,
             "--data-dir", os.path.join(work, "data")],
            stdout=agent_log, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                get_json(f"{base}/api/v1/agent")
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"agent did not come up; log in {work}/agent.log")

        env_base = dict(os.environ, DURATION=str(args.duration), BUILD=build, BIN=args.bin_dir)
        for s in selected:
            env = dict(env_base, PORT1=str(free_port()), PORT2=str(free_port()))
            running.append(Running(s, env))
        print(f"{len(running)} scenarios running for {args.duration}s "
              f"(agent on {base}, work dir {work})", file=sys.stderr)

        seen = {}
        confirmed = {}
        stderr_tails = {}
        leaks_text = None
        last_leaks = 0.0
        started = time.time()
        deadline = started + args.duration + 30
        while time.time() < deadline and any(r.process.poll() is None for r in running):
            try:
                findings = get_json(f"{base}/api/v1/findings")["findings"]
            except OSError:
                findings = []
            now = time.time()
            for rank, f in enumerate(findings):
                key = (f["target"], f["kind"], f["resource"], f.get("attribution", ""))
                state = f.get("state", "confirmed")
                if state == "resolved":
                    continue
                seen.setdefault(key, (now, rank))
                if state == "confirmed":
                    confirmed.setdefault(key, now)
            for r in running:
                if r.scenario.needs == "go" and now - (r.leak_start or now) > 130:
                    try:
                        restarts = get_json(
                            f"http://127.0.0.1:{r.ports[0]}/api/v1/restarts?target=goleak")
                        stderr_tails[r.scenario.id] = [
                            (x.get("exit_code"), (x.get("stderr_tail") or "").strip()[-100:])
                            for x in restarts["restarts"]]
                    except OSError:
                        pass
            if (args.leaks_out and now - last_leaks >= 10
                    and all(r.process.poll() is None for r in running)):
                last_leaks = now
                shown = subprocess.run(
                    [os.path.join(args.bin_dir, "leakwatch"), "leaks", "--url", base],
                    capture_output=True, text=True, timeout=30)
                leaks_text = f"$ leakwatch leaks   # {now - started:.0f} s after the start\n" + shown.stdout
            time.sleep(interval)
    finally:
        for r in running:
            r.stop()
        if agent is not None:
            agent.terminate()
            try:
                agent.wait(timeout=15)
            except subprocess.TimeoutExpired:
                agent.kill()

    results = [score(r.scenario, r, seen, confirmed, interval) for r in running]
    for r in results:
        if r["scenario"] in stderr_tails:
            r["restarts_recorded_by_leakwatch_run"] = stderr_tails[r["scenario"]]
    print(markdown(results))
    for r in results:
        extra = r.get("restarts_recorded_by_leakwatch_run")
        if extra:
            print(f"\n{r['scenario']}: leakwatch run recorded {len(extra)} exits; last: "
                  f"exit {extra[-1][0]}, stderr {extra[-1][1]!r}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    if args.leaks_out:
        with open(args.leaks_out, "w") as out:
            out.write(leaks_text or "(no `leakwatch leaks` taken while every scenario ran)\n")
    ok = all(
        (r["expected_delay_samples"] is not None
         and r["expected_delay_samples"] <= args.max_delay
         and not r["false_alarms"]) if r["truth"] == "leak" else not r["false_alarms"]
        for r in results)
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
