#!/usr/bin/env python3
"""A small client of the Hasher-Matcher-Actioner (HMA) REST API, written
from HMA's public API description, used to check that `hashgate serve`
answers an HMA client as HMA would (tests/serve_hma.rs).

For each image file it asks, as an HMA integration does:
  POST /m/lookup        (multipart, field "photo")  -> banks per signal type
  POST /h/hash          (multipart, field "photo")  -> {"pdq": HEX, ...}
  GET  /m/lookup?signal_type=pdq&signal=HEX         -> banks
and prints one JSON line per file:
  {"file": F, "banks": [...], "by_hash": {"pdq": [...], ...}}
where "banks" is the verdict (every bank the image matches; empty = no match).

  python3 scripts/hma_client.py --url http://127.0.0.1:8080 [--token T] FILE...

Standard library only.
"""
import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid


def call(base, path, token, body=None, content_type=None, method=None):
    request = urllib.request.Request(base.rstrip("/") + path, data=body, method=method)
    if content_type:
        request.add_header("Content-Type", content_type)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def multipart(field, filename, data):
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    for path in args.files:
        with open(path, "rb") as f:
            data = f.read()
        body, content_type = multipart("photo", path.rsplit("/", 1)[-1], data)
        per_type = call(args.url, "/m/lookup", args.token, body, content_type, "POST")
        banks = sorted({bank for found in per_type.values() for bank in found})
        hashes = call(args.url, "/h/hash", args.token, body, content_type, "POST")
        by_hash = {}
        for signal_type, signal in sorted(hashes.items()):
            query = urllib.parse.urlencode({"signal_type": signal_type, "signal": signal})
            by_hash[signal_type] = call(args.url, f"/m/lookup?{query}", args.token)
        print(json.dumps({"file": path, "banks": banks, "by_hash": by_hash}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except urllib.error.HTTPError as error:
        print(f"hma_client: {error.code} {error.read().decode(errors='replace')}", file=sys.stderr)
        sys.exit(1)
