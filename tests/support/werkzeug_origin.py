"""An origin that reads uploads the way Flask applications do, for the
end-to-end tests of ambiguous forms (tests/forms.test.mjs).

A WSGI app served by Werkzeug's own server on 127.0.0.1. Every request with
a body is parsed by Werkzeug (``request.files``, ``request.form``) and
answered with what an application could extract from it as images: the
files, and what a permissive application decodes beyond Werkzeug -- a
``Content-Encoding`` (gzip, deflate, br), ``Content-Transfer-Encoding``
(base64, quoted-printable) on parts, ``multipart/mixed`` parts nested in a
form, and ``data:`` URIs or base64 strings in form fields and JSON. The
answer is JSON: ``{"images": [sha256, ...], "files": [...], "error": ...}``
where ``images`` holds the SHA-256 of every extracted blob that starts like
an image. ``GET /__count`` answers how many uploads arrived so far.

    python3 tests/support/werkzeug_origin.py      # prints "listening on PORT"
"""

import base64
import binascii
import hashlib
import io
import json
import quopri
import re
import sys
import zlib

from werkzeug.formparser import parse_form_data
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder
from werkzeug.http import parse_options_header
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

try:
    import brotli
except ImportError:  # br bodies are then reported undecodable
    brotli = None

MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")
COUNT = {"uploads": 0}


def is_image(data):
    return data.startswith(MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def decode_content_encoding(body, header):
    for coding in reversed([c.strip().lower() for c in header.split(",") if c.strip()]):
        if coding in ("gzip", "x-gzip"):
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            try:
                body = zlib.decompress(body)
            except zlib.error:
                body = zlib.decompress(body, -zlib.MAX_WBITS)
        elif coding == "br" and brotli is not None:
            body = brotli.decompress(body)
        elif coding != "identity":
            raise ValueError(f"cannot decode {coding}")
    return body


def from_text(text):
    """Images an application decodes from a string: data: URIs, base64."""
    text = text.strip()
    if text.lower().startswith("data:") and "," in text:
        header, payload = text[5:].split(",", 1)
        if header.lower().endswith(";base64"):
            return [base64.b64decode(payload + "===")] if payload else []
        from urllib.parse import unquote_to_bytes
        return [unquote_to_bytes(payload)]
    if len(text) >= 24 and re.fullmatch(r"[A-Za-z0-9+/=\s_-]+", text):
        try:
            return [base64.b64decode(text.replace("-", "+").replace("_", "/") + "===")]
        except (binascii.Error, ValueError):
            return []
    return []


def from_json(value, out):
    if isinstance(value, str):
        out.extend(from_text(value))
    elif isinstance(value, list):
        for v in value:
            from_json(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            from_json(v, out)


def from_part(data, headers, out):
    """A part's bytes, with its transfer encoding undone and nested
    multipart read."""
    cte = (headers.get("Content-Transfer-Encoding") or "").strip().lower()
    if cte == "base64":
        data = base64.b64decode(data + b"===")
    elif cte == "quoted-printable":
        data = quopri.decodestring(data)
    out.append(data)
    ctype, options = parse_options_header(headers.get("Content-Type"))
    if ctype.startswith("multipart/") and options.get("boundary"):
        out.extend(nested(data, options["boundary"].encode()))


def nested(body, boundary):
    decoder = MultipartDecoder(boundary)
    decoder.receive_data(body)
    decoder.receive_data(None)
    parts = []
    while True:
        event = decoder.next_event()
        if isinstance(event, (Field, File)):
            parts.append([event.headers, b""])
        elif isinstance(event, Data):
            parts[-1][1] += event.data
        elif isinstance(event, Epilogue):
            break
    out = []
    for headers, data in parts:
        from_part(data, headers, out)
    return out


def extract(environ):
    request = Request(environ)
    raw = request.get_data(cache=True)
    report = {"files": [], "images": [], "error": None}
    blobs = []
    try:
        body = decode_content_encoding(raw, request.headers.get("Content-Encoding", ""))
        environ = dict(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        _, form, files = parse_form_data(environ, silent=False)
        for field, storage in files.items(multi=True):
            data = storage.read()
            report["files"].append({"field": field, "filename": storage.filename,
                                    "sha256": hashlib.sha256(data).hexdigest()})
            from_part(data, storage.headers, blobs)
        for _, value in form.items(multi=True):
            blobs.extend(from_text(value))
        if request.mimetype == "application/json" or request.mimetype.endswith("+json"):
            from_json(json.loads(body), blobs)
        elif not request.mimetype.startswith("multipart/") and request.mimetype != "application/x-www-form-urlencoded":
            blobs.append(body)
    except Exception as e:  # what the application would answer 400 to
        report["error"] = f"{type(e).__name__}: {e}"
    report["images"] = sorted({hashlib.sha256(b).hexdigest() for b in blobs if is_image(b)})
    return report


def app(environ, start_response):
    if environ["REQUEST_METHOD"] == "GET" and environ["PATH_INFO"] == "/__count":
        return Response(json.dumps(COUNT), mimetype="application/json")(environ, start_response)
    COUNT["uploads"] += 1
    return Response(json.dumps(extract(environ)), mimetype="application/json")(environ, start_response)


if __name__ == "__main__":
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"listening on {server.port}", flush=True)
    server.serve_forever()
