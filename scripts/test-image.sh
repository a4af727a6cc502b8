#!/usr/bin/env bash
# The container image and the DaemonSet (issue 15): builds the image with buildah
# (PROFILE=dev by default: the suite's debug build), checks the manifest against the
# Kubernetes API's models (scripts/check-kubernetes.py, and that it refuses a broken copy),
# then runs the image with podman the way the DaemonSet's pod runs it — settings read from
# dist/kubernetes/leakwatch.yaml: host pid and network namespaces, its user, its
# capabilities only, a read-only root, its ConfigMap as the config, its args — and requires
# the liveness and readiness probes' answers and the fds of a root process on the host, by
# path. Root only; removes its container and image.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "test-image: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (rootful podman)"
manifest=dist/kubernetes/leakwatch.yaml
name=leakwatch-test-$$
holder=
image=
work=
cleanup() {
  podman --runtime runc rm -f "$name" >/dev/null 2>&1 || true
  [ -n "$image" ] && podman rmi -f "$image" >/dev/null 2>&1 || true
  [ -n "$holder" ] && kill "$holder" 2>/dev/null || true
  [ -n "$work" ] && rm -rf "$work"
}
trap cleanup EXIT
work=$(mktemp -d)
python3 scripts/check-kubernetes.py "$manifest" >/dev/null || fail "the manifest does not check"
sed 's/^          imagePullPolicy: IfNotPresent$/&\n          imagePullPolicy2: Always/' "$manifest" >"$work/broken.yaml"
if python3 scripts/check-kubernetes.py "$work/broken.yaml" >/dev/null 2>&1; then
  fail "the manifest check accepts an unknown field"
fi
image=$(PROFILE=${PROFILE:-dev} IMAGE=localhost/leakwatch:test scripts/build-image.sh | tail -1)

# The pod's settings, as podman arguments (one per line), and its ConfigMap's config.
python3 - "$manifest" "$work" >"$work/args" <<'PY'
import sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
work = sys.argv[2]
ds = next(d for d in docs if d["kind"] == "DaemonSet")
cm = next(d for d in docs if d["kind"] == "ConfigMap")
pod = ds["spec"]["template"]["spec"]
(c,) = pod["containers"]
sc = c["securityContext"]
open(f"{work}/leakwatch.toml", "w").write(cm["data"]["leakwatch.toml"])
args = []
if pod.get("hostPID"): args.append("--pid=host")
if pod.get("hostNetwork"): args.append("--network=host")
args.append(f"--user={sc['runAsUser']}:{sc['runAsGroup']}")
if sc.get("readOnlyRootFilesystem"): args.append("--read-only")
if sc.get("allowPrivilegeEscalation") is False: args.append("--security-opt=no-new-privileges")
assert sc["capabilities"]["drop"] == ["ALL"]
args.append("--cap-drop=all")
args.append("--cap-add=" + ",".join(sc["capabilities"]["add"]))
args.append(f"--memory={c['resources']['limits']['memory'].replace('Mi', 'm')}")
for m in c["volumeMounts"]:
    src = {"data": f"{work}/data", "config": work, "kubelet-logs": f"{work}/kubelet"}[m["name"]]
    ro = ",ro" if m.get("readOnly") else ""
    args.append(f"--volume={src}:{m['mountPath']}{ro}")
for e in c.get("env", []):
    args.append(f"--env={e['name']}={e['value']}")
print("\n".join(args))
print("--")
print("\n".join(c["args"]))
# A port of its own, so an agent already on the pod's port cannot answer for it.
import socket
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
port = sock.getsockname()[1]
print("--listen")
print(f"127.0.0.1:{port}")
open(f"{work}/port", "w").write(str(port))
PY
mkdir -p "$work/data" "$work/kubelet"
mapfile -t pod_args <"$work/args"
split=0
for i in "${!pod_args[@]}"; do [ "${pod_args[$i]}" = "--" ] && split=$i; done
run_args=("${pod_args[@]:0:$split}")
cmd_args=("${pod_args[@]:$((split + 1))}")
# A root process holding two fds on /etc/hostname, for the agent to read.
sleep 300 3</etc/hostname 4</etc/hostname &
holder=$!
# The runtime: runc (crun refuses this machine's hybrid cgroups); nofile and nproc within
# this machine's hard limits (podman's defaults are above them).
podman --runtime runc run -d --name "$name" --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
  "${run_args[@]}" "$image" "${cmd_args[@]}" >/dev/null
python3 - "$holder" "$(cat "$work/port")" <<'PY' || { podman logs "$name" >&2 || true; fail "the containerized agent did not answer as the pod's probes and tests require"; }
import json, sys, time, urllib.request
holder, port = int(sys.argv[1]), int(sys.argv[2])
def get(path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
        return r.status, r.read()
deadline = time.time() + 60
while time.time() < deadline:
    try:
        live, _ = get("/healthz")
        ready, _ = get("/api/v1/agent")
        _, body = get("/api/v1/targets")
        for t in json.loads(body)["targets"]:
            if any(p.get("pid") == holder for p in t.get("processes", [])):
                held = (t.get("current") or {}).get("fds{/etc/hostname}", 0)
                if live == 200 and ready == 200 and held >= 2:
                    print(f"test-image: liveness {live}, readiness {ready}; the agent in its container "
                          f"reads the host's root pid {holder}: {held:.0f} fds on /etc/hostname")
                    sys.exit(0)
    except OSError:
        pass
    time.sleep(1)
sys.exit(1)
PY
[ -f "$work/data/leakwatch.db" ] || fail "no history in the data volume"
if podman --runtime runc exec "$name" /bin/sh -c true 2>/dev/null; then
  fail "the image has a shell"
fi
echo "test-image: ok ($image: ${run_args[*]})"
