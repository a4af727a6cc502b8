#!/usr/bin/env bash
# What an eBPF creation-site trace (issue 14; `leakwatch why`, `[evidence] creation_sites`)
# costs, side by side in one run:
#  - the traced process: requests/s of a real nginx (one worker, a 612-byte page, new
#    connection per request so every request creates a socket: wrk -H "Connection: close")
#    without and with `leakwatch why --what all` tracing its worker;
#  - the rest of the host: system calls/s of an untraced process (dd, 1-byte reads and
#    writes), without and with the trace, since the raw tracepoint on sys_exit runs for
#    every system call on the host while a trace is on;
#  - a JVM's JFR recording of thread starts (what the agent and `leakwatch why` take for a
#    JVM's thread leak): requests/s of a JDK HttpServer starting a new thread per request
#    (scripts/bench/ThreadPerRequest.java; every request is a jdk.ThreadStart event with
#    its stack), without and with `leakwatch why --what threads` recording it.
# Rounds alternate (off, on, off, on, ...) so drift on a shared machine hits both sides.
# Needs root, nginx, wrk and a JDK (apt-get install nginx-light wrk openjdk-17-jdk-headless).
# Usage:
#   scripts/bench-creation-overhead.sh [ROUNDS] [SECONDS] [all|native|jvm]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
secs=${2:-8}
parts=${3:-all}
bin=target/release/leakwatch
[ -x "$bin" ] || cargo build --release -p leakwatch
work=$(mktemp -d)
port=18089
cleanup() {
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  [ -n "${jvm:-}" ] && kill "$jvm" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ratio() { python3 -c "import sys; a=[float(x) for x in sys.argv[1].split()]; b=[float(x) for x in sys.argv[2].split()]; import statistics as s; print(f'median off {s.median(a):.0f}, on {s.median(b):.0f}, on/off {s.median(b)/s.median(a):.3f}')" "$1" "$2"; }
mkdir -p "$work/www" "$work/logs"
head -c 612 /dev/zero | tr '\0' x > "$work/www/index.html"
cat > "$work/nginx.conf" <<CONF
daemon on;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/tmp;
  server { listen 127.0.0.1:$port; root $work/www; }
}
CONF
if [ "$parts" != jvm ]; then
nginx -c "$work/nginx.conf" -p "$work"
sleep 0.5
worker=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1)
echo "nginx worker pid $worker; $rounds rounds of ${secs}s each side"

trace() { # starts a trace of the worker for $1 seconds in the background: $tracer
  "$bin" why nginx --pid "$worker" --what all --for "$1s" --max-events 1000000 --json > "$work/why.json" 2>/dev/null &
  tracer=$!
}
rps() { wrk -t1 -c16 -d"${secs}s" -H "Connection: close" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}'; }
# 1-byte copies per second: one read and one write system call each
calls() {
  dd if=/dev/zero of=/dev/null bs=1 count=$((secs * 2000000)) 2>&1 |
    awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") t = $(i - 1); printf "%.0f\n", $1 / t }'
}

off_rps=""; on_rps=""; off_dd=""; on_dd=""
for r in $(seq "$rounds"); do
  off_rps="$off_rps $(rps)"
  trace $((secs + 3)); sleep 1
  on_rps="$on_rps $(rps)"
  wait "$tracer" || true
  events=$(python3 -c "import json,re,sys; t=json.load(open('$work/why.json'))['text']; print(re.search(r'(\d+) creations counted', t).group(1))" 2>/dev/null || echo "?")
  off_dd="$off_dd $(calls)"
  trace $((secs * 2)); sleep 1
  on_dd="$on_dd $(calls)"
  wait "$tracer" || true
  echo "round $r: nginx req/s off/on:$(echo "$off_rps" | awk '{print $NF}') /$(echo "$on_rps" | awk '{print $NF}') ($events creations traced); dd bytes off/on:$(echo "$off_dd" | awk '{print $NF}') /$(echo "$on_dd" | awk '{print $NF}')"
done

fi

# The JVM side: JFR recording thread starts.
if [ "$parts" != native ]; then
jport=18090
javac -d "$work" scripts/bench/ThreadPerRequest.java
# nodelay: without it the JDK's HttpServer waits on Nagle and the client's delayed ACK
# (about 40 ms a request: 357 requests/s whatever the JVM does, which hid any cost).
java -Xmx256m -Dsun.net.httpserver.nodelay=true -cp "$work" ThreadPerRequest "$jport" > "$work/jvm.log" 2>&1 &
jvm=$!
for _ in $(seq 100); do grep -q ready "$work/jvm.log" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$work/jvm.log" || { echo "the JVM did not start (port $jport taken?): $(cat "$work/jvm.log")" >&2; exit 1; }
jrps() { wrk -t1 -c16 -d"${secs}s" "http://127.0.0.1:$jport/" | awk '/Requests\/sec/ {print $2}'; }
jrps > /dev/null # JIT warm-up
off_j=""; on_j=""
for r in $(seq "$rounds"); do
  off_j="$off_j $(jrps)"
  "$bin" why hello --pid "$jvm" --what threads --for "$((secs + 4))s" --json > "$work/jfr.json" 2>/dev/null &
  tracer=$!
  sleep 3 # jcmd attach and JFR.start
  on_j="$on_j $(jrps)"
  wait "$tracer" || true
  starts=$(python3 -c "import json,re; t=json.load(open('$work/jfr.json'))['text']; print(re.search(r'([0-9,]+) thread starts', t).group(1))" 2>/dev/null || echo "?")
  echo "round $r: JVM req/s off/on:$(echo "$off_j" | awk '{print $NF}') /$(echo "$on_j" | awk '{print $NF}') ($starts thread starts recorded)"
done

fi

if [ "$parts" != jvm ]; then
  echo "nginx requests/s (traced worker): $(ratio "$off_rps" "$on_rps")"
  echo "untraced dd 1-byte copies/s (2 system calls each): $(ratio "$off_dd" "$on_dd")"
fi
if [ "$parts" != native ]; then
  echo "JVM requests/s, a thread per request, JFR recording thread starts: $(ratio "$off_j" "$on_j")"
fi
