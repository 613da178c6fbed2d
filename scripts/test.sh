#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh) and runs the whole test suite with node's test runner.
#   HTVEND_TEST_NO_NETWORK=1  skip the few tests marked as needing the npm registry / Debian mirror
#   HTVEND_TEST_SLOW=0        skip the slow end-to-end examples (Debian via debootstrap, Node + npm);
#                             they run by default: ≈3 min on a fresh machine, well inside CI's budget
#   HTVEND_TEST_BIG=1         stream 1 GiB (not 64 MiB) through every blob store
#   HTVEND_TEST_FILTER=regex  run only test files whose path matches
set -euo pipefail
export HTVEND_TEST_SLOW="${HTVEND_TEST_SLOW:-1}"
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mapfile -t files < <(find dist/test -name '*.test.js' | sort | grep -E "${HTVEND_TEST_FILTER:-.}")
if ((${#files[@]} == 0)); then echo "no test files found" >&2; exit 1; fi
exec node --test --test-concurrency=2 --test-reporter=spec "${files[@]}"
