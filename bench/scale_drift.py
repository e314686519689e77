#!/usr/bin/env python3
"""Hash drift of the reduced-scale JPEG path, by image size.

Makes photo JPEGs at sizes that cross every DCT-scale threshold (the CC0
fixture photos resized, with sensor-like noise so that fine detail is
there to lose, at two JPEG qualities), hashes each with the reference
(PIL full decode + pdqhash) and with `hashgate hash` (default reduced path,
and --full), and prints the Hamming distances to the reference by size.
Usage: python3 bench/scale_drift.py [HASHGATE_BINARY]
"""

import json
import os
import statistics
import subprocess
import sys

import numpy as np
import pdqhash
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", "bench", "drift")
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "release", "hashgate")
PHOTOS = ["astronaut", "camera", "chelsea", "coffee", "hubble", "rocket"]
SHORT_SIDES = [300, 500, 800, 880, 1100, 1600, 1700, 1900, 2400, 3200]
QUALITIES = [75, 92]


def make(name, short, quality):
    path = os.path.join(OUT, f"{name}-{short}-q{quality}.jpg")
    if not os.path.exists(path):
        image = Image.open(os.path.join(ROOT, "fixtures", "photos", f"{name}.jpg")).convert("RGB")
        scale = short / min(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
        rng = np.random.default_rng(short * 7 + quality)
        noisy = np.asarray(image).astype(np.int16) + rng.normal(0, 3, (image.height, image.width, 3)).astype(np.int16)
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=quality)
    return path


def reference(path):
    with Image.open(path) as image:
        vector, _ = pdqhash.compute(np.asarray(image.convert("RGB")))
    return int("".join("1" if b else "0" for b in vector), 2)


def ours(paths, full):
    args = [BIN, "hash"] + (["--full"] if full else []) + paths
    lines = subprocess.run(args, capture_output=True, text=True, check=True).stdout.splitlines()
    return [int(json.loads(line)["pdq"], 16) for line in lines]


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = [(n, s, q) for s in SHORT_SIDES for n in PHOTOS for q in QUALITIES]
    paths = [make(*case) for case in cases]
    refs = [reference(p) for p in paths]
    reduced, full = ours(paths, False), ours(paths, True)
    d = lambda a, b: bin(a ^ b).count("1")
    print(f"{'short side':>10} {'n':>3} {'full median/max':>16} {'reduced median/max':>19}")
    everything = []
    for short in SHORT_SIDES:
        rows = [i for i, c in enumerate(cases) if c[1] == short]
        f = [d(full[i], refs[i]) for i in rows]
        r = [d(reduced[i], refs[i]) for i in rows]
        everything += r
        print(f"{short:>10} {len(rows):>3} {statistics.median(f):>9.1f} / {max(f):<4} {statistics.median(r):>10.1f} / {max(r):<4}")
    print(f"reduced path over all {len(everything)}: median {statistics.median(everything)}, max {max(everything)}, "
          f"within 4 bits {sum(v <= 4 for v in everything)}/{len(everything)}")


if __name__ == "__main__":
    main()
