#!/usr/bin/env bash
# htvend gc benchmark (docs/lifecycle.md): `gc --dry-run` of a filesystem store with 100,000
# small blobs and 50 lockfiles; wall time and peak RSS (GNU time). Marks: < 10 s, < 200 MB.
# Arguments: [BLOBS=100000] [LOCKFILES=50]
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p . >/dev/null || echo "warning: tsc reported errors (other areas?); using what was emitted" >&2
blobs=${1:-100000}
locks=${2:-50}
work=$(mktemp -d /tmp/htvend-gc-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
# Fixture: blobs named by their sha256; each lockfile references a slice (with overlaps), so
# about 10% of the blobs are orphans.
node dist/bench/gc-fixture.js "$work" "$blobs" "$locks"
for round in 1 2; do
  /usr/bin/time -f 'wall %e s, peak RSS %M KiB' node dist/src/cli/htvend.js gc --dry-run --min-age 0 \
    --blobs-dir "$work/blobs" --keep "$work/locks/*.json" 2>"$work/err" >"$work/out" || { cat "$work/err"; exit 1; }
  echo "round $round: $(grep -c '^would delete' "$work/out") would be deleted; $(tail -1 "$work/err")"
  grep 'gc: .* blob(s) in' "$work/err" | sed 's/^/  /'
done
