#!/usr/bin/env bash
# `hashgate scan` throughput against the reference pipeline (PIL + pdqhash,
# 2 processes) and `hashgate serve` under a bounded loopback load (wrk), in
# one run (bench/service.py). Needs python3 with pillow, numpy, pdqhash
# (scripts/setup.sh installs them) and wrk (Debian: apt-get install wrk).
#   bash scripts/bench-service.sh [--images N] [--repeats N] [--duration SECONDS] [--skip-serve]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --quiet -p hashgate-cli
# numpy/PIL threads off: each reference process uses one core, as each of
# hashgate's workers does.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
exec python3 bench/service.py "$@"
