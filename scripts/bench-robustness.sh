#!/usr/bin/env bash
# Robustness of matching under alterations, reference PDQ vs hashgate's
# query set, side by side (bench/robustness.py). Needs scikit-image for its
# bundled photos (installed here if missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
python3 -c "import skimage" 2>/dev/null || python3 -m pip install --quiet scikit-image
cargo build --release --quiet -p hashgate-cli
exec python3 bench/robustness.py "$@"
