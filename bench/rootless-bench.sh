#!/usr/bin/env bash
# Rootless RUN-heavy build (issue 14): the Dockerfile of builder-run-bench.sh built by an
# unprivileged user (created if missing, with its /etc/subuid and /etc/subgid range) with our
# build-img-with-proxy (user namespace via newuidmap/newgidmap) and with buildah 1.28 rootless
# (--storage-driver vfs --isolation chroot, storage in the user's XDG dirs), same run, each from
# empty storage, each writing an OCI layout. Prints wall times, our time ÷ buildah's (target
# ≤ 0.8) and `uptime`. Needs root (to create the user). Run it under flock /tmp/htvend-bench.lock.
#   BENCH_MIB=500 size of the big file; BENCH_FILES=10000 number of small files
#   BENCH_USER=htvend-bench the unprivileged user
set -euo pipefail
source "$(dirname "$0")/lib-builder.sh"
bench_init rootless-bench
U=${BENCH_USER:-htvend-bench}
id -u "$U" >/dev/null 2>&1 || flock /tmp/htvend-test-useradd.lock useradd -m -s /bin/sh "$U"
grep -q "^$U:" /etc/subuid && grep -q "^$U:" /etc/subgid || { echo "bench: $U has no /etc/subuid or /etc/subgid range" >&2; exit 1; }
UH=$(getent passwd "$U" | cut -d: -f6)
UW=$(mktemp -d "$UH/rootless-bench.XXXXXX")
chown "$U:" "$UW"
as_user() { runuser -u "$U" -- env -i HOME="$UH" USER="$U" PATH=/usr/local/bin:/usr/bin:/bin \
  XDG_DATA_HOME="$UW/xdg-data" XDG_CONFIG_HOME="$UW/xdg-config" XDG_RUNTIME_DIR="$UW/xdg-run" "$@"; }
rl_cleanup() {
  # buildah's vfs layers hold files owned by sub-ids: remove them from inside the user's namespace.
  [ -d "$UW" ] && { as_user buildah unshare rm -rf "$UW" >/dev/null 2>&1 || true; rm -rf "$UW"; }
  bench_cleanup
}
trap rl_cleanup EXIT

bench_registry 127.0.0.1:5446
bench_busybox_image

# The built CLIs, where the user can read them (/work may not be).
mkdir -p "$UW/app" "$UW/ctx" "$UW/xdg-data" "$UW/xdg-config" "$UW/xdg-run"
cp -a "$ROOT/dist" "$ROOT/bin" "$ROOT/package.json" "$ROOT/node_modules" "$UW/app/"
run_heavy_dockerfile "$UW/ctx/Dockerfile"
chown -R "$U:" "$UW"
chmod 0700 "$UW/xdg-run"

ours() {
  local t0; t0=$(now)
  (cd "$UW/ctx" && as_user SOURCE_DATE_EPOCH=0 PLATFORMS=linux/amd64 TMPDIR="$UW" "$(command -v node)" "$UW/app/bin/build-img-with-proxy.js" \
    --tls-verify=false --tag "oci:$UW/ours-oci:bench" . >"$W/ours.log" 2>&1) \
    || { echo "our rootless build failed:" >&2; tail -20 "$W/ours.log" >&2; exit 1; }
  awk "BEGIN{print $(now)-$t0}"
}
buildah_rootless() {
  local t0; t0=$(now)
  (cd "$UW/ctx" && as_user BUILDAH_ISOLATION=chroot buildah --storage-driver vfs build -q --isolation chroot --tls-verify=false --timestamp 0 -t bench . >"$W/buildah.log" 2>&1 \
    && as_user buildah --storage-driver vfs push -q bench "oci:$UW/buildah-oci:bench" >>"$W/buildah.log" 2>&1) \
    || { echo "buildah rootless failed:" >&2; tail -20 "$W/buildah.log" >&2; exit 1; }
  awk "BEGIN{print $(now)-$t0}"
}
load0=$(uptime)
t_ours=$(ours)
t_bh=$(buildah_rootless)
load1=$(uptime)
ratio=$(awk "BEGIN{printf \"%.2f\", $t_ours/$t_bh}")
mark=$(awk "BEGIN{print ($t_ours <= 0.8*$t_bh) ? \"meets ≤ 0.8\" : \"MISSES ≤ 0.8\"}")
printf 'rootless as %s: files=%s big=%sMiB\n' "$U" "${BENCH_FILES:-10000}" "${BENCH_MIB:-500}"
printf 'build-img-with-proxy (userns, overlay)   %6.1fs\n' "$t_ours"
printf 'buildah 1.28 rootless chroot vfs         %6.1fs   ours/buildah = %s (%s)\n' "$t_bh" "$ratio" "$mark"
grep -m1 -i 'snapshot' "$W/ours.log" || true
printf 'load before: %s\nload after:  %s\n' "$load0" "$load1"
