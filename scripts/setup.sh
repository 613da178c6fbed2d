#!/usr/bin/env bash
# Installs everything htvend, its tests and its benchmarks need on a fresh Debian 12 machine
# (run as root), then builds the TypeScript. Idempotent: re-running only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  runc crun docker-registry busybox-static skopeo umoci qemu-user-static binfmt-support
  uidmap iproute2 curl wget openssl ca-certificates debootstrap attr zstd
  # clients of the client-config tests (test/e2e/client-configs.test.ts)
  golang-go
  # peers for benchmarks and tests
  nginx mitmproxy buildah
  # opens htvend report's HTML in tests (driven by puppeteer-core)
  chromium
  containerd  # htvend mirror tests: a private instance pulls through the mirror
  bsdutils  # script(1): a pseudo-terminal for the build-cache step-table test
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# nginx and the registry are started by tests on loopback ports; keep the distro services off.
for svc in nginx docker-registry; do
  if command -v systemctl >/dev/null && systemctl is-active -q "$svc" 2>/dev/null; then systemctl stop "$svc" || true; fi
done

# Foreign-architecture RUN steps execute under qemu via binfmt_misc.
if [ -d /proc/sys/fs/binfmt_misc ]; then
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
fi

# Builder tests' arm64 busybox base image (test/helpers/busybox-image.ts): busybox-static:arm64
# from the Debian mirror, unpacked once into a cache dir. Best effort: tests skip arm64 without it.
BUSYBOX_ARM64=/var/cache/htvend-test/busybox-arm64
if [ ! -x "$BUSYBOX_ARM64/bin/busybox" ] && [ "${HTVEND_TEST_NO_NETWORK:-}" != 1 ]; then
  (
    set -e
    dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64 && apt-get update -qq; }
    dl=$(mktemp -d) && cd "$dl" && apt-get download -qq busybox-static:arm64 >/dev/null
    mkdir -p "$BUSYBOX_ARM64" && dpkg-deb -x "$dl"/busybox-static_*_arm64.deb "$BUSYBOX_ARM64" && rm -rf "$dl"
  ) || echo "setup: busybox-static:arm64 unavailable; arm64 builder tests will be skipped" >&2
fi

# crun refuses "cgroups in hybrid mode" while a v1 controller (hugetlb) is still listed in
# the unified hierarchy; mount v1 hierarchies for those controllers (ENVIRONMENT.md).
if [ -f /sys/fs/cgroup/unified/cgroup.controllers ]; then
  for c in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
    [ -d "/sys/fs/cgroup/$c" ] && mountpoint -q "/sys/fs/cgroup/$c" && continue
    mkdir -p "/sys/fs/cgroup/$c" && mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" 2>/dev/null || true
  done
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
