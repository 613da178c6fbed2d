#!/usr/bin/env bash
# RUN-heavy build: our build-img-with-proxy vs buildah 1.28 (--isolation chroot, vfs and
# overlay storage), same Dockerfile, same base image from a local registry, same run.
# Prints wall times and our time ÷ buildah's (target ≤ 0.8). Each builder starts from empty
# storage and writes an OCI layout with gzip'd layers (buildah: build + push oci:).
#   BENCH_MIB=500 size of the big file; BENCH_FILES=10000 number of small files
#   BENCH_OURS_ONLY=1 skip buildah (profiling); BUILD_IMG_TIMING=1 prints per-RUN-phase times;
#   BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=DIR" profiles our build
set -euo pipefail
source "$(dirname "$0")/lib-builder.sh"
bench_init builder-run-bench

# Local plain-HTTP registry with a busybox base image.
bench_registry 127.0.0.1:5444
bench_busybox_image

mkdir -p "$W/ctx"
run_heavy_dockerfile "$W/ctx/Dockerfile"

ours() {
  local t0; t0=$(now)
  (cd "$W/ctx" && SOURCE_DATE_EPOCH=0 PLATFORMS=linux/amd64 node ${BENCH_NODE_FLAGS:-} "$ROOT/bin/build-img-with-proxy.js" --tls-verify=false --tag "oci:$W/ours-oci:bench" . >"$W/ours.log" 2>&1) \
    || { echo "our build failed:" >&2; tail -20 "$W/ours.log" >&2; exit 1; }
  awk "BEGIN{print $(now)-$t0}"
}
buildah_time() { # DRIVER [--layers]
  local d="$W/buildah-$1${2:+-layers}" t0; mkdir -p "$d"; t0=$(now)
  (cd "$W/ctx" && buildah --root "$d/root" --runroot "$d/run" --storage-driver "$1" build -q --isolation chroot --tls-verify=false \
    --timestamp 0 ${2:-} -t bench . >"$d.log" 2>&1 && buildah --root "$d/root" --runroot "$d/run" --storage-driver "$1" push -q bench "oci:$d/oci:bench" >>"$d.log" 2>&1) \
    || { echo "buildah ($1) failed:" >&2; tail -20 "$d.log" >&2; exit 1; }
  awk "BEGIN{print $(now)-$t0}"
}
t_ours=$(ours)
if [ "${BENCH_OURS_ONLY:-}" = 1 ]; then
  printf 'build-img-with-proxy           %6.1fs\n' "$t_ours"; cat "$W/ours.log"; exit 0
fi
t_vfs=$(buildah_time vfs)
t_ovl=$(buildah_time overlay)
t_ovl_layers=$(buildah_time overlay --layers)
printf 'files=%s big=%sMiB\n' "${BENCH_FILES:-10000}" "${BENCH_MIB:-500}"
printf 'build-img-with-proxy           %6.1fs\n' "$t_ours"
printf 'buildah 1.28 chroot vfs        %6.1fs   ours/buildah = %.2f\n' "$t_vfs" "$(awk "BEGIN{print $t_ours/$t_vfs}")"
printf 'buildah 1.28 chroot overlay    %6.1fs   ours/buildah = %.2f\n' "$t_ovl" "$(awk "BEGIN{print $t_ours/$t_ovl}")"
# Without --layers buildah squashes all RUN steps into one layer; we (like Docker) write one per RUN.
printf 'buildah 1.28 overlay --layers  %6.1fs   ours/buildah = %.2f\n' "$t_ovl_layers" "$(awk "BEGIN{print $t_ours/$t_ovl_layers}")"
