#!/usr/bin/env python3
"""Agreement table: our PDQ against the reference C++ PDQ (pdqhash) on Meta's
regression images, on the full-resolution and the default reduced-scale
decode. Usage: python3 scripts/agreement.py [PDQ_REGRESSION_DIR]."""

import csv
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "pdq-regression")
BIN = os.path.join(ROOT, "target", "release", "hashgate")


def ours(files, full):
    args = [BIN, "hash"] + (["--full"] if full else []) + files
    lines = subprocess.run(args, capture_output=True, text=True).stdout.splitlines()
    return [json.loads(line) for line in lines]


def distance(a, b):
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def main():
    rows = [r for r in csv.DictReader(open(os.path.join(DATA, "expected", "pdqhash-reference.csv")))
            if os.path.exists(os.path.join(DATA, r["image"]))]
    files = [os.path.join(DATA, r["image"]) for r in rows]
    full, reduced = ours(files, True), ours(files, False)
    print(f"{'image':46} {'size':>10} {'ref q':>5} {'full':>5} {'reduced':>7}")
    good_full, good_reduced = [], []
    for row, f, r in zip(rows, full, reduced):
        d_full = distance(f["pdq"], row["full_pdq_hex"])
        d_reduced = distance(r["pdq"], row["full_pdq_hex"])
        if int(row["full_quality"]) >= 80:
            good_full.append(d_full)
            good_reduced.append(d_reduced)
        print(f"{row['image'][9:]:46} {f['width']:>4}x{f['height']:<5} {row['full_quality']:>5} {d_full:>5} {d_reduced:>7}")
    for name, values in [("full", good_full), ("reduced", good_reduced)]:
        print(f"{name}: quality>=80: n={len(values)} median={statistics.median(values)} max={max(values)} "
              f"within10={sum(v <= 10 for v in values)}/{len(values)} exact={sum(v == 0 for v in values)}")


if __name__ == "__main__":
    main()
