// Ambiguous uploads: bodies that a real origin parser (Werkzeug, behind a
// Flask-style application: tests/support/werkzeug_origin.py) reads
// differently from a strict multipart reader. For each body the test first
// sends it straight to the origin, to show what the origin extracts, then
// through the worker: an image the origin could extract is refused (451 on a
// block route) before the origin sees the request, and what the worker
// cannot read gets the route's fail mode. Whatever reaches the origin
// through the worker never yields the listed image.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import zlib from "node:zlib";
import { FIXTURES_DIR, sha256 } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST } from "./support/index.mjs";
import { startWerkzeugOrigin } from "./support/werkzeug.mjs";

const chelsea = await readFile(path.join(FIXTURES_DIR, "photos/chelsea.jpg"));
const coffee = await readFile(path.join(FIXTURES_DIR, "photos/coffee.jpg"));
const LISTED = sha256(chelsea);
const SMALL_CAP = chelsea.length + 4096;

const bytes = (...pieces) => Buffer.concat(pieces.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : p)));
const form = (boundary) => `multipart/form-data; boundary=${boundary}`;
const filePart = (boundary, data = chelsea, { nl = "\r\n", type = "image/jpeg", extra = "" } = {}) =>
  bytes(`--${boundary}${nl}Content-Disposition: form-data; name="photo"; filename="cat.jpg"${nl}`, type ? `Content-Type: ${type}${nl}` : "", extra, nl, data);
/** A well-formed form holding `data` as a file. */
const plainForm = (boundary = "real", data = chelsea) => bytes(filePart(boundary, data), `\r\n--${boundary}--\r\n`);
/** Under `decoy` one text field; under `real` (inside it) a file. */
const decoyForm = bytes(
  '--decoy\r\nContent-Disposition: form-data; name="note"\r\n\r\n',
  plainForm("real"),
  "\r\n--decoy--\r\n",
);
const dataUri = `data:image/jpeg;base64,${chelsea.toString("base64")}`;
const wrapped = chelsea.toString("base64").replace(/.{76}/g, "$&\r\n");
const quotedPrintable = [...chelsea].map((b) => "=" + b.toString(16).toUpperCase().padStart(2, "0")).join("").replace(/.{72}/g, "$&=\r\n");

// route: which policy route (open/closed: fail mode; small: closed, max_bytes SMALL_CAP)
// expect: 451 (refused, origin never sees it) | 503 (fail closed)
// werkzeug: whether the origin extracts the listed image when sent the body directly
const CASES = [
  // Content-Type parameters
  { name: "two boundary parameters: Werkzeug reads the last", route: "closed", werkzeug: true, expect: 451,
    contentType: "multipart/form-data; boundary=decoy; boundary=real", body: decoyForm },
  { name: "quoted, then differently cased boundary", route: "closed", werkzeug: true, expect: 451,
    contentType: 'multipart/form-data; boundary="decoy"; BOUNDARY=real', body: decoyForm },
  { name: "RFC 2231 boundary*= after a plain one", route: "closed", werkzeug: true, expect: 451,
    contentType: "multipart/form-data; boundary=decoy; boundary*=utf-8''real", body: decoyForm },
  { name: "RFC 2231 continuations boundary*0, boundary*1 only", route: "open", werkzeug: true, expect: 451,
    contentType: "multipart/form-data; boundary*0=re; boundary*1=al", body: plainForm() },
  { name: "two Content-Type values joined by a comma", route: "open", werkzeug: true, expect: 451,
    contentType: "multipart/form-data; boundary=decoy, multipart/form-data; boundary=real", body: decoyForm },
  // Framing
  { name: "file part after bare LF inside a text part", route: "closed", werkzeug: true, expect: 451,
    contentType: form("real"),
    body: bytes('--real\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\n', filePart("real", chelsea, { nl: "\n" }), "\r\n--real--\r\n") },
  { name: "bare CR line ends throughout", route: "open", werkzeug: true, expect: 451,
    contentType: form("real"), body: bytes(filePart("real", chelsea, { nl: "\r" }), "\r--real--") },
  { name: "transport padding with vertical tab and form feed", route: "open", werkzeug: true, expect: 451,
    contentType: form("real"), body: bytes("--real\x0b\x0c", plainForm().subarray("--real".length)) },
  { name: "missing final boundary", route: "open", werkzeug: false, expect: 451,
    contentType: form("real"), body: filePart("real") },
  { name: "first delimiter in mid-line after a preamble", route: "open", werkzeug: true, expect: 451,
    contentType: form("real"), body: bytes("preamble without a line end", plainForm()) },
  { name: "epilogue after the close delimiter holds a second form", route: "closed", werkzeug: false, expect: 451,
    contentType: form("real"),
    body: bytes('--real\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n--real--junk\r\n', plainForm()) },
  { name: "folded, oddly cased part headers ending in a bare-LF blank line", route: "open", werkzeug: true, expect: 451,
    contentType: form("real"),
    body: bytes('--real\r\ncontent-DISPOSITION: form-data;\r\n name="photo";\r\n\tfilename="cat.jpg"\r\nCONTENT-TYPE: text/plain\n\n', chelsea, "\r\n--real--\r\n") },
  { name: "a part without filename or Content-Type holding image bytes", route: "closed", werkzeug: false, expect: 451,
    contentType: form("real"),
    body: bytes('--real\r\nContent-Disposition: form-data; name="photo"\r\n\r\n', chelsea, "\r\n--real--\r\n") },
  // Methods
  { name: "PATCH with a form", method: "PATCH", route: "closed", werkzeug: true, expect: 451, contentType: form("real"), body: plainForm() },
  { name: "DELETE with a raw image body", method: "DELETE", route: "closed", werkzeug: true, expect: 451, contentType: "image/jpeg", body: chelsea },
  // Content-Encoding
  { name: "gzip-compressed form", route: "open", werkzeug: true, expect: 451,
    contentType: form("real"), headers: { "content-encoding": "gzip" }, body: zlib.gzipSync(plainForm()) },
  { name: "deflate-compressed raw image", method: "PUT", route: "open", werkzeug: true, expect: 451,
    contentType: "image/jpeg", headers: { "content-encoding": "deflate" }, body: zlib.deflateSync(chelsea) },
  { name: "brotli-compressed form without a Content-Type", route: "closed", werkzeug: false, expect: 451,
    contentType: null, headers: { "content-encoding": "br" }, body: zlib.brotliCompressSync(plainForm()) },
  { name: "brotli-compressed form", route: "open", werkzeug: true, expect: 451,
    contentType: form("real"), headers: { "content-encoding": "br" }, body: zlib.brotliCompressSync(plainForm()) },
  { name: "gzip inside deflate", route: "open", werkzeug: true, expect: 451,
    contentType: form("real"), headers: { "content-encoding": "gzip, deflate" }, body: zlib.deflateSync(zlib.gzipSync(plainForm())) },
  { name: "an encoding the worker cannot decode fails closed", route: "closed", werkzeug: false, expect: 503,
    contentType: form("real"), headers: { "content-encoding": "zstd" }, body: plainForm() },
  { name: "a gzip bomb over max_bytes fails closed", route: "small", werkzeug: false, expect: 503,
    contentType: "application/octet-stream", headers: { "content-encoding": "gzip" }, body: zlib.gzipSync(Buffer.alloc(SMALL_CAP * 4)) },
  // Nesting and transfer encodings
  { name: "multipart/mixed nested in a form", route: "closed", werkzeug: true, expect: 451,
    contentType: form("outer"),
    body: bytes('--outer\r\nContent-Disposition: form-data; name="files"; filename="bundle"\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n',
      '--inner\r\nContent-Disposition: file; filename="cat.jpg"\r\nContent-Type: image/jpeg\r\n\r\n', chelsea, "\r\n--inner--", "\r\n--outer--\r\n") },
  { name: "Content-Transfer-Encoding: base64", route: "closed", werkzeug: true, expect: 451,
    contentType: form("real"), body: bytes(filePart("real", wrapped, { type: "application/octet-stream", extra: "Content-Transfer-Encoding: base64\r\n" }), "\r\n--real--\r\n") },
  { name: "Content-Transfer-Encoding: quoted-printable", route: "closed", werkzeug: true, expect: 451,
    contentType: form("real"), body: bytes(filePart("real", quotedPrintable, { type: "application/octet-stream", extra: "Content-Transfer-Encoding: Quoted-Printable\r\n" }), "\r\n--real--\r\n") },
  // Images as text
  { name: "JSON with a data: URI", route: "closed", werkzeug: true, expect: 451,
    contentType: "application/json", body: Buffer.from(JSON.stringify({ title: "cat", photo: dataUri })) },
  { name: "JSON with a bare base64 string, slashes escaped", route: "closed", werkzeug: true, expect: 451,
    contentType: "application/json", body: Buffer.from(`{"photo":"${chelsea.toString("base64").replaceAll("/", "\\/")}"}`) },
  { name: "JSON sent as text/plain", route: "closed", werkzeug: false, expect: 451,
    contentType: "text/plain", body: Buffer.from(JSON.stringify({ photo: dataUri })) },
  { name: "urlencoded form with a data: URI", route: "closed", werkzeug: true, expect: 451,
    contentType: "application/x-www-form-urlencoded", body: Buffer.from(`title=cat&photo=${encodeURIComponent(dataUri)}`) },
  { name: "base64 in a multipart text field", route: "closed", werkzeug: true, expect: 451,
    contentType: form("real"), body: bytes('--real\r\nContent-Disposition: form-data; name="photo_b64"\r\n\r\n', wrapped, "\r\n--real--\r\n") },
  { name: "SVG wrapping a data: URI raster", route: "closed", werkzeug: false, expect: 451,
    contentType: "image/svg+xml", body: Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg"><image href="${dataUri}"/></svg>`) },
  // The cap
  { name: "JSON over max_bytes fails closed", route: "small", werkzeug: true, expect: 503,
    contentType: "application/json", body: Buffer.from(JSON.stringify({ photo: dataUri })) },
  { name: "PATCH form over max_bytes, chunked, fails closed", method: "PATCH", route: "small", werkzeug: true, expect: 503, chunked: true,
    contentType: form("real"), body: bytes(plainForm("real"), "x".repeat(8192)) },
];

let werkzeug, worker;

before(async () => {
  werkzeug = await startWerkzeugOrigin();
  const both = ["responses", "uploads"];
  const route = (pattern, extra) => ({ pattern, action: "block", lists: ["demo"], scan: both, ...extra });
  worker = await startWorker({
    http: true,
    origin: werkzeug.url,
    policy: {
      routes: [
        route("*/open/*", { fail: "open" }),
        route("*/closed/*", { fail: "closed" }),
        route("*/small/*", { fail: "closed", max_bytes: SMALL_CAP }),
      ],
    },
  });
  await worker.loadIndex(await buildIndex("forms", { demo: DEMO_LIST }));
});

after(async () => {
  await worker?.dispose();
  await werkzeug?.close();
});

function init(c) {
  const headers = { ...(c.contentType ? { "content-type": c.contentType } : {}), ...c.headers };
  let body = c.body;
  if (c.chunked) {
    // A stream: sent chunked, without Content-Length.
    const data = c.body;
    body = new ReadableStream({
      start(controller) {
        for (let i = 0; i < data.length; i += 16384) controller.enqueue(data.subarray(i, i + 16384));
        controller.close();
      },
    });
  }
  return { method: c.method ?? "POST", headers, body, ...(c.chunked ? { duplex: "half" } : {}) };
}

describe("ambiguous uploads: what an origin could extract is checked, or the fail mode applies", () => {
  for (const c of CASES) {
    test(c.name, async () => {
      const direct = await werkzeug.upload("/direct", init(c));
      assert.equal(
        direct.images.includes(LISTED),
        c.werkzeug,
        `sent directly, the origin ${c.werkzeug ? "extracts" : "does not extract"} the listed image: ${JSON.stringify(direct)}`,
      );
      const seenBefore = await werkzeug.count();
      const res = await worker.http(`/${c.route}/upload`, init(c));
      const text = await res.text();
      if (res.status < 400) {
        assert.ok(!JSON.parse(text).images.includes(LISTED), `the origin extracted the listed image through the worker: ${text}`);
      }
      assert.equal(res.status, c.expect, text);
      assert.equal(await werkzeug.count(), seenBefore, "the origin never saw the request");
    });
  }
});

describe("clean uploads of the same shapes reach the origin", () => {
  test("a clean form with two boundary parameters", async () => {
    const body = bytes(
      '--decoy\r\nContent-Disposition: form-data; name="note"\r\n\r\n',
      plainForm("real", coffee),
      "\r\n--decoy--\r\n",
    );
    const c = { route: "closed", contentType: "multipart/form-data; boundary=decoy; boundary=real", body };
    const res = await worker.http("/closed/upload", init(c));
    const report = await res.json();
    assert.equal(res.status, 200);
    assert.deepEqual(report.images, [sha256(coffee)]);
  });

  test("clean JSON, PATCH, gzip and base64 bodies", async () => {
    const cleanUri = `data:image/jpeg;base64,${coffee.toString("base64")}`;
    for (const c of [
      { route: "closed", contentType: "application/json", body: Buffer.from(JSON.stringify({ photo: cleanUri, id: "f3a9c0d2e8b74c51a6e2d9f0b1c3a5e7" })) },
      { route: "closed", method: "PATCH", contentType: form("real"), body: plainForm("real", coffee) },
      { route: "closed", contentType: form("real"), headers: { "content-encoding": "gzip" }, body: zlib.gzipSync(plainForm("real", coffee)) },
      { route: "closed", contentType: "application/json", body: Buffer.from('{"name": "BMW 3 series, sold in 2019", "n": [1, 2, 3]}') },
    ]) {
      const res = await worker.http("/closed/upload", init(c));
      const text = await res.text();
      assert.equal(res.status, 200, text);
      assert.equal(JSON.parse(text).error, null, text);
    }
  });

  test("open: an encoding the worker cannot decode is forwarded and reported unscanned", async () => {
    const c = { contentType: form("real"), headers: { "content-encoding": "zstd" }, body: plainForm("real", coffee) };
    const res = await worker.http("/open/upload", init(c));
    assert.equal(res.status, 200, await res.text());
    // (The closed route's refusal of the same kind is another record.)
    const passed = (r) => r.value.reason === "undecodable-encoding" && r.value.actions.passed >= 1;
    const records = await worker.waitForReports((rs) => rs.some(passed), { prefix: "unscanned/v1/" });
    const { value } = records.find(passed);
    assert.deepEqual(value.directions, ["upload"]);
    assert.equal(value.route, "*/open/*");
  });
});

describe("bodies on methods that usually have none", () => {
  test("GET carrying a form: refused, or the origin never gets the image", async () => {
    const { request } = await import("node:http");
    const body = plainForm();
    const send = (url) =>
      new Promise((resolve, reject) => {
        const req = request(url, { method: "GET", headers: { "content-type": form("real"), "content-length": body.length } }, (res) => {
          const chunks = [];
          res.on("data", (c) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
        });
        req.on("error", reject);
        req.end(body);
      });
    const direct = await send(new URL("/direct", werkzeug.url));
    assert.ok(JSON.parse(direct.text).images.includes(LISTED), "sent directly, Werkzeug extracts the image from a GET body");
    const { status, text } = await send(new URL("/closed/upload", worker.url));
    if (status === 200) {
      assert.ok(!JSON.parse(text).images.includes(LISTED), `the origin extracted the listed image through the worker: ${text}`);
    } else {
      assert.equal(status, 451, text);
    }
  });
});
