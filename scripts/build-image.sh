#!/usr/bin/env bash
# Builds the container image localhost/leakwatch:VERSION with buildah, from scratch and
# without pulling anything: the binary, the libraries it links (from this machine, by
# ldd), CA certificates for HTTPS alert channels, a passwd/group naming root and nobody,
# and /etc/leakwatch/leakwatch.toml (dist/leakwatch.toml). No shell, no package manager.
# Run it as docs/agent.md says: the host's pid namespace, and only CAP_SYS_PTRACE and
# CAP_DAC_READ_SEARCH (dist/kubernetes/leakwatch.yaml does the same as a DaemonSet).
#
#   scripts/build-image.sh              # a release build
#   PROFILE=dev scripts/build-image.sh  # the debug build (the test suite's, faster)
#   IMAGE=registry.example.com/leakwatch:1 scripts/build-image.sh
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-release}
if [ "$profile" = release ]; then bin=target/release/leakwatch; else bin=target/debug/leakwatch; fi
cargo build --profile "$profile" -p leakwatch
version=$("$bin" --version | awk '{print $2}')
image=${IMAGE:-localhost/leakwatch:$version}
work=$(mktemp -d)
ctr=
cleanup() {
  [ -n "$ctr" ] && buildah rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
ctr=$(buildah from scratch)
buildah copy "$ctr" "$bin" /usr/bin/leakwatch >/dev/null
# The dynamic loader and every library the binary links, at the same paths.
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
  buildah copy "$ctr" "$lib" "$lib" >/dev/null
done
buildah copy "$ctr" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt >/dev/null
printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$work/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$work/group"
buildah copy "$ctr" "$work/passwd" /etc/passwd >/dev/null
buildah copy "$ctr" "$work/group" /etc/group >/dev/null
buildah copy "$ctr" dist/leakwatch.toml /etc/leakwatch/leakwatch.toml >/dev/null
buildah config \
  --entrypoint '["/usr/bin/leakwatch"]' \
  --cmd '["agent", "--config", "/etc/leakwatch/leakwatch.toml"]' \
  --env LEAKWATCH_LOG=info \
  --volume /var/lib/leakwatch \
  --port 9464 \
  --label org.opencontainers.image.title=leakwatch \
  --label org.opencontainers.image.description="Catches resource leaks in production services" \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.licenses="MIT OR Apache-2.0" \
  "$ctr"
buildah commit --quiet --rm "$ctr" "$image" >/dev/null
ctr=
echo "$image"
