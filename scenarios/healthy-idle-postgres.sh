#!/usr/bin/env bash
# Healthy control: a real PostgreSQL 15 server with nobody connected.
source "$(dirname "$0")/lib.sh"
pg_start "$PORT1" lwidle
trap 'cleanup; pg_stop' EXIT
sleep "$DURATION" &
wait
