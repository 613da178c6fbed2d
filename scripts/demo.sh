#!/usr/bin/env bash
# The README quickstart, end to end: capture a real download from the npm registry under
# `htvend build`, then replay it with no network at all (a fresh network namespace holding
# only loopback) under `htvend offline`, and check both copies have the same sha256.
#
#   bash scripts/demo.sh          (needs root or unprivileged user namespaces for unshare)
#   HTVEND_DEMO_SKIP_SETUP=1      skip scripts/setup.sh (packages installed, dist/ built)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
[ "${HTVEND_DEMO_SKIP_SETUP:-}" = 1 ] || bash "$root/scripts/setup.sh"

htvend=("$(command -v node)" "$root/bin/htvend.js")
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
# Keep the demo's blob store out of ~/.local/share (the default is ${XDG_DATA_HOME}/htvend/cache/blobs).
export XDG_DATA_HOME="$work/data"
url=https://registry.npmjs.org/is-number/-/is-number-7.0.0.tgz

echo "== 1. online: record the download into ./assets.json" >&2
"${htvend[@]}" build -- curl -fsSLo x.tgz "$url"
cat assets.json; echo
online_sha="$(sha256sum x.tgz | cut -d' ' -f1)"
rm x.tgz

echo "== 2. offline: replay it inside unshare -n (no route to the internet)" >&2
unshare_flags=(-n)
[ "$(id -u)" = 0 ] || unshare_flags=(-r -n)
q() { printf "'%s' " "${@//\'/\'\\\'\'}"; }
unshare "${unshare_flags[@]}" sh -c "ip link set lo up && $(q "${htvend[@]}") offline -- curl -fsSLo x.tgz $(q "$url")"
offline_sha="$(sha256sum x.tgz | cut -d' ' -f1)"

echo "online  sha256 $online_sha" >&2
echo "offline sha256 $offline_sha" >&2
if [ "$online_sha" != "$offline_sha" ]; then echo "demo: FAILED, the replayed bytes differ" >&2; exit 1; fi
echo "demo: OK, the offline replay is byte-identical" >&2
