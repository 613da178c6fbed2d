# Shared set-up of the builder benches (sourced, not run): a work dir removed on exit, a local
# docker-registry holding a busybox base image, buildah storage cleanup, a clock.
#   bench_init NAME      cd to the repo, ROOT, W=/var/tmp/NAME.XXXXXX, exit trap, `npm run build`
#                        unless SKIP_BUILD=1
#   bench_cert           $W/dl.crt + $W/dl.key: a self-signed P-256 certificate for 127.0.0.1
#   bench_registry ADDR [tls]   docker-registry on ADDR (TLS with bench_cert's pair), REG=ADDR
#   bench_busybox_image  pushes busybox:latest (busybox-static + /etc/passwd) to $REG
#   bench_bg CMD…        starts CMD in the background, killed on exit
#   now                  seconds since the epoch, with nanoseconds
# Every buildah store under $W/buildah*/root is emptied and unmounted on exit; BENCH_KEEP=1 keeps
# the rest of $W (logs, reports, outputs) for a look afterwards.

BENCH_PIDS=()

bench_cleanup() {
  local pid d
  for pid in "${BENCH_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for d in "$W"/buildah*/root; do [ -d "$d" ] && buildah --root "$d" --runroot "${d%/root}/run" rm -a >/dev/null 2>&1 || true; done
  for d in "$W"/buildah*/root/overlay; do [ -d "$d" ] && umount -R "$d" 2>/dev/null || true; done
  if [ "${BENCH_KEEP:-}" = 1 ]; then echo "bench: kept $W (BENCH_KEEP=1)" >&2; else rm -rf "$W"; fi
}

bench_init() { # NAME
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  ROOT=$PWD
  W=$(mktemp -d "/var/tmp/$1.XXXXXX")
  trap bench_cleanup EXIT
  [ "${SKIP_BUILD:-}" = 1 ] || npm run --silent build
}

bench_bg() { # CMD…
  "$@" &
  BENCH_PIDS+=("$!")
}

now() { date +%s.%N; }

bench_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$W/dl.key" -out "$W/dl.crt" 2>/dev/null
}

bench_registry() { # ADDR [tls]
  REG=$1
  local tls='' scheme=http curl_ca=()
  if [ "${2:-}" = tls ]; then
    tls=", tls: {certificate: $W/dl.crt, key: $W/dl.key}"; scheme=https; curl_ca=(--cacert "$W/dl.crt")
  fi
  cat > "$W/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $W/registry-data}}
http: {addr: $REG$tls}
YML
  bench_bg docker-registry serve "$W/registry.yml" > "$W/registry.log" 2>&1
  for _ in $(seq 50); do curl -sf "${curl_ca[@]}" "$scheme://$REG/v2/" >/dev/null && return 0; sleep 0.2; done
  echo "bench: docker-registry did not start on $REG (see $W/registry.log)" >&2
  return 1
}

bench_busybox_image() {
  mkdir -p "$W/bb/bin" "$W/bb/tmp" "$W/bb/etc"
  cp /bin/busybox "$W/bb/bin/" && for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$W/bb/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$W/bb/etc/passwd"
  umoci init --layout "$W/lay" && umoci new --image "$W/lay:img" && umoci unpack --image "$W/lay:img" "$W/lay.b" >/dev/null
  cp -a "$W/bb/." "$W/lay.b/rootfs/" && umoci repack --image "$W/lay:img" "$W/lay.b"
  umoci config --image "$W/lay:img" --os linux --architecture amd64 --config.env PATH=/bin
  skopeo copy -q --dest-tls-verify=false "oci:$W/lay:img" "docker://$REG/busybox:latest"
}

# The RUN-heavy Dockerfile of builder-run-bench and rootless-bench (BENCH_FILES small files,
# a tree copy and delete, a BENCH_MIB MiB write), based on the bench registry's busybox.
run_heavy_dockerfile() {
  cat > "$1" <<DOCKERFILE
FROM $REG/busybox:latest
RUN mkdir -p /data/many && cd /data/many && i=0 && while [ \$i -lt ${BENCH_FILES:-10000} ]; do echo \$i > f\$i; i=\$((i+1)); done
RUN mkdir -p /data/tree && cp -a /bin /data/tree/ && rm -rf /data/many
RUN dd if=/dev/urandom of=/big bs=1M count=${BENCH_MIB:-500} 2>/dev/null
RUN rm -rf /data/tree && echo done > /done
DOCKERFILE
}
