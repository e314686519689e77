#!/usr/bin/env python3
"""Hasher benchmark: the reference pipelines against hashgate, one core, one run.

Makes a ~1 MP and a ~12 MP photo JPEG (a mosaic of the fixture photos,
upscaled, with sensor-like noise so the entropy coding does real work), then
times per image (median of N):

  ref-full   PIL decode at full resolution + pdqhash (the reference)
  ref-draft  PIL JPEG draft mode (DCT scaling to the same scale as ours) + pdqhash
  ours-pdq   hashgate natively, decode at reduced scale + PDQ: the same work
             as the reference pipelines
  ours       the whole `hash_image`: PDQ plus MD5, SHA-1 and SHA-256
  ours-wasm  the same Rust code compiled to wasm32-wasip1 under node (both)

and prints the ratios, plus each hash's distance to the full-resolution
reference hash. Run through scripts/bench-hasher.sh, which builds first.
"""

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import pdqhash
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", "bench")
NATIVE = os.path.join(ROOT, "target", "release", "examples", "time_hash")
WASM = os.path.join(ROOT, "target", "wasm32-wasip1", "release", "examples", "time_hash.wasm")


def block_size(width, height):
    """The same DCT scale hashgate picks: the largest of 1/2, 1/4, 1/8 whose
    block is at most half of PDQ's blur window (hasher/src/decode/mod.rs)."""
    window = (min(width, height) + 127) // 128
    return next((block for block in (8, 4, 2) if 2 * block <= window), 1)


def make_photo(width, height, seed):
    names = ["photos/astronaut.jpg", "photos/coffee.jpg", "photos/rocket.jpg", "photos/hubble.jpg"]
    tiles = [Image.open(os.path.join(ROOT, "fixtures", n)).convert("RGB") for n in names]
    canvas = Image.new("RGB", (width, height))
    half_w, half_h = width // 2, height // 2
    for index, tile in enumerate(tiles):
        canvas.paste(tile.resize((half_w, half_h), Image.BICUBIC), ((index % 2) * half_w, (index // 2) * half_h))
    rng = np.random.default_rng(seed)
    array = np.asarray(canvas).astype(np.int16) + rng.normal(0, 4, (height, width, 3)).astype(np.int16)
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


def photo(name, width, height):
    path = os.path.join(OUT, name)
    if not os.path.exists(path):
        os.makedirs(OUT, exist_ok=True)
        make_photo(width, height, width).save(path, "JPEG", quality=92)
    return path


def to_int(vector):
    return int("".join("1" if b else "0" for b in vector), 2)


def time_python(fn, iterations):
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def ref_full(path):
    with Image.open(path) as image:
        vector, _ = pdqhash.compute(np.asarray(image.convert("RGB")))
    return to_int(vector)


def ref_draft(path):
    with Image.open(path) as image:
        width, height = image.size
        scale = block_size(width, height)
        image.draft("RGB", (-(-width // scale), -(-height // scale)))
        vector, _ = pdqhash.compute(np.asarray(image.convert("RGB")))
    return to_int(vector)


def run_ours(command, path, iterations, raw=False):
    output = subprocess.run(command + [path, str(iterations)], capture_output=True, text=True, check=True, cwd=ROOT)
    result = json.loads(output.stdout)
    return result if raw else (result["median_ms"], result["pdq_median_ms"], int(result["pdq"], 16))


def main():
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    images = [("photo-1mp.jpg", 1224, 816), ("photo-12mp.jpg", 4240, 2832)]
    print(f"single thread, median of {iterations}; distance = Hamming distance to the full-resolution reference hash")
    print(f"{'image':16} {'pipeline':10} {'ms':>9} {'distance':>8}  ratio")
    for name, width, height in images:
        path = photo(name, width, height)
        relative = os.path.relpath(path, ROOT)
        full_ms, full_hash = time_python(lambda: ref_full(path), max(3, iterations // 3))
        draft_ms, draft_hash = time_python(lambda: ref_draft(path), iterations)
        ours_ms, ours_pdq_ms, ours_hash = run_ours([NATIVE], relative, iterations)
        wasm_ms, wasm_pdq_ms, wasm_hash = run_ours(["node", "--no-warnings", os.path.join(ROOT, "bench", "run-wasi.mjs"), WASM], relative, iterations)
        d = lambda h: bin(h ^ full_hash).count("1")
        label = f"{name} ({width}x{height})"
        print(f"{label:16}")
        print(f"{'':16} {'ref-full':10} {full_ms:9.2f} {0:8}")
        print(f"{'':16} {'ref-draft':10} {draft_ms:9.2f} {d(draft_hash):8}")
        print(f"{'':16} {'ours-pdq':10} {ours_pdq_ms:9.2f} {d(ours_hash):8}  ref-draft/ours-pdq = {draft_ms / ours_pdq_ms:.2f}x faster, "
              f"ref-full/ours-pdq = {full_ms / ours_pdq_ms:.2f}x")
        print(f"{'':16} {'ours':10} {ours_ms:9.2f} {d(ours_hash):8}  with digests: ref-draft/ours = {draft_ms / ours_ms:.2f}x")
        print(f"{'':16} {'wasm-pdq':10} {wasm_pdq_ms:9.2f} {d(wasm_hash):8}  wasm/native = {wasm_pdq_ms / ours_pdq_ms:.2f}x")
        print(f"{'':16} {'ours-wasm':10} {wasm_ms:9.2f} {d(wasm_hash):8}  wasm/native = {wasm_ms / ours_ms:.2f}x")
    wasm_cmd = ["node", "--no-warnings", os.path.join(ROOT, "bench", "run-wasi.mjs"), WASM]
    big = os.path.relpath(photo("photo-24mp.jpg", 6000, 4000), ROOT)
    result = run_ours(wasm_cmd, big, 5, raw=True)
    print(f"24 MP JPEG (6000x4000) in wasm: {result['median_ms']:.1f} ms (median of 5), peak linear memory {result['peak_memory_bytes'] / 2**20:.1f} MiB "
          f"(the module's memory after one hash; it only grows)")
    bomb = os.path.join("fixtures", "errors", "bomb-50000.png")
    native = run_ours([NATIVE], bomb, 1001, raw=True)
    wasm = run_ours(wasm_cmd, bomb, 1001, raw=True)
    print(f"PNG bomb ({os.path.getsize(os.path.join(ROOT, bomb))} bytes claiming 50000x50000): refused in {native['median_ms'] * 1000:.2f} us native, "
          f"{wasm['median_ms'] * 1000:.2f} us wasm ({native['error']})")
    print(f"wasm module (hasher + digests + decoders, wasm32-wasip1 example): {os.path.getsize(WASM) / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
