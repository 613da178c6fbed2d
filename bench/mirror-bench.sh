#!/usr/bin/env bash
# htvend mirror benchmark (docs/mirror.md): skopeo pull of a 200 MiB single-layer image
# straight from docker-registry vs through `htvend mirror`, same run, ratio printed.
# Needs docker-registry and skopeo. Arguments: [--mib 200] [--rounds 3]
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p . >/dev/null || echo "warning: tsc reported errors (other areas?); using what was emitted" >&2
exec node dist/bench/mirror-bench.js "$@"
