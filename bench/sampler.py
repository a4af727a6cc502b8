#!/usr/bin/env python3
"""Side-by-side cost of one full sample of a busy host: leakwatch vs the naive floor, the
procfs crate, and peers (prometheus-process-exporter, netdata apps.plugin, ss -tanp).

Builds ../shared/bench/population.c and floor.c, starts the synthetic population at 1x, 2x
and 4x of the reference size (300 processes x 40 threads x 30 files x 20 TCP connections),
and prints a markdown table of CPU per full pass and the ratios that matter, all measured in
this one run: the machine is shared and noisy, so absolute numbers are only context.

    python3 bench/sampler.py                 # all scales, peers if installed
    python3 bench/sampler.py --scales 1      # reference population only
    python3 bench/sampler.py --install-peers # apt-get install the peers first (root)
"""
import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "bench")
OUT = os.path.join(ROOT, "target", "bench")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def build():
    os.makedirs(OUT, exist_ok=True)
    run(["gcc", "-O2", "-o", f"{OUT}/population", f"{SHARED}/population.c", "-lpthread"])
    run(["gcc", "-O2", "-o", f"{OUT}/floor", f"{SHARED}/floor.c"])
    run(["cargo", "build", "--release", "-q", "-p", "leakwatch-bench"], cwd=ROOT)


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def proc_cpu(pid):
    """CPU seconds (user + system) a process has used so far."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def floor_cpu_ms(iterations=5):
    before = children_cpu()
    out = run([f"{OUT}/floor", str(iterations)], capture_output=True, text=True).stdout
    cpu = (children_cpu() - before) * 1000 / iterations
    wall = float(out.split(":")[-1].split()[0])
    return cpu, wall, out.strip()


def leakwatch(passes):
    out = run([f"{ROOT}/target/release/leakwatch-bench", "--passes", str(passes)],
              capture_output=True, text=True).stdout
    return {k: float(v) for k, v in (line.split() for line in out.splitlines())}


def process_exporter(scrapes=5):
    exe = shutil.which("prometheus-process-exporter")
    if not exe:
        return None
    config = tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False)
    config.write('process_names:\n  - name: "{{.Comm}}"\n    cmdline:\n    - \'.+\'\n')
    config.close()
    port = 19256
    proc = subprocess.Popen([exe, "-config.path", config.name, "-threads=true",
                             "-web.listen-address", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=30).read()
                break
            except OSError:
                time.sleep(0.1)
        before = proc_cpu(proc.pid)
        for _ in range(scrapes):
            urllib.request.urlopen(url, timeout=60).read()
        return (proc_cpu(proc.pid) - before) * 1000 / scrapes
    finally:
        proc.kill()
        proc.wait()
        os.unlink(config.name)


def apps_plugin(seconds=10):
    exe = "/usr/lib/netdata/plugins.d/apps.plugin"
    if not os.path.exists(exe):
        return None
    env = dict(os.environ, NETDATA_CONFIG_DIR="/etc/netdata", NETDATA_USER_CONFIG_DIR="/etc/netdata",
               NETDATA_STOCK_CONFIG_DIR="/usr/lib/netdata/conf.d")
    # It exits when its stdin closes (it runs under the netdata daemon): keep a pipe open.
    proc = subprocess.Popen([exe, "1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    try:
        time.sleep(3)  # its first iterations build its caches
        before, start = proc_cpu(proc.pid), time.time()
        time.sleep(seconds)
        iterations = time.time() - start  # one iteration per second
        return (proc_cpu(proc.pid) - before) * 1000 / iterations
    except (FileNotFoundError, ProcessLookupError):
        return None
    finally:
        proc.kill()
        proc.wait()


def ss_wall_ms():
    if not shutil.which("ss"):
        return None
    start = time.time()
    run(["ss", "-tanp"], stdout=subprocess.DEVNULL)
    return (time.time() - start) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="1,2,4")
    parser.add_argument("--passes", type=int, default=48)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--install-peers", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the raw rows as JSON too")
    args = parser.parse_args()
    if args.install_peers:
        run(["apt-get", "install", "-y", "-q", "prometheus-process-exporter", "netdata-core"],
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    build()
    rows = []
    pid_max_path = "/proc/sys/kernel/pid_max"
    old_pid_max = open(pid_max_path).read().strip()
    for scale in [int(s) for s in args.scales.split(",")]:
        procs = 300 * scale
        if procs * 41 > int(old_pid_max) * 0.8:
            try:
                open(pid_max_path, "w").write("4194304")
            except OSError as error:
                print(f"scale {scale}x needs pid_max above {old_pid_max}: {error}", file=sys.stderr)
                continue
        pop = subprocess.Popen([f"{OUT}/population", str(procs), "40", "30", "20", "900"],
                               stdout=subprocess.PIPE, text=True)
        try:
            ready = pop.stdout.readline().strip()
            time.sleep(2)
            floor_cpu, floor_wall, floor_line = floor_cpu_ms()
            ours = leakwatch(args.passes)
            row = {"scale": scale, "population": ready, "floor": floor_line,
                   "floor_cpu_ms": floor_cpu, "floor_wall_ms": floor_wall, **ours}
            if scale == 1 and not args.no_peers:
                row["process_exporter_cpu_ms"] = process_exporter()
                row["apps_plugin_cpu_ms"] = apps_plugin()
                row["ss_tanp_wall_ms"] = ss_wall_ms()
            rows.append(row)
        finally:
            pop.send_signal(signal.SIGTERM)
            pop.wait()
            time.sleep(1)
    open(pid_max_path, "w").write(old_pid_max)

    print("| population | threads | fds | TCP owned | floor CPU/pass | leakwatch cold | cold / floor "
          "| leakwatch steady (mean, p90) | steady / floor | procfs crate naive |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['scale']}x ({int(r['processes'])} procs) | {int(r['threads']):,} | {int(r['fds']):,} "
              f"| {int(r['tcp_sockets_owned']):,} | {r['floor_cpu_ms']:.1f} ms | {r['cold_cpu_ms']:.1f} ms "
              f"| {r['cold_cpu_ms'] / r['floor_cpu_ms']:.2f}x | {r['steady_cpu_ms']:.1f} ms, {r['steady_p90_cpu_ms']:.1f} ms "
              f"| {r['steady_cpu_ms'] / r['floor_cpu_ms']:.3f}x | {r.get('procfs_cpu_ms', float('nan')):.1f} ms |")
    peers = [r for r in rows if "process_exporter_cpu_ms" in r]
    if peers:
        r = peers[0]
        print()
        print("| peer (1x population, same run) | CPU per full pass | leakwatch steady is ... cheaper |")
        print("|---|---|---|")
        for name, key in [("prometheus-process-exporter -threads=true", "process_exporter_cpu_ms"),
                          ("netdata apps.plugin", "apps_plugin_cpu_ms"),
                          ("ss -tanp (wall)", "ss_tanp_wall_ms"),
                          ("procfs crate, naive full read", "procfs_cpu_ms"),
                          ("floor.c, naive full read", "floor_cpu_ms")]:
            value = r.get(key)
            if value is None:
                print(f"| {name} | not installed | - |")
            else:
                print(f"| {name} | {value:.1f} ms | {value / r['steady_cpu_ms']:.1f}x |")
    if args.json:
        print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
