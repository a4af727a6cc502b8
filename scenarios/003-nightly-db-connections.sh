#!/usr/bin/env bash
# Incident 003: at every "nightly" refresh (every 20 s here) the client's pool opens a fresh
# set of 5 PostgreSQL connections and keeps the old set open. Real PostgreSQL 15 server.
source "$(dirname "$0")/lib.sh"
pg_start "$PORT1" lw003
trap 'cleanup; pg_stop' EXIT
sleep "$DURATION" | python3 "$(dirname "$0")/pgclient.py" "$PORT1" --pool 5 --refresh 20 \
  | mark_on "refresh 1" &
wait
