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

  python3 tests/support/images.py hidden OUT_DIR
      fixtures/photos/chelsea.jpg where a viewer sees it but the pixels the
      reference hashes (stored RGB, first frame) are something else:
      alpha-ink.png        black RGB everywhere; the picture is in alpha
                           (a white page shows it)
      alpha-dark.png       white RGB everywhere; the picture is in alpha
                           (a black background shows it)
      alpha-holes.png      3 of every 4 pixels fully transparent, their RGB
                           a different photo (coffee); the rest chelsea
      frame2.gif           frame 1 coffee, frame 2 chelsea
      partial.gif          frame 1 chelsea's top half over coffee, frame 2
                           only the bottom half of chelsea (a sub-rectangle):
                           chelsea only once composited
      apng.png             APNG whose default image (not part of the
                           animation) is blank grey; its frames coffee, chelsea
      frame2.webp          animated WebP: coffee, then chelsea
      many-frames.gif      10,000 distinct 64 x 64 frames (a frame bomb)
      chelsea.ico          as an icon (PNG inside, 256 px)
      chelsea-bmp.ico      as an icon (BMP inside, 128 px)
      chelsea.tiff         as an LZW TIFF
      chelsea.svg          an SVG wrapping a PNG of it in an <image> data: URI
      chelsea-jpeg.svg     an SVG wrapping the JPEG (xlink:href, entity-escaped
                           "data:", base64 broken over lines)
      vector.svg           an SVG with no raster image
      chelsea.avif         as AVIF (recognised, not decodable)

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


def hidden(out):
    import base64
    import io

    chelsea = Image.open(PHOTOS / "chelsea.jpg").convert("RGB")
    size = chelsea.size
    coffee = Image.open(PHOTOS / "coffee.jpg").convert("RGB").resize(size, Image.BICUBIC)
    grey = chelsea.convert("L")

    ink = Image.new("RGBA", size, (0, 0, 0, 0))
    ink.putalpha(grey.point(lambda v: 255 - v))
    save(ink, out / "alpha-ink.png")

    dark = Image.new("RGBA", size, (255, 255, 255, 0))
    dark.putalpha(grey)
    save(dark, out / "alpha-dark.png")

    holes = chelsea.convert("RGBA")
    px, cx = holes.load(), coffee.load()
    for y in range(size[1]):
        for x in range(size[0]):
            if (x % 2, y % 2) != (0, 0):
                r, g, b = cx[x, y]
                px[x, y] = (r, g, b, 0)
    save(holes, out / "alpha-holes.png")

    save(coffee, out / "frame2.gif", save_all=True, append_images=[chelsea], duration=500, loop=0)

    w, h = size
    # One palette for both frames, so the writer stores frame 2 as the
    # rectangle that changed: the bottom half.
    second = chelsea.quantize(256)
    first = coffee.quantize(palette=second)
    first.paste(second.crop((0, 0, w, h // 2)), (0, 0))
    save(first, out / "partial.gif", save_all=True, append_images=[second], duration=500, loop=0)

    blank = Image.new("RGB", size, (128, 128, 128))
    save(blank, out / "apng.png", save_all=True, append_images=[coffee, chelsea], default_image=True, duration=500, loop=0)

    save(coffee, out / "frame2.webp", save_all=True, append_images=[chelsea], duration=500, loop=0, lossless=True)

    if not (out / "many-frames.gif").exists():
        base = Image.new("P", (64, 64), 0)
        base.putpalette([v for i in range(256) for v in (i, 255 - i, (i * 7) % 256)])
        frames = []
        for n in range(10_000):
            frame = base.copy()
            frame.putpixel((n % 64, (n // 64) % 64), 1 + n % 255)
            frames.append(frame)
        frames[0].save(out / "many-frames.gif", save_all=True, append_images=frames[1:], duration=20, loop=0, optimize=False)

    save(chelsea, out / "chelsea.ico", sizes=[(256, 256)])
    save(chelsea, out / "chelsea-bmp.ico", sizes=[(128, 128)], bitmap_format="bmp")
    save(chelsea, out / "chelsea.tiff", compression="tiff_lzw")

    png = io.BytesIO()
    chelsea.save(png, format="PNG")
    data = base64.b64encode(png.getvalue()).decode()
    svg = (
        f'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">'
        f'<image width="{w}" height="{h}" href="data:image/png;base64,{data}"/></svg>\n'
    )
    if not (out / "chelsea.svg").exists():
        (out / "chelsea.svg").write_text(svg)
    jpeg = base64.b64encode((PHOTOS / "chelsea.jpg").read_bytes()).decode()
    lines = "\n".join(jpeg[i : i + 76] for i in range(0, len(jpeg), 76))
    svg = (
        '<!-- a wrapper -->\n<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
        f'<image xlink:href="&#100;ata:image/jpeg;base64,\n{lines}"/></svg>\n'
    )
    if not (out / "chelsea-jpeg.svg").exists():
        (out / "chelsea-jpeg.svg").write_text(svg)
    if not (out / "vector.svg").exists():
        (out / "vector.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>\n')

    save(chelsea, out / "chelsea.avif", quality=80)


def main():
    commands = {"variants": variants, "sizes": sizes, "bombs": bombs, "hidden": hidden}
    if len(sys.argv) != 3 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    commands[sys.argv[1]](out)
    for path in sorted(out.iterdir()):
        print(f"{path.name}\t{path.stat().st_size}")


if __name__ == "__main__":
    main()
