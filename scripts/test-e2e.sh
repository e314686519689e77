#!/usr/bin/env bash
# End-to-end tests: build the worker, then run every tests/**/*.test.mjs with
# Node's test runner against it (workerd via Miniflare, a real origin server
# on 127.0.0.1). Assumes scripts/setup.sh has run. Works from any directory.
#
#   bash scripts/test-e2e.sh                       build, then test
#   SKIP_BUILD=1 bash scripts/test-e2e.sh          test the existing worker/build/
#   bash scripts/test-e2e.sh --test-name-pattern=404   extra args go to `node --test`
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Keep wrangler/miniflare offline and quiet.
export WRANGLER_SEND_METRICS=false WRANGLER_HIDE_BANNER=true CLOUDFLARE_CF_FETCH_ENABLED=false

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  bash scripts/build-worker.sh
fi

# The shell expands the file list: `node --test tests/` (a directory) works on
# Node 20 but not on 22+, where arguments are globs; support/ holds helpers.
shopt -s globstar nullglob
files=(tests/**/*.test.mjs)
[ ${#files[@]} -gt 0 ] || { echo "no tests/**/*.test.mjs found" >&2; exit 1; }
node --test "$@" "${files[@]}"
