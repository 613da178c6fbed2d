#!/usr/bin/env bash
# Proxy benchmarks: ratios against nginx and mitmproxy measured in the same run (docs/proxy.md).
# Needs nginx, mitmdump, curl, openssl. BENCH_BIG_MIB / BENCH_SMALL shrink the run; BENCH_ONLY=record times only the recording,
# BENCH_ONLY=replay only the replay (store seeded directly) with its ceiling. SKIP_BUILD=1 skips tsc.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${SKIP_BUILD:-}" = 1 ] || npx tsc -p . >/dev/null || echo "warning: tsc reported errors (other areas?); using what was emitted" >&2
exec node dist/bench/proxy-bench.js "$@"
