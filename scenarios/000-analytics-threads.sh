#!/usr/bin/env bash
# Incident 000: every request builds an ExecutorService of "Analytics" threads that is never
# shut down. One leaked thread every 200 ms from the first request.
source "$(dirname "$0")/lib.sh"
sleep "$DURATION" | java -Dscenario=000 -XX:TieredStopAtLevel=1 -cp "$BUILD/testkit-java" \
  Analytics 0 200 | mark_on ready &
wait
