#!/usr/bin/env bash
# Prints the PDQ agreement table against the reference (see scripts/agreement.py).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cargo build --release --quiet -p hashgate-cli --manifest-path "$ROOT/Cargo.toml"
exec python3 "$ROOT/scripts/agreement.py" "$@"
