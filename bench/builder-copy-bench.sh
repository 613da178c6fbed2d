#!/usr/bin/env bash
# COPY-heavy build: 10,000 small files + one 1 GiB file, built FROM scratch to an oci-archive
# by build-img-with-proxy and by Debian's buildah 1.28 (vfs and overlay storage drivers) in the
# same run. Prints wall times, our time ÷ buildah's (target ≤ 0.8) and our peak RSS (< 300 MB).
#
#   bash bench/builder-copy-bench.sh            # needs: npm run build, buildah
# Env: BENCH_DIR (default: a temp dir, removed), BIG_MB (default 1024), SMALL_FILES (default 10000),
#      PEERS=0 to time only ours (quick iteration; no ratio).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/src/cli/build-img-with-proxy.js ] || npm run --silent build
BIG_MB="${BIG_MB:-1024}"
SMALL_FILES="${SMALL_FILES:-10000}"
work="${BENCH_DIR:-$(mktemp -d /var/tmp/bip-bench-XXXXXX)}"
cleanup() {
  for drv in vfs overlay; do
    buildah --root "$work/bstore-$drv" --runroot "$work/brun-$drv" --storage-driver "$drv" rm -a >/dev/null 2>&1 || true
    buildah --root "$work/bstore-$drv" --runroot "$work/brun-$drv" --storage-driver "$drv" rmi -a -f >/dev/null 2>&1 || true
  done
  umount "$work"/bstore-overlay/overlay 2>/dev/null || true
  [ -n "${BENCH_DIR:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

ctx="$work/ctx"
if [ ! -f "$ctx/Dockerfile" ]; then
mkdir -p "$ctx/small"
echo "bench: making context in $ctx ($SMALL_FILES small files + ${BIG_MB} MiB file)" >&2
for d in $(seq 0 99); do mkdir -p "$ctx/small/d$d"; done
node -e '
const fs = require("fs");
const n = Number(process.argv[2]);
for (let i = 0; i < n; i++) fs.writeFileSync(`${process.argv[1]}/small/d${i % 100}/f${i}.txt`, `file ${i}\n`.repeat(1 + (i % 20)));
' "$ctx" "$SMALL_FILES"
# Half random, half text-like: realistic compressibility (neither /dev/zero nor pure noise).
head -c $((BIG_MB * 512 * 1024)) /dev/urandom > "$ctx/big.bin"
(set +o pipefail; yes "some log line with a counter and a bit of text 0123456789" | head -c $((BIG_MB * 512 * 1024)) >> "$ctx/big.bin")
cat > "$ctx/Dockerfile" <<'DF'
FROM scratch
COPY small /small
COPY big.bin /big.bin
DF
sync
fi

timeit() { # name, command… → prints seconds; peak RSS (KiB) in $work/$name.rss
  local name="$1"; shift
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$work/$name.rss" "$@" >"$work/$name.log" 2>&1 || { cat "$work/$name.log" >&2; return 1; }
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

export SOURCE_DATE_EPOCH=0
ours=$(timeit ours node dist/src/cli/build-img-with-proxy.js --platform linux/amd64 -t "oci-archive:$work/ours.tar" "$ctx")
if [ "${PEERS:-1}" = 0 ]; then
  printf 'ours (gzip) %6.2f s  peak RSS %d MB\n' "$ours" $(( $(cat "$work/ours.rss") / 1024 ))
  exit 0
fi
# buildah bud defaults to --disable-compression=true (uncompressed layers); we always gzip, so
# the like-for-like peer is buildah with compression on. Both are measured.
bud() { local drv="$1" name="$2"; shift 2
  timeit "$name" buildah --root "$work/bstore-$drv" --runroot "$work/brun-$drv" --storage-driver "$drv" bud --timestamp 0 --platform linux/amd64 "$@" -t "oci-archive:$work/$name.tar" "$ctx"; }
vfs=$(bud vfs buildah-vfs --disable-compression=false)
ovl=$(bud overlay buildah-ovl --disable-compression=false)
vfs_raw=$(bud vfs buildah-vfs-raw)
rss_kb=$(cat "$work/ours.rss")
mb() { echo $(( $(stat -c %s "$1") / 1048576 )); }
printf 'ours (gzip)                  %6.2f s  peak RSS %d MB  archive %d MB\n' "$ours" $((rss_kb / 1024)) "$(mb "$work/ours.tar")"
printf 'buildah vfs (gzip)           %6.2f s  ours/buildah %.2f  archive %d MB\n' "$vfs" "$(echo "$ours / $vfs" | bc -l)" "$(mb "$work/buildah-vfs.tar")"
printf 'buildah overlay (gzip)       %6.2f s  ours/buildah %.2f\n' "$ovl" "$(echo "$ours / $ovl" | bc -l)"
printf 'buildah vfs (default, no gz) %6.2f s  ours/buildah %.2f  archive %d MB\n' "$vfs_raw" "$(echo "$ours / $vfs_raw" | bc -l)" "$(mb "$work/buildah-vfs-raw.tar")"
