"""The native index beside its peer, in one run: memory and query time for
N random PDQ hashes.

hashgate: `hashgate index build` writes the snapshot; `hashgate match` loads
it (checksum, tables) and answers every --pdq query in memory. Peak RSS of
the whole process comes from /usr/bin/time -v; the time per query is the
difference between a run with Q queries and a run with one, over Q - 1, so
process start and index load drop out (the fastest of --repeat runs of each,
since other work on the machine only ever adds time).

Peer: faiss's IndexBinaryMultiHash (16 hash tables of 16 bits over 256-bit
codes, each probed at radius 1 so that recall at T = 31 is exact), the
structure python-threatexchange's PDQ multi-hash index is built on, with
range_search at radius T + 1 (faiss counts distances < radius);
memory is the growth of this process's peak RSS while the index is built.

Both answer the same queries over the same hashes (SplitMix64 from a fixed
seed): half of them within T of a list hash, half random. The match counts
must agree.

    python3 bench/index_native.py [--n 1000000] [--queries 2000] [--threshold 31] [--repeat 3]
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MASK = (1 << 64) - 1


def splitmix(seed):
    state = seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        yield z ^ (z >> 31)


def hashes(n, seed):
    gen = splitmix(seed)
    return [b"".join(next(gen).to_bytes(8, "little") for _ in range(4)) for _ in range(n)]


def queries(pool, count, threshold, seed):
    rng = random.Random(seed)
    out = []
    for i in range(count):
        if i % 2 == 0:
            bits = rng.sample(range(256), rng.randint(0, threshold))
            h = bytearray(rng.choice(pool))
            for b in bits:
                h[b // 8] ^= 1 << (b % 8)
            out.append(bytes(h))
        else:
            out.append(rng.randbytes(32))
    return out


def max_rss_kib(stderr):
    for line in stderr.splitlines():
        if "Maximum resident set size" in line:
            return int(line.split(":")[1])
    raise RuntimeError("no RSS in /usr/bin/time output")


def run_match(binary, index, qs, threshold):
    args = ["/usr/bin/time", "-v", str(binary), "match", "--index", str(index), "--threshold", str(threshold)]
    for q in qs:
        args += ["--pdq", q.hex()]
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise RuntimeError(done.stderr[-2000:])
    found = sum(len(json.loads(line)["matches"]) for line in done.stdout.splitlines())
    return wall, max_rss_kib(done.stderr), found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the fastest counts")
    parser.add_argument("--threshold", type=int, default=31)
    args = parser.parse_args()

    binary = ROOT / "target" / "release" / "hashgate"
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "hashgate-cli"], cwd=ROOT, check=True)
    pool = hashes(args.n, args.n)
    qs = queries(pool, args.queries, args.threshold, 7)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        listing = tmp / "bench.csv"
        listing.write_text("".join(f"pdq,{h.hex()}\n" for h in pool))
        start = time.perf_counter()
        subprocess.run([str(binary), "index", "build", "--list", f"bench={listing}", "--out", str(tmp / "index")],
                       check=True, capture_output=True)
        build_s = time.perf_counter() - start
        disk = sum(f.stat().st_size for f in (tmp / "index").iterdir())
        one_wall = min(run_match(binary, tmp / "index", qs[:1], args.threshold)[0] for _ in range(args.repeat))
        runs = [run_match(binary, tmp / "index", qs, args.threshold) for _ in range(args.repeat)]
        all_wall = min(r[0] for r in runs)
        rss_kib = max(r[1] for r in runs)
        ours_found = runs[0][2]
        ours_query_ms = (all_wall - one_wall) / (len(qs) - 1) * 1e3

    try:
        import faiss
        import numpy as np
    except ImportError:
        print("faiss is not installed: pip install faiss-cpu numpy", file=sys.stderr)
        faiss = None
    peer = None
    if faiss is not None:
        faiss.omp_set_num_threads(1)
        codes = np.frombuffer(b"".join(pool), dtype=np.uint8).reshape(-1, 32)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        index = faiss.IndexBinaryMultiHash(256, 16, 16)
        # Probe each table at radius 1 too: 16 chunks x 2 >= T + 1 = 32, so
        # recall at T = 31 is exact (at radius 0 it misses matches).
        index.nflip = 1
        index.add(codes)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        q = np.frombuffer(b"".join(qs), dtype=np.uint8).reshape(-1, 32)
        best = None
        for _ in range(args.repeat):
            start = time.perf_counter()
            found = 0
            for row in q:
                lims, _, _ = index.range_search(row.reshape(1, 32), args.threshold + 1)
                found += int(lims[1])
            elapsed = time.perf_counter() - start
            best = elapsed if best is None else min(best, elapsed)
        peer_ms = best / len(qs) * 1e3
        peer = {"rss_growth_mib": (after - before) / 1024, "query_ms": peer_ms, "found": found}

    print(f"\nN = {args.n:,} random PDQ hashes, {len(qs)} queries at T = {args.threshold} (half near a list hash), one core\n")
    print("| | memory | time per query | matches |")
    print("|---|---|---|---|")
    print(f"| hashgate match (resident snapshot) | {rss_kib / 1024:.0f} MiB peak RSS of the process "
          f"({rss_kib / 1024 / args.n * 1e6:.0f} MiB per 10^6) | {ours_query_ms:.3f} ms | {ours_found} |")
    if peer:
        print(f"| faiss IndexBinaryMultiHash(256, 16, 16), nflip 1 | {peer['rss_growth_mib']:.0f} MiB RSS growth | "
              f"{peer['query_ms']:.3f} ms | {peer['found']} |")
        print(f"\nhashgate / faiss: memory {rss_kib / 1024 / max(peer['rss_growth_mib'], 1e-9):.2f}x, "
              f"time per query {ours_query_ms / peer['query_ms']:.2f}x")
        if peer["found"] != ours_found:
            print(f"MATCH COUNTS DIFFER: hashgate {ours_found}, faiss {peer['found']}", file=sys.stderr)
            sys.exit(1)
    print(f"\nindex build {build_s:.1f} s; build directory {disk / 1048576:.0f} MiB on disk")


if __name__ == "__main__":
    main()
