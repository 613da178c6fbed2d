#!/usr/bin/env bash
# Warm rebuilds under `htvend build`: ours (--layers) vs buildah 1.28 --layers (chroot,
# overlay). Dockerfile: an HTTPS download, a 10,000-file RUN, a 200 MiB RUN, then a COPY.
# Each tool builds cold, the COPY source changes, each rebuilds warm. Prints the times, the
# ratios (marks: our warm <= 0.5 x buildah's warm, <= 0.2 x our cold) and whether each tool's
# warm assets.json still lists the download (a cached step must not hide its fetch).
#   BENCH_MIB=200 BENCH_FILES=10000; SKIP_BUILD=1 skips `npm run build`
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
W=$(mktemp -d /var/tmp/build-cache-bench.XXXXXX)
REG=127.0.0.1:5454
DL=5455
cleanup() {
  [ -n "${REG_PID:-}" ] && kill "$REG_PID" 2>/dev/null || true
  [ -n "${DL_PID:-}" ] && kill "$DL_PID" 2>/dev/null || true
  d="$W/buildah"; [ -d "$d/root" ] && buildah --root "$d/root" --runroot "$d/run" rm -a >/dev/null 2>&1 || true
  umount -R "$W/buildah/root/overlay" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
[ "${SKIP_BUILD:-}" = 1 ] || npm run --silent build
export PATH="$ROOT/bin:$PATH"

# A plain-HTTP registry with a busybox base image.
cat > "$W/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $W/registry-data}}
http: {addr: $REG}
YML
docker-registry serve "$W/registry.yml" > "$W/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 50); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.2; done
mkdir -p "$W/bb/bin" "$W/bb/tmp" "$W/bb/etc"
cp /bin/busybox "$W/bb/bin/" && for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$W/bb/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$W/bb/etc/passwd"
umoci init --layout "$W/lay" && umoci new --image "$W/lay:img" && umoci unpack --image "$W/lay:img" "$W/lay.b" >/dev/null
cp -a "$W/bb/." "$W/lay.b/rootfs/" && umoci repack --image "$W/lay:img" "$W/lay.b"
umoci config --image "$W/lay:img" --os linux --architecture amd64 --config.env PATH=/bin
skopeo copy -q --dest-tls-verify=false "oci:$W/lay:img" "docker://$REG/busybox:latest"

# An HTTPS download site (self-signed for 127.0.0.1; htvend's upstream trust gets its cert).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$W/dl.key" -out "$W/dl.crt" 2>/dev/null
head -c $((8 << 20)) /dev/urandom > "$W/dl.bin"
node -e 'const fs=require("fs"),[k,c,f,p]=process.argv.slice(1);require("https").createServer({key:fs.readFileSync(k),cert:fs.readFileSync(c)},(q,s)=>{s.writeHead(200,{"content-length":fs.statSync(f).size});fs.createReadStream(f).pipe(s)}).listen(+p,"127.0.0.1")' "$W/dl.key" "$W/dl.crt" "$W/dl.bin" "$DL" &
DL_PID=$!
for _ in $(seq 50); do curl -sf --cacert "$W/dl.crt" "https://127.0.0.1:$DL/dl.bin" -o /dev/null && break; sleep 0.2; done
URL="https://127.0.0.1:$DL/dl.bin"

mkdir -p "$W/ctx"
echo one > "$W/ctx/app.txt"
cat > "$W/ctx/Dockerfile" <<DOCKERFILE
FROM $REG/busybox:latest
RUN wget -q -O /dl.bin $URL
RUN mkdir -p /many && cd /many && i=0 && while [ \$i -lt ${BENCH_FILES:-10000} ]; do echo \$i > f\$i; i=\$((i+1)); done
RUN dd if=/dev/urandom of=/big bs=1M count=${BENCH_MIB:-200} 2>/dev/null
COPY app.txt /app.txt
DOCKERFILE

now() { date +%s.%N; }
export SSL_CERT_FILE="$W/dl.crt" SOURCE_DATE_EPOCH=0
ours() { # LABEL
  mkdir -p "$W/ours"; local t0; t0=$(now)
  htvend -C "$W/ours" build --blobs-dir "$W/ours-blobs" -- build-img-with-proxy --platform linux/amd64 --tls-verify=false \
    --layers --cache-dir "$W/cache" --report "$W/ours-$1.json" --tag "oci:$W/ours-oci:bench" "$W/ctx" >"$W/ours-$1.log" 2>&1 \
    || { echo "our $1 build failed:" >&2; tail -20 "$W/ours-$1.log" >&2; exit 1; }
  awk "BEGIN{print $(now)-$t0}"
}
buildah_build() { # LABEL
  local d="$W/buildah" t0; mkdir -p "$d"; t0=$(now)
  htvend -C "$d" build --blobs-dir "$W/buildah-blobs" -- buildah --root "$d/root" --runroot "$d/run" --storage-driver overlay build -q \
    --isolation chroot --tls-verify=false --timestamp 0 --layers -t bench "$W/ctx" >"$d-$1.log" 2>&1 \
    || { echo "buildah $1 failed:" >&2; tail -20 "$d-$1.log" >&2; exit 1; }
  awk "BEGIN{print $(now)-$t0}"
}
lists() { grep -qF "\"$URL\"" "$1" && echo yes || echo no; }

t_ours_cold=$(ours cold)
t_bah_cold=$(buildah_build cold)
echo two > "$W/ctx/app.txt"
t_ours_warm=$(ours warm)
t_bah_warm=$(buildah_build warm)
cached=$(node -e 'const s=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).steps.filter((x)=>x.kind==="RUN");console.log(s.filter((x)=>x.status==="cached").length+"/"+s.length)' "$W/ours-warm.json")

printf 'download=8MiB files=%s big=%sMiB, COPY source changed between cold and warm\n' "${BENCH_FILES:-10000}" "${BENCH_MIB:-200}"
printf 'ours          cold %6.1fs  warm %6.1fs  (RUN steps cached: %s)\n' "$t_ours_cold" "$t_ours_warm" "$cached"
printf 'buildah 1.28  cold %6.1fs  warm %6.1fs  (--layers, chroot, overlay)\n' "$t_bah_cold" "$t_bah_warm"
printf 'our warm / buildah warm = %.2f (mark <= 0.5)\n' "$(awk "BEGIN{print $t_ours_warm/$t_bah_warm}")"
printf 'our warm / our cold     = %.2f (mark <= 0.2)\n' "$(awk "BEGIN{print $t_ours_warm/$t_ours_cold}")"
printf 'warm assets.json lists the download: ours=%s buildah=%s\n' "$(lists "$W/ours/assets.json")" "$(lists "$W/buildah/assets.json")"
