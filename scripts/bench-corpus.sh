#!/bin/sh
# The held-out evaluation of the detection engine (BENCHMARKS.md §3b, docs/detection.md
# "Evaluation"): draws the randomized corpus from the PUBLISHED seeds, replays every draw
# online through the engine (production preset for its interval) and the baselines, and
# writes the tables. About 10 minutes in release mode on 2 shared cores.
#
#   scripts/bench-corpus.sh                 # the published table (never tune on it)
#   SEEDS=tuning scripts/bench-corpus.sh    # the same on the tuning seeds
#   scripts/bench-corpus.sh --class fill    # extra arguments go to leakwatch-heldout
#
# Output: $OUT/table.md (history: everything up to each evaluation, as `leakwatch analyze`
# judges a file; with the live check of the fast preset), $OUT/table.json (every draw),
# $OUT/agent-window.md (history: the agent's window of the last 8,640 intervals).
set -eu
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-published}
TARGET=${CARGO_TARGET_DIR:-target}
OUT=${OUT:-$TARGET/bench-corpus}
mkdir -p "$OUT"
cargo build --release -p leakwatch-analyze --bin leakwatch-heldout
BIN=$TARGET/release/leakwatch-heldout
COMMON="--seeds $SEEDS --per-class 24 --evaluations 500 --threads 2"
# shellcheck disable=SC2086
"$BIN" $COMMON --live 60 --details 1000 --json-out "$OUT/table.json" "$@" > "$OUT/table.md"
# shellcheck disable=SC2086
"$BIN" $COMMON --history agent --details 0 "$@" > "$OUT/agent-window.md"
echo "tables in $OUT/table.md and $OUT/agent-window.md"
