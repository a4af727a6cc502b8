#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (Debian packages,
# cargo-fuzz), then checks formatting and lints, runs every test, and fuzzes the /proc
# parsers briefly. `.ci/run` calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

# Real oracles, runtimes and servers the tests use: ss (iproute2), setpriv (util-linux), a
# JDK with jstack, gcc for the benchmark population, python3 for the bench driver and the
# scenario runner, prometheus (promtool checks /metrics; `analyze --prometheus` reads from
# it), golang-go and postgresql for the live scenarios, prometheus-alertmanager and pip's
# aiosmtpd as real alert receivers (openssl makes their test TLS certificates), tmux as
# the real terminal `leakwatch top` is tested in,
# chromium as the real browser the dashboard is tested in (driven by playwright-core from
# npm, with the machine's Node.js >= 20), man-db and groff-base render the generated man
# pages and bash-completion is the real consumer of the generated completions; adduser
# for the Debian package's postinst (scripts/test-deb.sh); podman, buildah and runc build and
# run the container image (scripts/test-image.sh; runc, as crun refuses hybrid cgroups);
# clang and libbpf-dev compile the eBPF program of crates/bpf in the normal build, and
# libelf-dev, zlib1g-dev and pkg-config build the libbpf it links (issue 14).
packages=(clang libbpf-dev libelf-dev zlib1g-dev pkg-config iproute2 util-linux openjdk-17-jdk-headless gcc python3 prometheus golang-go postgresql prometheus-alertmanager python3-pip openssl tmux chromium man-db groff-base bash-completion adduser podman buildah runc)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${packages[@]}"
  # aiosmtpd: the real SMTP server the alert email test sends to (crates/alert).
  python3 -c "import aiosmtpd" 2>/dev/null || python3 -m pip install -q aiosmtpd || python3 -m pip install -q --break-system-packages aiosmtpd
  # kubernetes: the Kubernetes API's models, which check the DaemonSet offline
  # (scripts/check-kubernetes.py); pinned, as the models became strict pydantic ones.
  python3 -c "import kubernetes, sys; sys.exit(kubernetes.__version__ != '37.0.3')" 2>/dev/null || python3 -m pip install -q kubernetes==37.0.3 || python3 -m pip install -q --break-system-packages kubernetes==37.0.3
else
  echo "not root: assuming ${packages[*]} are installed" >&2
fi

cargo fmt --all -- --check
# No import cycles between the modules of a crate (ARCHITECTURE.md, invariants).
python3 scripts/module-cycles.py
cargo clippy --workspace --all-targets -- -D warnings
# The integration tests in crates/testkit run the real binaries (leakwatch, leaky, ...):
# build them all first, since `cargo test` only builds a package's binaries for that
# package's own integration tests.
cargo build --workspace --bins
# The dashboard's browser test (crates/testkit/tests/dashboard.rs) runs tests/browser/.
(cd tests/browser && npm ci --no-audit --no-fund)
cargo test --workspace

# The Debian package (issue 15): built with cargo-deb from the debug build, installed with
# dpkg, its unit's ExecStart run as the unit's user with the unit's capabilities, removed
# and purged. Root only (dpkg -i); skipped, and said, otherwise.
if [ "$(id -u)" = 0 ] && command -v dpkg >/dev/null; then
  scripts/test-deb.sh
else
  echo "test-deb: skipped (needs root and dpkg)" >&2
fi
# The container image and the DaemonSet (issue 15): built with buildah, the manifest checked
# against the Kubernetes API's models, the image run with podman as the DaemonSet's pod.
if [ "$(id -u)" = 0 ] && command -v podman >/dev/null; then
  scripts/test-image.sh
else
  echo "test-image: skipped (needs root and podman)" >&2
fi

# The parser fuzz target: a fixed seed and a fixed number of runs, so a CI verdict is
# reproducible (the same inputs every time, about 20 s here). Explore longer by hand:
#   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run parsers -- -max_total_time=600
# (cargo-fuzz needs nightly flags; the stable toolchain accepts them with RUSTC_BOOTSTRAP=1).
if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked
fi
(cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run parsers -- -seed=1 -runs="${FUZZ_RUNS:-400000}")
echo "fuzz: parsers ran ${FUZZ_RUNS:-400000} inputs (seed 1) without a crash"
