#!/bin/bash
# How tests/fixtures were captured: a real agent (fast preset, a webhook receiver, two
# leaking `leaky` processes, one silenced, a restart command) and a `leakwatch run` crash
# loop, every API answer saved with curl, and the persisted records copied from the data
# dir (incident.json to crates/agent/tests/fixtures, the outbox row and the alert engine's
# state to crates/alert/tests/fixtures). The API answers were then trimmed to a few items
# each (same shapes). Needs curl, python3 and the built binaries.
#
#   BIN=target/debug crates/api/tests/capture.sh OUT_DIR
set -u
BIN=${BIN:-target/debug}
OUT=${1:?output directory}; mkdir -p $OUT
HOOKPY=$(dirname "$0")/capture_hook.py
D=$(mktemp -d)
P=19581; H=19582; P2=19583
python3 $HOOKPY $H & HOOK=$!
cat > $D/leakwatch.toml <<TOML
[agent]
interval = "1s"
listen = "127.0.0.1:$P"
data_dir = "$D"
[detect]
preset = "fast"
[[target]]
name = "grower"
cmdline = "leak-threads=Leaky"
capture = [["cat", "/proc/{pid}/status"]]
[target.mitigation]
restart_command = ["touch", "$D/restarted-{pid}"]
when_eta_below = "365d"
max_per_day = 1
[[target]]
name = "hushed"
cmdline = "leak-threads=Hush"
[alerts]
pending_for = "0s"
[alerts.routes]
warning = ["hook"]
critical = ["hook"]
[alerts.channels.hook]
type = "webhook"
url = "http://127.0.0.1:$H/hook"
TOML
$BIN/leakwatch agent --config $D/leakwatch.toml 2>$OUT/agent.log & AGENT=$!
sleep 3
U=http://127.0.0.1:$P
curl -s -X POST -H 'content-type: application/json' -d '{"target":"hushed","resource":null,"for":"1h","reason":"known issue"}' $U/api/v1/silences > $OUT/silences_post.json
curl -s -X POST -H 'content-type: application/json' -d '{"target":"other","resource":"fds","for":"2h","reason":""}' $U/api/v1/silences > /dev/null
( exec -a leaky-a $BIN/leaky threads=Base:2 leak-threads=Leaky:100 < /dev/zero > /dev/null ) & L1=$!
( exec $BIN/leaky threads=Base:2 leak-threads=Hush:100 < /dev/zero > /dev/null ) & L2=$!
sleep 45
# A restart of grower: replace its process.
kill $L1; sleep 1
( exec $BIN/leaky threads=Base:2 leak-threads=Leaky:100 < /dev/zero > /dev/null ) & L1=$!
sleep 4
for ep in agent targets findings alerts incidents silences; do curl -s $U/api/v1/$ep > $OUT/$ep.json; done
curl -s "$U/api/v1/series?target=grower&since=2m" > $OUT/series.json
curl -s "$U/api/v1/restarts?target=grower" > $OUT/restarts_host.json
ID=$(python3 -c "import json;print(json.load(open('$OUT/incidents.json'))['incidents'][-1]['id'])")
curl -s $U/api/v1/incidents/$ID > $OUT/incident.json
cp $D/incidents/$ID/incident.json $OUT/incident_file.json
curl -s -X DELETE "$U/api/v1/silences?target=other&resource=fds" > $OUT/silences_delete.json
curl -s -X DELETE "$U/api/v1/silences?target=nobody" > $OUT/silences_delete_all.json
curl -s "$U/api/v1/series?target=nosuch" > $OUT/error_404.json
curl -s "$U/api/v1/series?target=grower&since=soon" > $OUT/error_400.json
curl -s -X POST -H 'content-type: application/json' -d '{"target":"x","for":"10000y"}' $U/api/v1/silences > $OUT/error_silence.json
curl -s $U/api/v1/incidents/20990101-000000-nope > $OUT/error_incident.json
kill $L1 $L2; kill $AGENT; wait $AGENT
python3 - <<PY
import sqlite3, json
c = sqlite3.connect("$D/alerts.db")
rows = c.execute("select reason, notification from outbox order by row").fetchall()
open("$OUT/outbox_rows.json","w").write(json.dumps([json.loads(n) for _, n in rows], indent=1))
firing = [n for r, n in rows if r == "firing"]
open("$OUT/outbox_notification.json","w").write(firing[0])
open("$OUT/engine_state.json","w").write(c.execute("select state from engine_state").fetchone()[0])
PY
# leakwatch run: exits with codes and stderr tails.
$BIN/leakwatch run --name crasher --max-restarts 4 --data-dir $D/run --listen 127.0.0.1:$P2 -- sh -c 'echo starting; echo "fatal error: boom" >&2; sleep 1; exit 2' > /dev/null 2>$OUT/run.log & RUN=$!
sleep 11
curl -s "http://127.0.0.1:$P2/api/v1/restarts?target=crasher" > $OUT/restarts.json
curl -s "http://127.0.0.1:$P2/api/v1/alerts" > $OUT/alerts_disabled.json
curl -s "http://127.0.0.1:$P2/api/v1/silences" > $OUT/silences_disabled.json
curl -s -X POST -H 'content-type: application/json' -d '{"target":"x","for":"1h"}' "http://127.0.0.1:$P2/api/v1/silences" > $OUT/error_409.json
wait $RUN
kill $HOOK
ls -la $OUT; echo data=$D
