# Shared by the scenario scripts. The runner (run.py) sets:
#   DURATION  seconds the scenario runs before it stops by itself
#   BUILD     compiled workloads (Java classes, the Go binary)
#   BIN       leakwatch's build directory (target/debug): leakwatch, leaky, testkit servers
#   PORT1, PORT2  free 127.0.0.1 ports for this scenario
# A script prints LEAK_START on stdout when its leak begins (healthy ones never do) and
# leaves nothing behind: every workload reads stdin from `sleep $DURATION`, so it exits
# when that closes, and the EXIT trap stops whatever is left.
set -euo pipefail
: "${DURATION:?}" "${BUILD:?}" "${BIN:?}"
trap 'cleanup' EXIT
cleanup() {
  local pids
  pids=$(jobs -p)
  [ -n "$pids" ] && kill $pids 2>/dev/null || true
  wait 2>/dev/null || true
}

# Copies stdin to stdout, printing LEAK_START after the first line equal to $1.
mark_on() {
  local seen=""
  while IFS= read -r line; do
    echo "$line"
    if [ -z "$seen" ] && [ "$line" = "$1" ]; then
      echo LEAK_START
      seen=1
    fi
  done
}

# A throwaway PostgreSQL 15 cluster on 127.0.0.1:$1 named $2 (the name shows in every
# server process title through cluster_name), owned by the postgres user because the
# server refuses to run as root. Sets PGDATA_DIR; pg_stop removes it.
PG_BIN=/usr/lib/postgresql/15/bin
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_start() {
  PGDATA_DIR=$(mktemp -d "/tmp/$2.XXXXXX")
  [ "$(id -u)" = 0 ] && chown postgres "$PGDATA_DIR"
  as_postgres "$PG_BIN/initdb" -D "$PGDATA_DIR/data" -U postgres --auth=trust >/dev/null
  as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA_DIR/data" -l "$PGDATA_DIR/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $1 -k $PGDATA_DIR -c cluster_name=$2 -c max_connections=300" \
    start >/dev/null
}
pg_stop() {
  as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PGDATA_DIR"
}
