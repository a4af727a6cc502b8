#!/usr/bin/env bash
# Builds leakwatch and the test binaries, then runs every live scenario and prints the
# scored table (see docs/detection.md, "Live scenarios"). Arguments go to run.py, e.g.
#   scenarios/run.sh --only 000,healthy-pool --duration 90
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p leakwatch -p leakwatch-testkit --bins
exec python3 scenarios/run.py "$@"
