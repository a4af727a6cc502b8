#!/usr/bin/env bash
# Healthy control: `java Service cache` (see java/Service.java), same JVM flags as 004.
source "$(dirname "$0")/lib.sh"
sleep "$DURATION" | java -Dscenario=healthy-cache -XX:+UseSerialGC -Xms32m -Xmx1g \
  -XX:TieredStopAtLevel=1 -cp "$BUILD/java" Service cache &
wait
