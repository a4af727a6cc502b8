#!/usr/bin/env bash
# Incident 000 as a leak check: a service that builds a new client, and so a new executor
# thread `Analytics-N`, on every call and never shuts it down. Ten calls per round:
# `leakwatch check` reports `threads Analytics-# +10 per round`.
#
#   examples/check/thread-per-call.sh           # the bug: exit 1
#   examples/check/thread-per-call.sh --fixed   # the executor shut down after each call: exit 0
# Other arguments go to `leakwatch check`.
#
# Needs `cargo build -p leakwatch -p leakwatch-testkit` (binaries in target/debug, or set
# BIN_DIR and LEAKWATCH). Port: SERVICE_PORT (18081).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${BIN_DIR:-$root/target/debug}"
leakwatch="${LEAKWATCH:-$bin/leakwatch}"
service_port="${SERVICE_PORT:-18081}"

service_flags=()
check_flags=()
for arg in "$@"; do
  case "$arg" in
    --fixed) service_flags+=(--fixed) ;;
    *) check_flags+=("$arg") ;;
  esac
done

status=0
"$leakwatch" check \
  --workload "$bin/http-get --count 10 http://127.0.0.1:$service_port/track?event=login" \
  --ready-port "$service_port" \
  "${check_flags[@]}" \
  -- "$bin/analytics-service" --listen "127.0.0.1:$service_port" "${service_flags[@]}" \
  || status=$?
exit "$status"
