#!/usr/bin/env python3
"""`hashgate scan` and `hashgate serve` under load, on this machine, one run.

1. Makes a folder of ~1 MP JPEGs (1152x864) from the fixture photos with
   variations (crop, mirror, rotation, brightness, noise, JPEG quality), under
   target/bench-service/ (not committed; reused when present).
2. Scan throughput in images/s: `hashgate scan` (default query set, and
   --variants own) against the reference pipeline (PIL decode + `pdqhash`)
   run by Python multiprocessing with 2 processes over the same files. Each
   pipeline runs once to warm the page cache, then REPEATS times,
   interleaved with the others so load from elsewhere hits all alike; the
   best run counts.
3. `hashgate serve` under a bounded loopback load from `wrk` (POST /v1/hash
   of one 1 MP JPEG) at concurrency 1, 8 and 64, DURATION seconds each:
   requests/s, p50/p99 latency, non-2xx answers, and the server's resident
   memory (VmRSS from /proc) at rest and at its peak under load.

Only 127.0.0.1 is loaded, for a bounded time. The server is started here and
stopped by its pid. Run through scripts/bench-service.sh, which builds first.
"""

import argparse
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pdqhash
from PIL import Image, ImageEnhance

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", "bench-service")
HASHGATE = os.path.join(ROOT, "target", "release", "hashgate")
SIZE = (1152, 864)  # 0.995 MP
SOURCES = ["astronaut", "camera", "chelsea", "coffee", "hubble", "rocket"]


def make_images(count):
    """Writes `count` ~1 MP JPEGs; returns the folder."""
    folder = os.path.join(OUT, f"images-{count}")
    stamp = folder + ".complete"  # beside the folder: the scan would count it
    if os.path.exists(stamp):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    rng = np.random.default_rng(20261121)
    photos = [Image.open(os.path.join(ROOT, "fixtures", "photos", f"{n}.jpg")).convert("RGB") for n in SOURCES]
    for i in range(count):
        image = photos[i % len(photos)]
        w, h = image.size
        # A random crop of 70-100% of each side, then the 1 MP size.
        cw, ch = int(w * rng.uniform(0.7, 1.0)), int(h * rng.uniform(0.7, 1.0))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        varied = image.crop((x, y, x + cw, y + ch))
        if rng.random() < 0.3:
            varied = varied.transpose(Image.FLIP_LEFT_RIGHT)
        if rng.random() < 0.2:
            varied = varied.rotate(float(rng.uniform(-8, 8)), resample=Image.BICUBIC, expand=False)
        varied = varied.resize(SIZE, Image.BICUBIC)
        varied = ImageEnhance.Brightness(varied).enhance(float(rng.uniform(0.8, 1.2)))
        # Sensor-like noise, so the entropy coding does real work.
        pixels = np.asarray(varied).astype(np.int16) + rng.normal(0, 3, (SIZE[1], SIZE[0], 3)).astype(np.int16)
        varied = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        varied.save(os.path.join(folder, f"img-{i:04d}.jpg"), "JPEG", quality=int(rng.integers(80, 96)))
    open(stamp, "w").close()
    return folder


def reference_hash(path):
    """The reference pipeline for one file: PIL decode at full size + pdqhash."""
    with Image.open(path) as image:
        vector, quality = pdqhash.compute(np.asarray(image.convert("RGB")))
    return quality


def time_reference(files, processes):
    with multiprocessing.Pool(processes) as pool:
        start = time.perf_counter()
        for _ in pool.imap_unordered(reference_hash, files, chunksize=4):
            pass
        return time.perf_counter() - start


def time_scan(index, folder, extra):
    start = time.perf_counter()
    result = subprocess.run(
        [HASHGATE, "scan", "--index", index, "--all", "--no-progress", *extra, folder],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 1):
        sys.exit(f"hashgate scan failed: {result.stderr}")
    lines = result.stdout.count("\n")
    return elapsed, lines


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_wrk(text):
    def latency_ms(label):
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    return {
        "rps": float(rps.group(1)) if rps else float("nan"),
        "requests": int(total.group(1)) if total else 0,
        "p50": latency_ms("50"),
        "p99": latency_ms("99"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def serve_load(index, image, duration, concurrencies):
    if not shutil.which("wrk"):
        sys.exit("wrk not found: install it (Debian: apt-get install wrk)")
    port = free_port()
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(
        [HASHGATE, "serve", "--listen", f"127.0.0.1:{port}", "--index", index],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    results = []
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    sys.exit("hashgate serve did not start")
                time.sleep(0.05)
        time.sleep(0.5)
        at_rest = rss_kib(server.pid)
        script = os.path.join(OUT, "post-image.lua")
        with open(script, "w") as lua:
            lua.write(
                'wrk.method = "POST"\n'
                f'local f = io.open("{image}", "rb")\n'
                "wrk.body = f:read(\"*all\")\n"
                "f:close()\n"
                'wrk.headers["Content-Type"] = "image/jpeg"\n'
            )
        for connections in concurrencies:
            peak = [0]
            stop = threading.Event()

            def sample():
                while not stop.is_set():
                    peak[0] = max(peak[0], rss_kib(server.pid))
                    time.sleep(0.1)

            sampler = threading.Thread(target=sample)
            sampler.start()
            threads = min(2, connections)
            run = subprocess.run(
                ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
                 "--latency", "-s", script, f"http://127.0.0.1:{port}/v1/hash"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=duration + 30,
            )
            stop.set()
            sampler.join()
            stats = parse_wrk(run.stdout)
            stats.update(connections=connections, peak_rss=peak[0])
            results.append(stats)
            time.sleep(1)
        after = rss_kib(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return at_rest, after, results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=150, help="number of ~1 MP JPEGs (default 150)")
    parser.add_argument("--repeats", type=int, default=3, help="timed scan runs per pipeline (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per concurrency (default 10)")
    parser.add_argument("--skip-serve", action="store_true", help="only the scan comparison")
    args = parser.parse_args()

    os.makedirs(OUT, exist_ok=True)
    folder = make_images(args.images)
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".jpg"))
    index = os.path.join(OUT, "index")
    subprocess.run(
        [HASHGATE, "index", "build", "--list", f"demo={os.path.join(ROOT, 'fixtures', 'lists', 'demo.csv')}",
         "--out", index],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    cores = os.cpu_count()
    megapixels = SIZE[0] * SIZE[1] / 1e6
    print(f"machine: {cores} cores; {len(files)} JPEGs of {SIZE[0]}x{SIZE[1]} ({megapixels:.2f} MP)")

    print("\nscan throughput (best of %d interleaved runs, warm cache)" % args.repeats)
    pipelines = [
        ("reference: PIL full decode + pdqhash, 2 processes", lambda: time_reference(files, 2)),
        ("hashgate scan (default query set: variants)", lambda: time_scan(index, folder, [])),
        ("hashgate scan --variants own", lambda: time_scan(index, folder, ["--variants", "own"])),
    ]
    for _, run in pipelines:
        run()  # warm the page cache and the binary
    best_seconds = [float("inf")] * len(pipelines)
    # Interleaved, so that load from elsewhere hits every pipeline alike.
    for _ in range(args.repeats):
        for i, (_, run) in enumerate(pipelines):
            result = run()
            if isinstance(result, tuple):
                elapsed, lines = result
                if lines != len(files):
                    sys.exit(f"scan wrote {lines} lines for {len(files)} files")
            else:
                elapsed = result
            best_seconds[i] = min(best_seconds[i], elapsed)
    ref_rate = len(files) / best_seconds[0]
    for i, ((label, _), seconds) in enumerate(zip(pipelines, best_seconds)):
        rate = len(files) / seconds
        ratio = "" if i == 0 else f"  ({rate / ref_rate:.1f}x the reference)"
        print(f"  {label:<52} {rate:7.1f} images/s{ratio}")

    if args.skip_serve:
        return
    print(f"\nhashgate serve, POST /v1/hash of one {megapixels:.2f} MP JPEG "
          f"({os.path.getsize(files[0]) // 1024} KiB), wrk over 127.0.0.1, {args.duration}s per row")
    at_rest, after, results = serve_load(index, files[0], args.duration, [1, 8, 64])
    print(f"  {'conc.':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'non-2xx':>8} {'peak RSS MiB':>13}")
    for r in results:
        print(f"  {r['connections']:>5} {r['rps']:>8.1f} {r['p50']:>8.2f} {r['p99']:>8.2f} {r['requests']:>9} "
              f"{r['non2xx']:>8} {r['peak_rss'] / 1024:>13.1f}  {r['socket_errors']}")
    print(f"  RSS at rest: {at_rest / 1024:.1f} MiB before load, {after / 1024:.1f} MiB after")
    print("  (client and server share the machine's cores)")


if __name__ == "__main__":
    main()
