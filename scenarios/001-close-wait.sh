#!/usr/bin/env bash
# Incident 001: a client checks sessions against a server that answers 403 with a body and
# hangs up; the client never closes the response, so each 403 leaves a CLOSE_WAIT socket.
# One forbidden and one valid request a second.
source "$(dirname "$0")/lib.sh"
"$BIN/forbidding-server" "127.0.0.1:$PORT1" >/dev/null &
"$BIN/session-client" --listen "127.0.0.1:$PORT2" --downstream "127.0.0.1:$PORT1" >/dev/null &
for _ in $(seq 50); do
  "$BIN/http-get" "http://127.0.0.1:$PORT2/" >/dev/null 2>&1 && break || sleep 0.1
done
echo LEAK_START
end=$((SECONDS + DURATION))
while [ "$SECONDS" -lt "$end" ]; do
  "$BIN/http-get" --cookie session=expired "http://127.0.0.1:$PORT2/" >/dev/null 2>&1 || true
  "$BIN/http-get" --cookie session=valid "http://127.0.0.1:$PORT2/" >/dev/null 2>&1 || true
  sleep 1
done
