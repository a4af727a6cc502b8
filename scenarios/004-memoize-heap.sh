#!/usr/bin/env bash
# Incident 004: a JVM memoizes results in an unbounded map keyed by ever-new arguments,
# 2 MB a second, under the GC sawtooth of 20 MB/s of request garbage.
source "$(dirname "$0")/lib.sh"
sleep "$DURATION" | java -Dscenario=004 -XX:+UseSerialGC -Xms32m -Xmx1g -XX:TieredStopAtLevel=1 \
  -cp "$BUILD/java" Service memo-leak | mark_on ready &
wait
