#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh) and runs the whole test suite with node's test runner.
#   HTVEND_TEST_NO_NETWORK=1  skip the few tests marked as needing the npm registry / Debian mirror
#   HTVEND_TEST_FILTER=regex  run only test files whose path matches
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mapfile -t files < <(find dist/test -name '*.test.js' | sort | grep -E "${HTVEND_TEST_FILTER:-.}")
if ((${#files[@]} == 0)); then echo "no test files found" >&2; exit 1; fi
exec node --test --test-concurrency=2 --test-reporter=spec "${files[@]}"
