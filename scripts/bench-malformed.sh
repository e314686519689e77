#!/usr/bin/env bash
# The malformed-image corpus (testkit/src/corpus.rs), timed:
# corpus size, outcomes by error kind per group, slowest case per group and
# most memory held at once, natively and in wasm (wasm32-wasip1 under
# node, the same code the edge runs). The test (tests/malformed.rs) checks
# outcomes and memory; time is only measured here, since machines differ.
#
#   bash scripts/bench-malformed.sh [--cases] [--repeat N] [FILTER]
#
# Single-threaded on one core, like the hasher benchmark.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

cargo build --release --quiet -p hashgate --example malformed_report
cargo build --release --quiet -p hashgate --example malformed_report --target wasm32-wasip1

echo "== native ($(uname -m))"
taskset -c 0 target/release/examples/malformed_report "$@"
echo
echo "== wasm32-wasip1 under node $(node --version)"
taskset -c 0 node --no-warnings bench/run-wasi.mjs target/wasm32-wasip1/release/examples/malformed_report.wasm "$@"
