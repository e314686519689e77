#!/usr/bin/env python3
"""Robustness benchmark: do altered copies of a listed image still match?

Modelled on Thorn's `perception` benchmark. Photos that scikit-image ships
(CC0 / public domain) are the "listed" originals, hashed with the reference
PDQ (`pdqhash`) as a list provider would. Each photo is altered by every
transform below and saved as JPEG (q90, except the JPEG q50 case). For each
transform we report the distance from the altered copy to its original's
listed hash:

  reference  plain PDQ of the altered copy (`pdqhash`), as most matchers do
  hashgate   the best of hashgate's query set (`hashgate hash --variants`:
             the image's own hash, derived and pixel rotations/mirrors, the
             content inside uniform borders)

and the share within the match threshold (31). False matches: the smallest
distance between any altered copy's query set and any *other* photo's
listed hash. Finally the CPU cost of the variants: `hashgate hash` with and
without `--variants` over all altered files on one thread.

Usage: bash scripts/bench-robustness.sh (builds, then runs this).
"""

import json
import os
import statistics
import subprocess
import time

import numpy as np
import pdqhash
import skimage.data
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "target", "robustness")
BIN = os.path.join(ROOT, "target", "release", "hashgate")
THRESHOLD = 31

PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina", "camera", "coins",
          "stereo_motorcycle", "immunohistochemistry", "moon", "brick", "grass", "gravel", "cell"]


def load(name):
    array = getattr(skimage.data, name)()
    if isinstance(array, tuple):
        array = array[0]
    image = Image.fromarray(array)
    return image.convert("RGB")


def with_border(image, share, colour):
    w, h = image.size
    return ImageOps.expand(image, border=(int(w * share), int(h * share)), fill=colour)


def sepia(image):
    array = np.asarray(image).astype(np.float32)
    matrix = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    return Image.fromarray(np.clip(array @ matrix.T, 0, 255).astype(np.uint8))


def noise(image, sigma=8.0, seed=1):
    array = np.asarray(image).astype(np.float32)
    array += np.random.default_rng(seed).normal(0, sigma, array.shape)
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


def gamma(image, g):
    table = [round(255 * (v / 255) ** g) for v in range(256)] * 3
    return image.point(table)


def watermark(image):
    out = image.convert("RGBA")
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    size = max(12, out.size[0] // 10)
    font = ImageFont.load_default(size=size)
    draw.text((out.size[0] // 10, out.size[1] // 2 - size // 2), "SAMPLE (c)", font=font, fill=(255, 255, 255, 160))
    return Image.alpha_composite(out, layer).convert("RGB")


def logo_box(image):
    out = image.copy()
    w, h = out.size
    ImageDraw.Draw(out).rectangle([w - w // 5, h - h // 5, w - w // 20, h - h // 20], fill=(200, 30, 30))
    return out


def crop(image, share):
    w, h = image.size
    return image.crop((int(w * share), int(h * share), w - int(w * share), h - int(h * share)))


TRANSFORMS = {
    "saturation x2": lambda im: ImageEnhance.Color(im).enhance(2.0),
    "sepia": sepia,
    "white border 5%": lambda im: with_border(im, 0.05, (255, 255, 255)),
    "black border 15%": lambda im: with_border(im, 0.15, (0, 0, 0)),
    "gaussian noise s=8": noise,
    "jpeg q50": lambda im: im,  # saved at quality 50 below
    "resize 50%": lambda im: im.resize((im.size[0] // 2, im.size[1] // 2), Image.LANCZOS),
    "crop 5% per side": lambda im: crop(im, 0.05),
    "rotate 90": lambda im: im.transpose(Image.ROTATE_90),
    "mirror": lambda im: im.transpose(Image.FLIP_LEFT_RIGHT),
    "grayscale": lambda im: im.convert("L").convert("RGB"),
    "gamma 0.7": lambda im: gamma(im, 0.7),
    "gamma 1.5": lambda im: gamma(im, 1.5),
    "watermark text": watermark,
    "opaque logo box": logo_box,
}


def reference_hash(image):
    vector, quality = pdqhash.compute(np.asarray(image.convert("RGB")))
    return int("".join("1" if b else "0" for b in vector), 2), int(quality)


def distance(a, b):
    return bin(a ^ b).count("1")


def ours(files, variants=True, threads=None):
    env = dict(os.environ)
    if threads:
        env["RAYON_NUM_THREADS"] = str(threads)
    args = [BIN, "hash"] + (["--variants"] if variants else []) + files
    output = subprocess.run(args, capture_output=True, text=True, env=env)
    results = {}
    for line in output.stdout.splitlines():
        record = json.loads(line)
        if "error" in record:
            raise SystemExit(f"{record['file']}: {record['error']}")
        hashes = [int(record["pdq"], 16)] + [int(v["pdq"], 16) for v in record.get("variants", [])]
        results[record["file"]] = hashes
    return results


def main():
    os.makedirs(OUT, exist_ok=True)
    listed = {}
    altered = {}  # (photo, transform) -> path
    for name in PHOTOS:
        original = load(name)
        listed[name], _ = reference_hash(original)
        for transform, fn in TRANSFORMS.items():
            path = os.path.join(OUT, f"{name}--{transform.replace(' ', '_').replace('%', 'pct').replace('=', '')}.jpg")
            if not os.path.exists(path):
                fn(original).save(path, "JPEG", quality=50 if transform == "jpeg q50" else 90)
            altered[(name, transform)] = path

    files = sorted(altered.values())
    query_sets = ours(files)
    reference = {path: reference_hash(Image.open(path))[0] for path in files}

    print(f"{len(PHOTOS)} photos x {len(TRANSFORMS)} transforms; distance to the original's listed (reference) PDQ hash; matched = distance <= {THRESHOLD}")
    print(f"{'transform':20} | {'reference PDQ':^24} | {'hashgate query set':^24}")
    print(f"{'':20} | {'median':>6} {'max':>5} {'matched':>9} | {'median':>6} {'max':>5} {'matched':>9}")
    for transform in TRANSFORMS:
        ref_d, our_d = [], []
        for name in PHOTOS:
            path = altered[(name, transform)]
            ref_d.append(distance(reference[path], listed[name]))
            our_d.append(min(distance(h, listed[name]) for h in query_sets[path]))
        share = lambda ds: 100.0 * sum(d <= THRESHOLD for d in ds) / len(ds)
        print(f"{transform:20} | {statistics.median(ref_d):6.0f} {max(ref_d):5} {share(ref_d):8.0f}% | "
              f"{statistics.median(our_d):6.0f} {max(our_d):5} {share(our_d):8.0f}%")

    ref_false = min(distance(reference[altered[(a, t)]], listed[b]) for a in PHOTOS for b in PHOTOS if a != b for t in TRANSFORMS)
    our_false = min(distance(h, listed[b]) for a in PHOTOS for b in PHOTOS if a != b for t in TRANSFORMS
                    for h in query_sets[altered[(a, t)]])
    pairs = len(PHOTOS) * (len(PHOTOS) - 1) * len(TRANSFORMS)
    print(f"false matches: smallest distance to an unrelated photo's hash over {pairs} pairs: "
          f"reference {ref_false}, hashgate query set {our_false} (a false match would be <= {THRESHOLD})")
    identical = sum(ours([path], variants=False)[path][0] == reference_hash(Image.open(path))[0] for path in files[:10])

    def timed(variants):
        best = None
        for _ in range(3):
            start = time.perf_counter()
            ours(files, variants=variants, threads=1)
            elapsed = time.perf_counter() - start
            best = elapsed if best is None else min(best, elapsed)
        return best

    plain, full = timed(False), timed(True)
    print(f"CPU, one thread, {len(files)} files: plain PDQ + digests {plain * 1000 / len(files):.2f} ms/image, "
          f"with all variants {full * 1000 / len(files):.2f} ms/image: +{100 * (full - plain) / plain:.0f}%")
    print(f"primary hash identical to reference PDQ on {identical}/10 sampled altered files (JPEG decoders may differ by a bit)")


if __name__ == "__main__":
    main()
