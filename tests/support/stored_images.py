#!/usr/bin/env python3
"""Objects for the stored-content tests and benchmark, made from the
fixture photos with Pillow (derived, not committed).

  python3 tests/support/stored_images.py OUT_DIR TOTAL LISTED

writes TOTAL files to OUT_DIR:
  listed-NN.jpg   LISTED altered copies of fixtures/photos/chelsea.jpg (on
                  the demo list by PDQ): each resized to its own width and
                  re-encoded at its own JPEG quality, so every one has its
                  own SHA-256 and is found only by PDQ
  clean-NNNN.jpg  the rest: 96 x 96 crops of the other fixture photos at
                  distinct offsets and sizes (distinct images, none listed)
Deterministic: the same arguments make the same files.
"""
import os
import sys

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PHOTOS = os.path.join(ROOT, "fixtures", "photos")


def main():
    out, total, listed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.makedirs(out, exist_ok=True)
    chelsea = Image.open(os.path.join(PHOTOS, "chelsea.jpg")).convert("RGB")
    for i in range(listed):
        width = 240 + 9 * i
        height = round(chelsea.height * width / chelsea.width)
        chelsea.resize((width, height), Image.LANCZOS).save(
            os.path.join(out, f"listed-{i:02}.jpg"), quality=60 + i)
    sources = [Image.open(os.path.join(PHOTOS, name)).convert("RGB")
               for name in ("coffee.jpg", "astronaut.jpg", "hubble.jpg", "camera.jpg", "rocket.jpg")]
    for n in range(total - listed):
        src = sources[n % len(sources)]
        k = n // len(sources)
        side = 64 + (k % 7) * 24
        x = (k * 37) % max(1, src.width - side)
        y = (k * 53) % max(1, src.height - side)
        src.crop((x, y, x + side, y + side)).resize((96, 96), Image.BILINEAR).save(
            os.path.join(out, f"clean-{n:04}.jpg"), quality=85)


if __name__ == "__main__":
    main()
