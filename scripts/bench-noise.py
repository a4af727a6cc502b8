#!/usr/bin/env python3
"""The noise benchmark (issue 12 part 5; BENCHMARKS.md, "Noise on a busy host").

Runs two agents side by side at 1 s, one with the production preset and one with the fast
preset, each alerting to its own path of a webhook receiver, through a whole busy workload
(by default `.ci/run` of a clean clone of this repository: hundreds of compilers, test
processes, a browser, PostgreSQL, JVMs, Go and Python services, and the suite's own leaking
test processes), and plants two leaks during it:

  planted-threads    a `leaky` process starting one thread named NoisePlanted-i per second
  planted-closewait  a `leaky` process opening one TCP connection every 2 s to a local server
                     that closes each at once, so the connections sit in CLOSE_WAIT

It polls both agents' /api/v1/findings every 10 s, counts every distinct finding seen (by
target, kind and series), the webhook notifications (reason "firing") and the incident
folders, per preset, and writes OUT/noise.md (the table, then every finding and alert not
on a planted leak, for a person to classify) and OUT/noise.json.

    python3 scripts/bench-noise.py                     # a clean clone's .ci/run (~30 min)
    python3 scripts/bench-noise.py --out /tmp/noise -- sh -c 'make -j2'   # any workload
    python3 scripts/bench-noise.py --plant-after 120 --grace 120

A benchmark, not a test: it asserts nothing and exits 0 whatever it counts (2 on a setup
error). The workload's own exit status is reported.
"""

import argparse
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLANTED = ("planted-threads", "planted-closewait")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver(http.server.BaseHTTPRequestHandler):
    """Webhook receiver: keeps every POSTed JSON body with the path it came to."""

    received = []
    lock = threading.Lock()

    def do_POST(self):
        length = min(int(self.headers.get("Content-Length", "0")), 4 << 20)
        body = self.rfile.read(length)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {"unparsable": body[:200].decode("utf-8", "replace")}
        with Receiver.lock:
            Receiver.received.append((self.path, time.time(), payload))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def closing_server(listener):
    """Accepts connections and closes each at once: the client's side goes to CLOSE_WAIT."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.close()


def agent_config(preset, port, data_dir, hook_url, closewait_port):
    return f"""# written by scripts/bench-noise.py
[agent]
interval = "1s"
data_dir = "{data_dir}"
listen = "127.0.0.1:{port}"

[[target]]
name = "planted-threads"
cmdline = "leak-threads=NoisePlanted:"

[[target]]
name = "planted-closewait"
cmdline = "leak-connect=127\\\\.0\\\\.0\\\\.1:{closewait_port}:"

[detect]
preset = "{preset}"

[alerts.routes]
warning = ["hook"]
critical = ["hook"]

[alerts.channels.hook]
type = "webhook"
url = "{hook_url}"
"""


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def finding_id(f):
    return (f.get("target", ""), f.get("kind", ""), f.get("resource", ""), str(f.get("attribution", "")))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "target", "bench-noise"))
    parser.add_argument("--plant-after", type=float, default=300, help="seconds into the workload")
    parser.add_argument("--grace", type=float, default=120, help="seconds watched after the workload")
    parser.add_argument("--timeout", type=float, default=5400, help="workload time limit, seconds")
    parser.add_argument("--no-build", action="store_true", help="use the release binaries as built")
    parser.add_argument("workload", nargs="*", help="command to run (default: a clean clone's .ci/run)")
    args = parser.parse_args()

    out = os.path.abspath(args.out)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    if not args.no_build:
        subprocess.run(
            ["cargo", "build", "--release", "-p", "leakwatch", "-p", "leakwatch-testkit", "--bins"],
            cwd=ROOT, check=True)
    leakwatch = os.path.join(target_dir, "release", "leakwatch")
    leaky = os.path.join(target_dir, "release", "leaky")
    for binary in (leakwatch, leaky):
        if not os.access(binary, os.X_OK):
            print(f"bench-noise: {binary} is missing: build it or drop --no-build", file=sys.stderr)
            return 2

    hook_port = free_port()
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", hook_port), Receiver)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    closer = socket.socket()
    closer.bind(("127.0.0.1", 0))
    closer.listen(1024)
    closewait_port = closer.getsockname()[1]
    threading.Thread(target=closing_server, args=(closer,), daemon=True).start()

    agents = {}
    for preset in ("production", "fast"):
        port = free_port()
        data_dir = os.path.join(out, preset)
        os.makedirs(data_dir)
        config = os.path.join(out, f"{preset}.toml")
        with open(config, "w") as f:
            f.write(agent_config(preset, port, data_dir, f"http://127.0.0.1:{hook_port}/{preset}",
                                 closewait_port))
        log = open(os.path.join(out, f"{preset}.log"), "w")
        process = subprocess.Popen([leakwatch, "agent", "--config", config],
                                   stdout=log, stderr=log, start_new_session=True)
        agents[preset] = {"port": port, "data_dir": data_dir, "process": process, "seen": {}}
    time.sleep(3)
    for preset, agent in agents.items():
        if agent["process"].poll() is not None:
            print(f"bench-noise: the {preset} agent exited: see {out}/{preset}.log", file=sys.stderr)
            return 2

    workload, cwd = args.workload, None
    if not workload:
        clone = os.path.join(out, "clone")
        subprocess.run(["git", "clone", "-q", ROOT, clone], check=True)
        workload, cwd = ["bash", ".ci/run"], clone
    workload_log = open(os.path.join(out, "workload.log"), "w")
    env = dict(os.environ, CI="true")
    env.pop("CARGO_TARGET_DIR", None)
    started = time.time()
    work = subprocess.Popen(workload, stdout=workload_log, stderr=subprocess.STDOUT, env=env,
                            cwd=cwd,
                            start_new_session=True)
    print(f"bench-noise: workload pid {work.pid}, output in {out}/workload.log", file=sys.stderr)

    planted = []
    planted_at = None
    ended_at = None
    deadline = None

    def poll():
        now = time.time()
        for preset, agent in agents.items():
            try:
                answer = get_json(f"http://127.0.0.1:{agent['port']}/api/v1/findings")
            except Exception as error:  # an agent that does not answer is counted, not fatal
                agent.setdefault("errors", []).append(f"{now:.0f}: {error}")
                continue
            for f in answer.get("findings", []):
                key = finding_id(f)
                entry = agent["seen"].setdefault(key, {
                    "target": key[0], "kind": key[1], "resource": key[2], "attribution": key[3],
                    "first_seen": now - started, "states": [], "summary": "", "cmdline": ""})
                state = f.get("state", "confirmed")
                if state not in entry["states"]:
                    entry["states"].append(state)
                    entry[f"{state}_at"] = now - started
                entry["summary"] = f.get("summary", entry["summary"])
                processes = f.get("processes") or []
                if processes and not entry["cmdline"]:
                    entry["cmdline"] = str(processes[0].get("cmdline", ""))[:200]

    try:
        while True:
            now = time.time()
            if planted_at is None and now - started >= args.plant_after:
                planted_at = now - started
                for leak in (["leak-threads=NoisePlanted:1000"],
                             [f"leak-connect=127.0.0.1:{closewait_port}:2000"]):
                    planted.append(subprocess.Popen([leaky] + leak, stdin=subprocess.PIPE,
                                                    stdout=subprocess.DEVNULL))
            if ended_at is None:
                if work.poll() is not None:
                    ended_at = now - started
                    deadline = now + args.grace
                elif now - started > args.timeout:
                    os.killpg(work.pid, signal.SIGTERM)
            poll()
            if deadline is not None and now >= deadline:
                break
            time.sleep(10)
    finally:
        for p in planted:
            p.stdin.close()
            p.wait(timeout=10)
        if work.poll() is None:
            os.killpg(work.pid, signal.SIGTERM)
        for agent in agents.values():
            agent["process"].send_signal(signal.SIGTERM)
            agent["process"].wait(timeout=60)
        hook.shutdown()

    results = {"workload": workload, "workload_exit": work.returncode,
               "workload_seconds": ended_at, "planted_at": planted_at, "presets": {}}
    for preset, agent in agents.items():
        notes = [(t - started, p) for path, t, p in Receiver.received if path == f"/{preset}"]
        firing = [(t, p) for t, p in notes if p.get("reason") == "firing"]
        incidents = subprocess.run([leakwatch, "incidents", "--data-dir", agent["data_dir"], "--json"],
                                   capture_output=True, text=True)
        try:
            folders = json.loads(incidents.stdout)
            folders = folders.get("incidents", folders) if isinstance(folders, dict) else folders
        except ValueError:
            folders = []
        seen = list(agent["seen"].values())

        def split(items, target_of):
            mine = [i for i in items if target_of(i) in PLANTED]
            return mine, [i for i in items if target_of(i) not in PLANTED]

        f_planted, f_other = split(seen, lambda f: f["target"])
        a_planted, a_other = split(firing, lambda tp: tp[1].get("alert", {}).get("target"))
        i_planted, i_other = split(folders, lambda i: i.get("target"))
        per_leak = {}
        for name in PLANTED:
            mine = [f for f in f_planted if f["target"] == name]
            alerts = [t for t, p in a_planted if p["alert"]["target"] == name]
            per_leak[name] = {
                "findings": len(mine),
                "confirmed": sum("confirmed" in f["states"] for f in mine),
                "first_finding_after_plant_s": min((f["first_seen"] - planted_at for f in mine), default=None)
                if planted_at is not None else None,
                "alerts": len(alerts),
                "first_alert_after_plant_s": min((t - planted_at for t in alerts), default=None)
                if planted_at is not None else None,
            }
        results["presets"][preset] = {
            "findings": len(seen), "confirmed": sum("confirmed" in f["states"] for f in seen),
            "findings_other": len(f_other),
            "confirmed_other": sum("confirmed" in f["states"] for f in f_other),
            "alerts": len(firing), "alerts_other": len(a_other),
            "notifications": len(notes),
            "incidents": len(folders), "incidents_other": len(i_other),
            "per_planted_leak": per_leak, "poll_errors": agent.get("errors", [])[:20],
            "other_findings": sorted(f_other, key=lambda f: f["first_seen"]),
            "other_alerts": [{"at": round(t), "target": p["alert"].get("target"),
                              "summary": p["alert"].get("summary")} for t, p in a_other],
        }
    with open(os.path.join(out, "noise.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)

    lines = [f"workload: `{' '.join(workload)}`, exit {work.returncode}, "
             f"{(ended_at or 0) / 60:.1f} min; leaks planted at {planted_at or 0:.0f} s", "",
             "| preset | findings (confirmed) | not planted (confirmed) | alerts | not planted "
             "| incidents | not planted | per planted leak: findings, alerts, first alert after |",
             "|---|---|---|---|---|---|---|---|"]
    for preset, r in results["presets"].items():
        leaks = "; ".join(
            f"{name}: {v['findings']}, {v['alerts']}, "
            + (f"{v['first_alert_after_plant_s']:.0f} s" if v["first_alert_after_plant_s"] is not None else "none")
            for name, v in r["per_planted_leak"].items())
        lines.append(f"| {preset} | {r['findings']} ({r['confirmed']}) | {r['findings_other']} "
                     f"({r['confirmed_other']}) | {r['alerts']} | {r['alerts_other']} | "
                     f"{r['incidents']} | {r['incidents_other']} | {leaks} |")
    for preset, r in results["presets"].items():
        lines += ["", f"## {preset}: findings not on a planted leak", ""]
        for f in r["other_findings"]:
            lines.append(f"- {f['first_seen']:.0f} s `{f['target']}` {f['kind']} "
                         f"{'/'.join(f['states'])}: {f['summary']} — `{f['cmdline'][:100]}`")
        lines += ["", f"## {preset}: alerts not on a planted leak", ""]
        for a in r["other_alerts"]:
            lines.append(f"- {a['at']} s `{a['target']}`: {a['summary']}")
    with open(os.path.join(out, "noise.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[:6]))
    print(f"bench-noise: details in {out}/noise.md and {out}/noise.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
