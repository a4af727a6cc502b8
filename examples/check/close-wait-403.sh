#!/usr/bin/env bash
# Incident 001 as a leak check: a service whose HTTP client never closes a response leaks
# one CLOSE_WAIT socket per 403 *with a body*, and `leakwatch check` catches it.
#
#   examples/check/close-wait-403.sh               # the bug: exit 1, CLOSE_WAIT +1 per round
#   examples/check/close-wait-403.sh --fixed       # the fix (response closed): exit 0
#   examples/check/close-wait-403.sh --empty-403   # the bug against a body-less 403, as the
#                                                  # team's wiremock stub answered: exit 0,
#                                                  # which is why their tests missed it
# Other arguments go to `leakwatch check` (e.g. --json, --junit FILE, --rounds 10).
#
# Needs `cargo build -p leakwatch -p leakwatch-testkit` (binaries in target/debug, or set
# BIN_DIR and LEAKWATCH). Ports: SERVICE_PORT (18080) and DOWNSTREAM_PORT (18443).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${BIN_DIR:-$root/target/debug}"
leakwatch="${LEAKWATCH:-$bin/leakwatch}"
service_port="${SERVICE_PORT:-18080}"
downstream_port="${DOWNSTREAM_PORT:-18443}"

client_flags=()
server_flags=()
check_flags=()
for arg in "$@"; do
  case "$arg" in
    --fixed) client_flags+=(--fixed) ;;
    --empty-403) server_flags+=(--empty-403) ;;
    *) check_flags+=("$arg") ;;
  esac
done

# The downstream (the load balancer answering 403 with an HTML page) is not the process
# under test, so it is started here rather than by leakwatch check; it also exits with this
# script.
"$bin/forbidding-server" "127.0.0.1:$downstream_port" "${server_flags[@]}" >&2 &
downstream=$!
trap 'kill "$downstream" 2>/dev/null || true; wait "$downstream" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$downstream_port") 2>/dev/null; then break; fi
  sleep 0.05
done

# Each round is one request with an expired session: one 403 from downstream.
status=0
"$leakwatch" check \
  --workload "$bin/http-get --cookie session=expired http://127.0.0.1:$service_port/orders" \
  --ready-port "$service_port" \
  "${check_flags[@]}" \
  -- "$bin/session-client" --listen "127.0.0.1:$service_port" \
     --downstream "127.0.0.1:$downstream_port" "${client_flags[@]}" || status=$?
exit "$status"
