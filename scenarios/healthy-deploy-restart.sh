#!/usr/bin/env bash
# Healthy control: one deploy. Version 1 holds 20 worker threads; after 60 s it is replaced
# by version 2, which holds 30. One restart, one level shift, no leak.
source "$(dirname "$0")/lib.sh"
sleep 60 | "$BIN/leaky" threads=worker:20 comm=deploy-svc >/dev/null
sleep "$((DURATION > 61 ? DURATION - 61 : 1))" | "$BIN/leaky" threads=worker:30 comm=deploy-svc >/dev/null
