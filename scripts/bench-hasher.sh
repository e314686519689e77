#!/usr/bin/env bash
# Hasher speed against the reference, natively and in wasm (bench/hasher.py).
#   bash scripts/bench-hasher.sh [ITERATIONS]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
cargo build --release --quiet -p hashgate --example time_hash
cargo build --release --quiet -p hashgate --example time_hash --target wasm32-wasip1
# One core for every pipeline: numpy/PIL threads off, and the Rust example is single-threaded.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
exec taskset -c 0 python3 bench/hasher.py "$@"
