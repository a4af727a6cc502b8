#!/usr/bin/env bash
# The cost on the target of leakwatch's JVM heap evidence (issue 18, BENCHMARKS.md §7): the
# pause a JVM suffers when an external tool runs `jcmd PID GC.class_histogram` on it, which
# is what the agent does twice (60 s apart) at the first detection of a memory leak.
#
# It compiles a small Java program into a temp dir that keeps ~HEAP_MB MiB of live data in
# millions of small objects (a HashMap<Long, byte[]>: a node, a Long and a 16..112-byte array
# per entry), plus a thread that sleeps 1 ms in a loop and prints every overshoot of 1 ms or
# more with its end time: the pause as the application sees it. The JVM runs with
# -Xms=-Xmx and -Xlog:gc,safepoint. After one unmeasured warm-up of each operation it runs,
# RUNS times and interleaved, each of:
#   GC.class_histogram        what leakwatch runs (a full GC, then a heap walk, one safepoint)
#   GC.class_histogram -all   the heap walk alone (no GC; counts unreachable objects too)
#   GC.run                    a plain full GC, System.gc() (for comparison)
#   VM.version                attach only, no safepoint (the control: jcmd's own cost, noise)
# and for each: jcmd's wall time (includes starting jcmd's own JVM), the GC pauses the JVM
# logged in that window, the sum of its safepoints (the VM operation: GC + heap walk) and
# the largest hiccup its sleeping thread saw. It prints median and max per operation.
#
#   scripts/bench-histogram-pause.sh                        # 512 MiB live, 5 runs, default GC
#   HEAP_MB=128 RUNS=5 scripts/bench-histogram-pause.sh
#   JAVA_OPTS=-XX:+UseSerialGC scripts/bench-histogram-pause.sh
#   KEEP=1 ...                                              # keep the temp dir (logs)
#
# Env: HEAP_MB (512) live data, XMX_MB (2 x HEAP_MB) heap size, RUNS (5), GAP_S (2) seconds
# of quiet between operations, JAVA_OPTS (extra JVM flags), JAVA/JCMD/JAVAC (from PATH).
# Needs a JDK (java, javac, jcmd; tested with 17), awk, GNU date. Takes ~1-2 min at 512 MiB.
set -euo pipefail
HEAP_MB=${HEAP_MB:-512}
XMX_MB=${XMX_MB:-$((HEAP_MB * 2))}
RUNS=${RUNS:-5}
GAP_S=${GAP_S:-2}
JAVA_OPTS=${JAVA_OPTS:-}
JAVA=${JAVA:-java} JCMD=${JCMD:-jcmd} JAVAC=${JAVAC:-javac}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/histpause.XXXXXX")
PID=""
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    if [ -n "${KEEP:-}" ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat > "$TMP/Hold.java" <<'EOF'
import java.util.HashMap;
import java.util.Random;

public class Hold {
    static volatile Object hold;

    public static void main(String[] args) throws Exception {
        long bytes = Long.parseLong(args[0]) << 20;
        // Per entry: HashMap$Node 32 B, Long 16 B, byte[16..112] ~88 B, ~8 B of table.
        int n = (int) (bytes / 144);
        HashMap<Long, byte[]> map = new HashMap<>();
        Random r = new Random(1);
        for (int i = 0; i < n; i++) map.put(i * 7919L, new byte[16 + r.nextInt(97)]);
        hold = map;
        System.out.println("READY entries=" + n);
        System.out.flush();
        // The application's view: a 1 ms sleep loop; print each overshoot >= 1 ms as
        // "H <epoch ms at its end> <overshoot us>".
        while (true) {
            long t0 = System.nanoTime();
            Thread.sleep(1);
            long over = System.nanoTime() - t0 - 1_000_000L;
            if (over >= 1_000_000L) {
                System.out.println("H " + System.currentTimeMillis() + " " + over / 1000);
                System.out.flush();
            }
        }
    }
}
EOF
"$JAVAC" -d "$TMP" "$TMP/Hold.java"

# shellcheck disable=SC2086
"$JAVA" -Xms${XMX_MB}m -Xmx${XMX_MB}m $JAVA_OPTS \
    -Xlog:gc,safepoint:file="$TMP/gc.log":uptime,tags -cp "$TMP" Hold "$HEAP_MB" \
    > "$TMP/app.log" 2>&1 &
PID=$!
for _ in $(seq 600); do
    grep -q '^READY' "$TMP/app.log" && break
    kill -0 "$PID" 2>/dev/null || { cat "$TMP/app.log" >&2; exit 1; }
    sleep 0.5
done
grep '^READY' "$TMP/app.log" || { echo "the JVM never filled its heap" >&2; exit 1; }

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
now_ms() { date +%s%3N; }
# measure NAME ARGS...: one jcmd run; appends "NAME wall_ms gc_ms safepoint_ms hiccup_ms".
measure() {
    local name=$1; shift
    local gc0 app0 t0 t1
    gc0=$(wc -l < "$TMP/gc.log"); app0=$(wc -l < "$TMP/app.log")
    t0=$(now_ms)
    "$JCMD" "$PID" "$@" > "$TMP/out.txt"
    t1=$(now_ms)
    sleep 0.5 # let the log lines and the sleeping thread's report land
    tail -n +"$((gc0 + 1))" "$TMP/gc.log" >> "$TMP/window-$name.log"
    local gc sp hic
    gc=$(tail -n +"$((gc0 + 1))" "$TMP/gc.log" | awk '/\] GC\([0-9]+\) Pause/ {
        v = $NF; sub(/ms$/, "", v); s += v } END { printf "%.1f", s }')
    sp=$(tail -n +"$((gc0 + 1))" "$TMP/gc.log" | awk '/Safepoint "/ { s += $(NF - 1) }
        END { printf "%.1f", s / 1e6 }')
    hic=$(tail -n +"$((app0 + 1))" "$TMP/app.log" | awk -v a="$t0" -v b="$t1" '
        $1 == "H" && $2 >= a && $2 <= b + 500 && $3 > m { m = $3 } END { printf "%.1f", m / 1000 }')
    echo "$name $((t1 - t0)) $gc $sp $hic" >> "$TMP/results.txt"
}

OPS=("histogram" "histogram-all" "gc-run" "attach-only")
run_op() {
    case $1 in
        histogram) measure "$@" GC.class_histogram ;;
        histogram-all) measure "$@" GC.class_histogram -all ;;
        gc-run) measure "$@" GC.run ;;
        attach-only) measure "$@" VM.version ;;
    esac
}
for op in "${OPS[@]}"; do run_op "$op"; sleep "$GAP_S"; done # warm-up, not counted
: > "$TMP/results.txt"
for _ in $(seq "$RUNS"); do
    for op in "${OPS[@]}"; do run_op "$op"; sleep "$GAP_S"; done
done
"$JCMD" "$PID" GC.class_histogram > "$TMP/hist.txt"

echo
echo "JVM: $("$JCMD" "$PID" VM.version | sed -n 2p); $(grep -m1 -o 'Using [A-Za-z0-9 ]*' "$TMP/gc.log");" \
    "-Xmx${XMX_MB}m ${JAVA_OPTS:-(no extra flags)}; $(nproc) CPUs;" \
    "load average (1, 5, 15 min) before: $LOAD0, after: $(cut -d' ' -f1-3 /proc/loadavg)"
awk '/^Total/ { printf "live heap (histogram Total): %.1f MiB in %d objects\n", $3 / 1048576, $2 }' "$TMP/hist.txt"
echo "VM operations seen (safepoint names, all runs and warm-up): $(grep -ho 'Safepoint "[A-Za-z0-9_]*"' \
    "$TMP"/window-*.log | sort | uniq -c | awk '{ printf "%s %s x%d; ", $2, $3, $1 }')"
echo "HEAP_MB=$HEAP_MB RUNS=$RUNS; median / max over the runs, ms:"
echo
echo "| operation | jcmd wall | GC-log pause | safepoints total | app-observed max hiccup |"
echo "|---|---|---|---|---|"
for op in "${OPS[@]}"; do
    row="| $op"
    for col in 2 3 4 5; do
        row="$row | $(awk -v o="$op" -v c="$col" '$1 == o { print $c }' "$TMP/results.txt" | sort -g |
            awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
                   printf "%.1f / %.1f", m, v[NR] }')"
    done
    echo "$row |"
done
echo
echo "raw (operation wall gc safepoint hiccup):"
cat "$TMP/results.txt"
