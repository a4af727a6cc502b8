#!/usr/bin/env bash
# The Debian package, installed and run the way its unit runs it (issue 15): builds it
# (PROFILE=dev by default: the suite's debug build; PROFILE=release for the shipped one),
# installs it with dpkg, checks what it installed (binary, unit, conffile, man pages,
# completions, the leakwatch user and /var/lib/leakwatch), runs the unit's ExecStart as the
# unit's User with only the unit's capabilities (there is no systemd here, so setpriv does
# what systemd would), checks that this agent reads the fds of a root process, then
# removes and purges the package. Root only; the machine is left as it was but for the
# leakwatch system user (Debian's policy keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (dpkg -i)"
if dpkg -s leakwatch >/dev/null 2>&1; then
  fail "a leakwatch package is installed already: not touching it"
fi
# The package owns /var/lib/leakwatch and purge removes it: a root agent's history may be
# there.
if [ -e /var/lib/leakwatch ]; then
  fail "/var/lib/leakwatch exists (a root agent's history?): not touching it"
fi
PROFILE=${PROFILE:-dev} scripts/build-deb.sh --quiet >/dev/null
deb=$(ls -t target/debian/leakwatch_*.deb | head -1)
agent=
holder=
work=
cleanup() {
  [ -n "$agent" ] && kill "$agent" 2>/dev/null || true
  [ -n "$holder" ] && kill "$holder" 2>/dev/null || true
  dpkg --purge leakwatch >/dev/null 2>&1 || true
  [ -n "$work" ] && rm -rf "$work"
}
trap cleanup EXIT
work=$(mktemp -d)

dpkg -i "$deb" >/dev/null
for f in /usr/bin/leakwatch /etc/leakwatch/leakwatch.toml /usr/lib/systemd/system/leakwatch.service \
  /usr/share/man/man1/leakwatch.1.gz /usr/share/man/man1/leakwatch-agent.1.gz \
  /usr/share/bash-completion/completions/leakwatch /usr/share/zsh/vendor-completions/_leakwatch \
  /usr/share/fish/vendor_completions.d/leakwatch.fish /usr/share/leakwatch/prometheus/leakwatch-rules.yml; do
  [ -e "$f" ] || fail "$f is not installed"
done
dpkg-query -W -f='${Conffiles}\n' leakwatch | grep -q '/etc/leakwatch/leakwatch.toml' || fail "the config is not a conffile"
getent passwd leakwatch >/dev/null || fail "no leakwatch user"
[ "$(stat -c %U /var/lib/leakwatch)" = leakwatch ] || fail "/var/lib/leakwatch is not leakwatch's"
/usr/bin/leakwatch config check /etc/leakwatch/leakwatch.toml >/dev/null || fail "the shipped config does not check"
man -P cat leakwatch-why 2>/dev/null | grep -q "which code creates" || fail "man leakwatch-why does not render"
bash -c '. /usr/share/bash-completion/bash_completion; _completion_loader leakwatch; complete -p leakwatch' \
  | grep -q "leakwatch$" || fail "bash does not load the installed completion"

# The unit, as systemd would run it: its user, its ambient and bounding capabilities.
unit=/usr/lib/systemd/system/leakwatch.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
user=$(sed -n 's/^User=//p' "$unit")
caps=$(sed -n 's/^AmbientCapabilities=//p' "$unit" | tr ' ' '\n' | sed 's/^CAP_/+/' | tr 'A-Z' 'a-z' | paste -sd, -)
[ -n "$exec_start" ] && [ -n "$user" ] && [ -n "$caps" ] || fail "the unit lacks ExecStart, User or AmbientCapabilities"
# A port of its own (the unit's command, plus --listen): an agent already on 9464 must not
# answer for it.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# A root process holding two extra fds, for the agent to read.
sleep 300 3</etc/hostname 4</etc/hostname &
holder=$!
# shellcheck disable=SC2086 # ExecStart is a command line: split as systemd splits it
setpriv --reuid="$user" --regid="$user" --init-groups --no-new-privs \
  --inh-caps="-all,$caps" --ambient-caps="-all,$caps" --bounding-set="-all,$caps" \
  $exec_start --listen "127.0.0.1:$port" >"$work/agent.log" 2>&1 &
agent=$!
python3 - "$holder" "$port" <<'PY' || { cat "$work/agent.log" >&2; fail "the packaged agent did not read the root process's fds"; }
import json, sys, time, urllib.request
holder, port = int(sys.argv[1]), int(sys.argv[2])
deadline = time.time() + 60
last = None
while time.time() < deadline:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/targets", timeout=2) as r:
            targets = json.load(r)["targets"]
        for t in targets:
            if any(p.get("pid") == holder for p in t.get("processes", [])):
                last = t
                # Its two fds on /etc/hostname, by path: readlink of another user's
                # /proc/PID/fd/N, what the capabilities are for.
                held = (t.get("current") or {}).get("fds{/etc/hostname}", 0)
                if held >= 2:
                    print(f"test-deb: the packaged agent, as its own user, reads root's pid {holder}: "
                          f"{held:.0f} fds on /etc/hostname, {t['current'].get('fds', 0):.0f} in all")
                    sys.exit(0)
    except OSError:
        pass
    time.sleep(1)
print(f"last seen: {last}", file=sys.stderr)
sys.exit(1)
PY
grep -q "watching every process" "$work/agent.log" || fail "the agent does not say it watches every process"
[ -f /var/lib/leakwatch/leakwatch.db ] || fail "no history in /var/lib/leakwatch"
kill -TERM "$agent"; wait "$agent" || true; agent=

dpkg -r leakwatch >/dev/null
[ ! -e /usr/bin/leakwatch ] || fail "dpkg -r left /usr/bin/leakwatch"
[ -e /etc/leakwatch/leakwatch.toml ] || fail "dpkg -r removed the conffile"
dpkg --purge leakwatch >/dev/null
[ ! -e /etc/leakwatch/leakwatch.toml ] || fail "purge left the conffile"
[ ! -e /var/lib/leakwatch ] || fail "purge left /var/lib/leakwatch"
echo "test-deb: ok ($(basename "$deb"): installed, ran as $user with $caps, removed, purged)"
