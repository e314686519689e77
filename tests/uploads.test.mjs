// Uploads: on routes that scan uploads, an image in a PUT/POST body (raw or
// multipart/form-data) is checked before the origin sees it; a listed one
// is refused with 451, anything else reaches the origin byte for byte.
// Requests go over real HTTP (so their Content-Length is what a browser's
// would be), hence route patterns on any host.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { FIXTURES_DIR, REPO_ROOT, sha256, startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST, E2E_DIR } from "./support/index.mjs";
import { assertBlocked } from "./support/compare.mjs";

const VARIANTS = path.join(E2E_DIR, "variants");
const fixture = (file) => readFile(path.join(FIXTURES_DIR, file));
const chelsea = await fixture("photos/chelsea.jpg");
const coffee = await fixture("photos/coffee.jpg");
const astronaut = await fixture("photos/astronaut.jpg");
const rocket = await fixture("photos/rocket.jpg");

/** A multipart/form-data body, built by hand so the exact bytes are known. */
function form(parts, boundary = "----hashgate-e2e-7d1f") {
  const chunks = [];
  for (const { name, filename, type, data } of parts) {
    let disposition = `form-data; name="${name}"`;
    if (filename) disposition += `; filename="${filename}"`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n`));
    if (type) chunks.push(Buffer.from(`Content-Type: ${type}\r\n`));
    chunks.push(Buffer.from("\r\n"), Buffer.from(data), Buffer.from("\r\n"));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

let origin, worker;

before(async () => {
  await promisify(execFile)("python3", [path.join(REPO_ROOT, "tests/support/images.py"), "variants", VARIANTS]);
  origin = await startOrigin();
  const both = ["responses", "uploads"];
  worker = await startWorker({
    http: true,
    origin: origin.url,
    policy: {
      routes: [
        { pattern: "*/*", action: "block", lists: ["demo"], scan: both, fail: "open" },
        { pattern: "*/closed/*", action: "block", lists: ["demo"], scan: both, fail: "closed" },
        { pattern: "*/flag/*", action: "flag", lists: ["demo"], scan: ["uploads"] },
        { pattern: "*/noscan/*", action: "block", lists: ["demo"], scan: ["responses"] },
      ],
    },
  });
  await worker.loadIndex(await buildIndex("uploads", { demo: DEMO_LIST }));
});

after(async () => {
  await worker?.dispose();
  await origin?.close();
});

/** Sends an upload; returns the response and what the origin received. */
async function upload(urlPath, body, contentType, method = "POST") {
  origin.reset();
  const headers = contentType ? { "content-type": contentType } : {};
  const res = await worker.http(urlPath, { method, body, headers });
  return { res, seen: origin.uploads };
}

async function assertForwarded({ res, seen }, body, contentType) {
  const reply = await res.text();
  assert.equal(res.status, 201, reply);
  assert.equal(seen.length, 1, "the origin received the upload once");
  assert.equal(seen[0].bodySha256, sha256(body), "the origin received the exact bytes");
  assert.equal(seen[0].headers["content-length"], String(body.length));
  if (contentType) assert.equal(seen[0].headers["content-type"], contentType);
  assert.equal(JSON.parse(reply).sha256, sha256(body));
}

async function assertRefused({ res, seen }, what) {
  const text = await assertBlocked(res, what);
  assert.match(text, /upload was refused/);
  assert.equal(seen.length, 0, "the origin never saw the upload");
}

describe("listed images are refused before the origin sees them", () => {
  test("raw PUT with Content-Type image/jpeg", async () => {
    await assertRefused(await upload("/u/a.jpg", chelsea, "image/jpeg", "PUT"), "raw PUT");
  });

  test("raw POST with a generic or missing Content-Type (sniffed)", async () => {
    await assertRefused(await upload("/u/a", chelsea, "application/octet-stream"), "octet-stream");
    await assertRefused(await upload("/u/b", chelsea, "text/plain"), "text/plain");
  });

  test("multipart/form-data with the listed file among other fields", async () => {
    const { body, contentType } = form([
      { name: "title", data: "holiday" },
      { name: "photo", filename: "cat.jpg", type: "image/jpeg", data: chelsea },
    ]);
    await assertRefused(await upload("/u/form", body, contentType), "multipart");
  });

  test("multipart with a rotated copy, declared as octet-stream", async () => {
    const rotated = await readFile(path.join(VARIANTS, "chelsea-rot90.jpg"));
    const { body, contentType } = form([
      { name: "a", filename: "ok.jpg", type: "image/jpeg", data: coffee },
      { name: "b", filename: "x.bin", type: "application/octet-stream", data: rotated },
    ]);
    await assertRefused(await upload("/u/form2", body, contentType), "multipart rot90");
  });

  test("an exact-digest entry uploaded raw", async () => {
    await assertRefused(await upload("/u/rocket.jpg", rocket, "image/jpeg", "PUT"), "rocket");
  });

  test("a route that does not scan uploads forwards them", async () => {
    await assertForwarded(await upload("/noscan/a.jpg", chelsea, "image/jpeg", "PUT"), chelsea, "image/jpeg");
  });
});

describe("everything else reaches the origin unchanged", () => {
  test("a clean raw image", async () => {
    await assertForwarded(await upload("/u/coffee.jpg", coffee, "image/jpeg", "PUT"), coffee, "image/jpeg");
  });

  test("a clean multipart form with two images and a field", async () => {
    const { body, contentType } = form([
      { name: "title", data: "two photos" },
      { name: "a", filename: "coffee.jpg", type: "image/jpeg", data: coffee },
      { name: "b", filename: "astronaut.jpg", type: "image/jpeg", data: astronaut },
    ]);
    await assertForwarded(await upload("/u/form3", body, contentType), body, contentType);
  });

  test("a JSON body", async () => {
    const body = Buffer.from(JSON.stringify({ hello: "world", n: [1, 2, 3] }));
    await assertForwarded(await upload("/api/items", body, "application/json"), body, "application/json");
  });

  test("flag route: the listed upload is forwarded and reported as an upload", async () => {
    const { body, contentType } = form([{ name: "photo", filename: "cat.jpg", type: "image/jpeg", data: chelsea }]);
    await assertForwarded(await upload("/flag/form", body, contentType), body, contentType);
    const records = await worker.waitForReports(
      (rs) => rs.some((r) => r.value.route === "*/flag/*"),
      { prefix: "report/v1/" },
    );
    const { value } = records.find((r) => r.value.route === "*/flag/*");
    assert.deepEqual(value.directions, ["upload"]);
    assert.equal(value.actions.flagged, 1);
    assert.equal(value.sha256, sha256(chelsea), "the file's digest, not the form's");
  });

  test("the route still scans responses", async () => {
    await assertBlocked(await worker.http("/photos/chelsea.jpg"), "GET on an upload route");
  });
});

describe("uploads that cannot be checked follow the fail mode", () => {
  const broken = () => {
    const { body, contentType } = form([{ name: "photo", filename: "cat.jpg", type: "image/jpeg", data: chelsea }]);
    // Cut the closing delimiter off: a truncated form.
    return { body: body.subarray(0, body.length - 30), contentType };
  };

  test("open: a truncated form is forwarded and reported unscanned", async () => {
    const { body, contentType } = broken();
    await assertForwarded(await upload("/u/broken", body, contentType), body, contentType);
    const records = await worker.waitForReports((rs) => rs.some((r) => r.value.reason === "bad-multipart"), {
      prefix: "unscanned/v1/",
    });
    const { value } = records.find((r) => r.value.reason === "bad-multipart");
    assert.deepEqual(value.directions, ["upload"]);
    assert.equal(value.actions.passed, 1);
  });

  test("closed: a truncated form is refused with 503 and never reaches the origin", async () => {
    const { body, contentType } = broken();
    const { res, seen } = await upload("/closed/broken", body, contentType);
    assert.equal(res.status, 503, await res.text());
    assert.equal(seen.length, 0);
  });

  test("closed: a multipart body without a boundary is refused", async () => {
    const { res, seen } = await upload("/closed/noboundary", chelsea, "multipart/form-data");
    assert.equal(res.status, 503, await res.text());
    assert.equal(seen.length, 0);
  });
});
