#!/usr/bin/env python3
"""`hashgate scan` of objects in an S3-API store against the same images as
files, on this machine, in one run.

1. Writes N images (the fixture photos and exact PNGs, cycled, each made
   distinct by a trailing comment byte string so every object has its own
   ETag) under target/bench-scan-s3/files/, and uploads the same bytes to a
   bucket of moto's S3 server started here on 127.0.0.1 (a local stand-in:
   it measures the client's overhead, not a real network's latency).
2. Times `hashgate scan --all --no-progress` over the folder and over
   s3://bench/ (default --jobs for each: cores for files, at least 8 for an
   object store; and s3 with -j cores, like for like), once to warm up,
   then REPEATS times interleaved; the best run counts. Prints objects/s
   for each and the ratio of s3 (default -j) to files.

Run through scripts/bench-scan-s3.sh, which builds first. The moto server
is stopped by its pid.
"""

import argparse
import http.client
import os
import shutil
import socket
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("HASHGATE_BIN") or os.path.join(ROOT, "target", "release", "hashgate")
WORK = os.path.join(ROOT, "target", "bench-scan-s3")
SOURCES = [
    "photos/astronaut.jpg", "photos/camera.jpg", "photos/chelsea.jpg",
    "photos/coffee.jpg", "photos/hubble.jpg", "photos/rocket.jpg",
    "exact/astronaut.png", "exact/camera.png", "exact/chelsea.png",
    "exact/rocket.png",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def put(port, path, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("PUT", path, body, {"Content-Type": "application/octet-stream"})
    status = conn.getresponse().status
    conn.close()
    if status != 200:
        sys.exit(f"PUT {path}: {status}")


def scan(index, source, port, extra=()):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1")
    args = [BIN, "scan", "--index", index, "--all", "--no-progress",
            "--s3-endpoint", f"http://127.0.0.1:{port}", "--s3-allow-http", *extra, source]
    start = time.monotonic()
    done = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    elapsed = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"scan {source} failed ({done.returncode}): {done.stderr.decode()}")
    return elapsed, done.stdout.count(b"\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    opts = parser.parse_args()

    shutil.rmtree(WORK, ignore_errors=True)
    files = os.path.join(WORK, "files")
    os.makedirs(files)
    index = os.path.join(WORK, "index")
    subprocess.run([BIN, "index", "build", "--list",
                    f"demo={ROOT}/fixtures/lists/demo.csv", "--out", index],
                   check=True, stdout=subprocess.DEVNULL)

    port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("moto did not start (pip install 'moto[server]': scripts/setup.sh)")
                time.sleep(0.1)
        put(port, "/bench", b"")
        total = 0
        for n in range(opts.objects):
            source = SOURCES[n % len(SOURCES)]
            with open(os.path.join(ROOT, "fixtures", source), "rb") as f:
                body = f.read() + f"\n{n}\n".encode()
            name = f"{n // 100:03}/{n:05}{os.path.splitext(source)[1]}"
            os.makedirs(os.path.join(files, os.path.dirname(name)), exist_ok=True)
            with open(os.path.join(files, name), "wb") as f:
                f.write(body)
            put(port, f"/bench/{name}", body)
            total += len(body)
        print(f"{opts.objects} images, {total / 1e6:.1f} MB, as files and as objects in moto "
              f"(127.0.0.1), {os.cpu_count()} cores; best of {opts.repeats}")
        cores = str(os.cpu_count())
        runs = (("files", files, ()), ("s3", "s3://bench/", ()),
                ("s3 -j cores", "s3://bench/", ("-j", cores)))
        best = {kind: float("inf") for kind, _, _ in runs}
        for run in range(opts.repeats + 1):
            for kind, source, extra in runs:
                elapsed, lines = scan(index, source, port, extra)
                if lines != opts.objects:
                    sys.exit(f"{kind}: {lines} lines for {opts.objects} inputs")
                if run > 0:
                    best[kind] = min(best[kind], elapsed)
        rate = {k: opts.objects / v for k, v in best.items()}
        print(f"  hashgate scan DIR            {rate['files']:8.1f} objects/s  ({best['files']:.2f} s)")
        print(f"  hashgate scan s3://bench/    {rate['s3']:8.1f} objects/s  ({best['s3']:.2f} s)")
        print(f"    the same with -j {cores}         {rate['s3 -j cores']:8.1f} objects/s  ({best['s3 -j cores']:.2f} s)")
        print(f"  ratio s3 / files             {rate['s3'] / rate['files']:8.2f}")
    finally:
        moto.terminate()
        moto.wait()


if __name__ == "__main__":
    main()
