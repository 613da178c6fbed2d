#!/usr/bin/env bash
# Runs every example under examples/ end to end (SPEC §8):
#   htvend -C examples/X build -- build-img-with-proxy          (online: records assets.json)
#   … the same again with the step cache warm (--layers): same digest, same assets.json
#   htvend -C examples/X verify --fetch
#   unshare -n sh -c 'ip link set lo up && htvend -C examples/X offline -- build-img-with-proxy --tag oci-archive:img.tar'
# then runs the offline image (skopeo + umoci + runc) and prints, per example, the online and
# offline image digests and whether they match. Exit status 0 only if every example matched.
#
# Base images come from a local registry (TLS on 127.0.0.1:5443, self-signed) this script
# starts and fills: busybox (from busybox-static), debian:bookworm (debootstrap minbase from
# the Debian mirror, slow the first time, cached) and node:20-bookworm (debian + this
# machine's node and npm). A local HTTPS download site on 127.0.0.1:5445 (same certificate)
# serves the tarball the multi-stage example fetches, so that example needs no network at
# all. Both are reached only online, through the htvend proxy; offline everything is
# replayed from the blob store. busybox-wget, node-npm and debian-curl download from the npm
# registry / Debian mirror.
#   HTVEND_EXAMPLES_WORK   cache/work dir (default /var/tmp/htvend-examples)
#   EXAMPLES               space-separated subset (default: all)
#   EXAMPLES_DIR           where the example directories are (default: examples/ of this
#                          checkout); builds write assets.json, oci/ and img.tar there
#   HTVEND_BIN_DIR         directory holding the htvend and build-img-with-proxy to use
#                          (default: this checkout's bin/, after scripts/setup.sh)
#   SKIP_BUILD=1           do not run scripts/setup.sh first (apt packages, npm ci, build:
#                          idempotent, so a fresh clone needs only this script)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${HTVEND_EXAMPLES_WORK:-/var/tmp/htvend-examples}
REG=127.0.0.1:5443
FILES=127.0.0.1:5445
EXAMPLES=${EXAMPLES:-busybox-wget multi-stage node-npm debian-curl}
EXAMPLES_DIR=$(realpath "${EXAMPLES_DIR:-examples}")
mkdir -p "$WORK/bin" "$WORK/xdg"
log() { printf '\n=== %s\n' "$*" >&2; }

# Our two CLIs on PATH, as an installed package would put them.
if [ -n "${HTVEND_BIN_DIR:-}" ]; then
  export PATH="$HTVEND_BIN_DIR:$PATH"
else
  [ "${SKIP_BUILD:-}" = 1 ] || bash scripts/setup.sh
  for cli in htvend build-img-with-proxy; do
    printf '#!/bin/sh\nexec node %s/bin/%s.js "$@"\n' "$ROOT" "$cli" > "$WORK/bin/$cli"
    chmod +x "$WORK/bin/$cli"
  done
  export PATH="$WORK/bin:$PATH"
fi
for port in "${REG#*:}" "${FILES#*:}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "examples.sh: 127.0.0.1:$port is already in use (another examples.sh run?)" >&2
    exit 1
  fi
done
# Blob store and everything else htvend keeps: private to this run's work dir.
export XDG_DATA_HOME="$WORK/xdg"
export PLATFORMS=linux/amd64 SOURCE_DATE_EPOCH=0

# --- local registry (TLS, so the proxy can intercept it like any HTTPS registry)
if [ ! -f "$WORK/registry.crt" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=htvend-examples-registry \
    -addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' -keyout "$WORK/registry.key" -out "$WORK/registry.crt" 2>/dev/null
fi
cat > "$WORK/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $WORK/registry-data}, delete: {enabled: true}}
http: {addr: $REG, tls: {certificate: $WORK/registry.crt, key: $WORK/registry.key}}
YML
docker-registry serve "$WORK/registry.yml" > "$WORK/registry.log" 2>&1 &
REG_PID=$! FILES_PID=
trap 'kill $REG_PID $FILES_PID 2>/dev/null || true' EXIT

# --- local download site: $WORK/files over HTTPS (GET/HEAD of a file by name, 404 otherwise)
mkdir -p "$WORK/files/hello/package"
printf '{\n  "name": "hello",\n  "version": "1.0.0"\n}\n' > "$WORK/files/hello/package/package.json"
printf '#!/bin/sh\necho "hello from a tarball fetched at build time"\n' > "$WORK/files/hello/package/hello.sh"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$WORK/files/hello" -cf - package | gzip -n > "$WORK/files/hello-1.0.0.tgz"
node -e '
  const [dir, cert, key, port] = process.argv.slice(1);
  const fs = require("fs"), path = require("path");
  require("https").createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (req, res) => {
    const file = path.join(dir, path.basename(decodeURIComponent(new URL(req.url, "https://x").pathname)));
    fs.stat(file, (err, st) => {
      if (err || !st.isFile()) return res.writeHead(404).end();
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": st.size });
      if (req.method === "HEAD") return res.end();
      fs.createReadStream(file).pipe(res);
    });
  }).listen(Number(port), "127.0.0.1");
' "$WORK/files" "$WORK/registry.crt" "$WORK/registry.key" "${FILES#*:}" > "$WORK/files.log" 2>&1 &
FILES_PID=$!
for url in "https://$REG/v2/" "https://$FILES/hello-1.0.0.tgz"; do
  for _ in $(seq 50); do curl -sf --cacert "$WORK/registry.crt" -o /dev/null "$url" && break; sleep 0.2; done
done
# htvend's own upstream connections trust the system roots plus this bundle (SPEC §3).
cat /etc/ssl/certs/ca-certificates.crt "$WORK/registry.crt" > "$WORK/trust.pem"
export SSL_CERT_FILE="$WORK/trust.pem"

# --- base images, pushed once (the registry data persists in $WORK)
push_rootfs() { # ROOTFS NAME:TAG CMD
  local rootfs=$1 ref=$2 cmd=$3 lay="$WORK/layout"
  if skopeo inspect --tls-verify=false "docker://$REG/$ref" >/dev/null 2>&1; then return; fi
  log "pushing $REG/$ref"
  rm -rf "$lay" "$lay.bundle"
  umoci init --layout "$lay"
  umoci new --image "$lay:img"
  umoci unpack --image "$lay:img" "$lay.bundle" >/dev/null
  cp -a "$rootfs/." "$lay.bundle/rootfs/"
  umoci repack --image "$lay:img" "$lay.bundle"
  umoci config --image "$lay:img" --os linux --architecture amd64 \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --config.cmd "$cmd"
  skopeo copy -q --dest-tls-verify=false "oci:$lay:img" "docker://$REG/$ref"
  rm -rf "$lay" "$lay.bundle"
}
if [ ! -d "$WORK/busybox-rootfs" ]; then
  mkdir -p "$WORK/busybox-rootfs.tmp/bin" "$WORK/busybox-rootfs.tmp/etc" "$WORK/busybox-rootfs.tmp/tmp" "$WORK/busybox-rootfs.tmp/root"
  chmod 1777 "$WORK/busybox-rootfs.tmp/tmp"
  cp /bin/busybox "$WORK/busybox-rootfs.tmp/bin/busybox"
  for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$WORK/busybox-rootfs.tmp/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$WORK/busybox-rootfs.tmp/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$WORK/busybox-rootfs.tmp/etc/group"
  mv "$WORK/busybox-rootfs.tmp" "$WORK/busybox-rootfs"
fi
push_rootfs "$WORK/busybox-rootfs" busybox:latest /bin/sh
case " $EXAMPLES " in *" debian-curl "*|*" node-npm "*)
  if [ ! -d "$WORK/debian-rootfs" ]; then
    log "debootstrap --variant=minbase bookworm (a few minutes, once)"
    rm -rf "$WORK/debian-rootfs.tmp"
    debootstrap --variant=minbase bookworm "$WORK/debian-rootfs.tmp" http://deb.debian.org/debian > "$WORK/debootstrap.log"
    mv "$WORK/debian-rootfs.tmp" "$WORK/debian-rootfs"
  fi
  # The image holds no apt lists: the examples' apt-get update fetches them through htvend.
  rm -rf "$WORK/debian-rootfs/var/lib/apt/lists/"* "$WORK/debian-rootfs/var/cache/apt/"*.bin
  push_rootfs "$WORK/debian-rootfs" debian:bookworm /bin/bash
  if [ ! -d "$WORK/node-rootfs" ]; then
    rm -rf "$WORK/node-rootfs.tmp"
    cp -a "$WORK/debian-rootfs" "$WORK/node-rootfs.tmp"
    node_bin=$(readlink -f "$(command -v node)")
    npm_dir=$(dirname "$node_bin")/../lib/node_modules/npm
    mkdir -p "$WORK/node-rootfs.tmp/usr/local/bin" "$WORK/node-rootfs.tmp/usr/local/lib/node_modules"
    cp "$node_bin" "$WORK/node-rootfs.tmp/usr/local/bin/node"
    cp -a "$npm_dir" "$WORK/node-rootfs.tmp/usr/local/lib/node_modules/npm"
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$WORK/node-rootfs.tmp/usr/local/bin/npm"
    mv "$WORK/node-rootfs.tmp" "$WORK/node-rootfs"
  fi
  push_rootfs "$WORK/node-rootfs" node:20-bookworm /bin/bash
esac

# --- the examples
manifests() { node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(j.manifests.map((m)=>m.digest).join(","))'; }
summary=()
status=0
for ex in $EXAMPLES; do
  dir="$EXAMPLES_DIR/$ex"
  rm -rf "$dir/assets.json" "$dir/oci" "$dir/img.tar"
  log "$ex: online build under htvend build"
  t0=$(date +%s.%N)
  # Cold with the step cache on (a cache of its own per example), so the warm rebuild below
  # can reuse every step; the offline rebuild further down runs without it.
  cache="$WORK/build-cache/$ex"
  rm -rf "$cache"
  htvend -C "$dir" build -- build-img-with-proxy --layers --cache-dir "$cache"
  t1=$(date +%s.%N)
  online=$(manifests < "$dir/oci/index.json")
  cp "$dir/assets.json" "$WORK/assets-cold.json"
  log "$ex: warm rebuild under htvend build (every step from the cache, every asset still requested)"
  tw0=$(date +%s.%N)
  htvend -C "$dir" build -- build-img-with-proxy --layers --cache-dir "$cache" --report "$WORK/warm-report.json"
  tw1=$(date +%s.%N)
  warm=$(manifests < "$dir/oci/index.json")
  cached=$(node -e 'const s=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).steps.filter((x)=>["RUN","COPY","ADD"].includes(x.kind));console.log(s.filter((x)=>x.status==="cached").length+"/"+s.length)' "$WORK/warm-report.json")
  warm_assets=same
  cmp -s "$dir/assets.json" "$WORK/assets-cold.json" || { warm_assets=differ; status=1; }
  [ "$warm" = "$online" ] || status=1
  log "$ex: verify --fetch"
  htvend -C "$dir" verify --fetch
  log "$ex: offline build in a network namespace with no network"
  t2=$(date +%s.%N)
  unshare -n sh -c "ip link set lo up && htvend -C '$dir' offline -- build-img-with-proxy --tag oci-archive:img.tar"
  t3=$(date +%s.%N)
  offline=$(tar -xOf "$dir/img.tar" index.json | manifests)
  # The offline image, checked and run by tools nobody here wrote: skopeo, umoci, runc.
  log "$ex: run the offline image (umoci unpack + runc run)"
  rm -rf "$WORK/run-bundle" && mkdir -p "$WORK/run-layout"
  skopeo copy -q "oci-archive:$dir/img.tar" "oci:$WORK/run-layout:$ex"
  umoci unpack --image "$WORK/run-layout:$ex" "$WORK/run-bundle" >/dev/null
  node -e 'const f=process.argv[1],fs=require("fs"),c=JSON.parse(fs.readFileSync(f));c.process.terminal=false;fs.writeFileSync(f,JSON.stringify(c))' "$WORK/run-bundle/config.json"
  ran=yes
  runc run -b "$WORK/run-bundle" "htvend-example-$$-$ex" > "$WORK/run.out" || { ran=no; status=1; }
  head -5 "$WORK/run.out"
  runc delete -f "htvend-example-$$-$ex" 2>/dev/null || true
  rm -rf "$WORK/run-bundle"
  same=no
  [ "$online" = "$offline" ] && same=yes || status=1
  summary+=("$(printf '%-14s online %s offline %s match=%s ran=%s  online %.1fs offline %.1fs warm %.1fs cached=%s warm-assets=%s' "$ex" "$online" "$offline" "$same" "$ran" "$(awk "BEGIN{print $t1-$t0}")" "$(awk "BEGIN{print $t3-$t2}")" "$(awk "BEGIN{print $tw1-$tw0}")" "$cached" "$warm_assets")")
done
printf '\n'
printf '%s\n' "${summary[@]}"
exit $status
