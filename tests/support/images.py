#!/usr/bin/env python3
"""Images the end-to-end tests and the worker benchmark need, made from the
fixture photos with Pillow (not committed: they are derived, and large).

  python3 tests/support/images.py variants OUT_DIR
      altered copies of fixtures/photos/chelsea.jpg (on the demo list by PDQ):
      chelsea-q40.jpg      re-encoded at JPEG quality 40
      chelsea-small.jpg    resized to 60% (and re-encoded)
      chelsea-rot90.jpg    rotated 90 degrees (and re-encoded)
      chelsea-mirror.png   mirrored left-right, as PNG
      chelsea-copy.jpg     a byte-identical copy (same SHA-256, another URL)
      chelsea-border.jpg   with a uniform white border added (60 px sides, 40 px top/bottom)

  python3 tests/support/images.py sizes OUT_DIR
      photo-1mp.jpg, photo-12mp.jpg, photo-24mp.jpg: fixtures/photos/hubble.jpg
      resized to about 1, 12 and 24 megapixels (4:3), JPEG quality 90

  python3 tests/support/images.py bombs OUT_DIR
      zipbomb-7000.png     7000 x 7000 grey, all one value: about 50 KB that
                           inflate to 49 megapixels (under the edge limit of
                           50, so it is decoded, not refused from its header)

Files that already exist are kept (delete OUT_DIR to remake them).
"""

import shutil
import sys
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ROOT / "fixtures" / "photos"


def save(img, path, **kw):
    if not path.exists():
        img.save(path, **kw)


def variants(out):
    src = PHOTOS / "chelsea.jpg"
    img = Image.open(src).convert("RGB")
    save(img, out / "chelsea-q40.jpg", quality=40)
    w, h = img.size
    save(img.resize((int(w * 0.6), int(h * 0.6)), Image.LANCZOS), out / "chelsea-small.jpg", quality=85)
    save(img.transpose(Image.Transpose.ROTATE_90), out / "chelsea-rot90.jpg", quality=85)
    save(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), out / "chelsea-mirror.png")
    save(ImageOps.expand(img, border=(60, 40, 60, 40), fill=(255, 255, 255)), out / "chelsea-border.jpg", quality=90)
    if not (out / "chelsea-copy.jpg").exists():
        shutil.copyfile(src, out / "chelsea-copy.jpg")


def sizes(out):
    img = Image.open(PHOTOS / "hubble.jpg").convert("RGB")
    for name, (w, h) in {
        "photo-1mp.jpg": (1155, 866),
        "photo-12mp.jpg": (4000, 3000),
        "photo-24mp.jpg": (5657, 4243),
    }.items():
        save(img.resize((w, h), Image.BICUBIC), out / name, quality=90)


def bombs(out):
    save(Image.new("L", (7000, 7000), 128), out / "zipbomb-7000.png", optimize=True)


def main():
    commands = {"variants": variants, "sizes": sizes, "bombs": bombs}
    if len(sys.argv) != 3 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    commands[sys.argv[1]](out)
    for path in sorted(out.iterdir()):
        print(f"{path.name}\t{path.stat().st_size}")


if __name__ == "__main__":
    main()
