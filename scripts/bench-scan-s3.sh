#!/usr/bin/env bash
# `hashgate scan` over objects in a local S3 server (moto's) against the same
# images as files: objects/s for both and the ratio, in one run
# (bench/scan_s3.py). Needs python3 with moto[server] (scripts/setup.sh).
#   bash scripts/bench-scan-s3.sh [--objects N] [--repeats N]
# (HASHGATE_BIN=path runs another build of hashgate instead of target/release.)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --quiet -p hashgate-cli
exec python3 bench/scan_s3.py "$@"
