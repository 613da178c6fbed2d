#!/usr/bin/env bash
# Soak of `htvend offline`: 200 TLS clients for 5 minutes, htvend's RSS sampled every 15 s
# (README "Benchmarks"). SOAK_SECONDS, CONCURRENCY, SAMPLE_SECONDS change the run.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p . >/dev/null || echo "warning: tsc reported errors (other areas?); using what was emitted" >&2
ulimit -n 20000 2>/dev/null || true
exec node dist/bench/soak.js "$@"
