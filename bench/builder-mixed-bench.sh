#!/usr/bin/env bash
# Mixed build (issue 12): COPY of 5,000 small files, a RUN writing 5,000 files, a RUN deleting
# the copied tree, a 200 MiB RUN. Ours vs buildah 1.28 (chroot isolation, overlay storage),
# both cold, both writing gzip layers (buildah: build, then push to oci:), same run.
# Prints wall times and ours ÷ buildah (mark: <= 0.7 against buildah overlay).
#   BENCH_FILES=5000 BENCH_MIB=200; SKIP_BUILD=1 skips `npm run build`
#   BENCH_OURS_ONLY=1 times only ours; BUILD_IMG_TIMING=1 prints per-RUN-phase times
#   BENCH_NODE_FLAGS="--cpu-prof --cpu-prof-dir=DIR" profiles our build
set -euo pipefail
source "$(dirname "$0")/lib-builder.sh"
bench_init builder-mixed-bench
FILES=${BENCH_FILES:-5000}
MIB=${BENCH_MIB:-200}

# Local plain-HTTP registry with a busybox base image.
bench_registry 127.0.0.1:5446
bench_busybox_image

mkdir -p "$W/ctx/copied"
for i in $(seq "$FILES"); do echo "$i" > "$W/ctx/copied/c$i"; done
cat > "$W/ctx/Dockerfile" <<DOCKERFILE
FROM $REG/busybox:latest
COPY copied /data/copied
RUN mkdir -p /data/made && cd /data/made && i=0 && while [ \$i -lt $FILES ]; do echo \$i > f\$i; i=\$((i+1)); done
RUN rm -rf /data/copied
RUN dd if=/dev/urandom of=/big bs=1M count=$MIB 2>/dev/null
DOCKERFILE

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
t_ovl=$(buildah_time overlay)
t_ovl_layers=$(buildah_time overlay --layers)
printf 'COPY %s files, RUN writing %s files, a delete, %s MiB; gzip layers to oci:\n' "$FILES" "$FILES" "$MIB"
printf 'build-img-with-proxy           %6.1fs\n' "$t_ours"
printf 'buildah 1.28 chroot overlay    %6.1fs   ours/buildah = %.2f (mark <= 0.7)\n' "$t_ovl" "$(awk "BEGIN{print $t_ours/$t_ovl}")"
# Without --layers buildah squashes all steps into one layer; we (like Docker) write one per step.
printf 'buildah 1.28 overlay --layers  %6.1fs   ours/buildah = %.2f\n' "$t_ovl_layers" "$(awk "BEGIN{print $t_ours/$t_ovl_layers}")"
