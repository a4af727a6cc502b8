#!/usr/bin/env bash
# Incident 002: a Go service leaks a goroutine (and, so the sampler can see it, a pipe) per
# request and crashes every minute with the reason only on stderr; `leakwatch run
# --restart always` supervises it and records every exit with its stderr tail.
source "$(dirname "$0")/lib.sh"
echo LEAK_START
timeout -s TERM "$DURATION" "$BIN/leakwatch" run --name goleak --restart always --interval 1s \
  --data-dir "$(mktemp -d /tmp/lw-run002.XXXXXX)" --listen "127.0.0.1:$PORT1" \
  -- "$BUILD/goleak" >/dev/null 2>&1 &
wait
