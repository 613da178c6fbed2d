#!/usr/bin/env bash
# Export benchmark to each blob store backend (docs/remote-stores.md). Needs docker-registry.
# Arguments are passed on, e.g. --small 500 --big 2 --big-mib 64 for a quick run.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p . >/dev/null || echo "warning: tsc reported errors (other areas?); using what was emitted" >&2
exec node dist/bench/export-bench.js "$@"
