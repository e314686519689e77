// Hidden pixels and frames: a listed picture that a viewer sees, but that
// the pixels the reference hashes (stored RGB, first frame) do not show,
// or that comes in a container the scanner used to pass unread. Each
// answers 451 now, named by the view that matched; an image that cannot
// be decoded (AVIF) follows the route's `undecodable` option.
//
// The images are `python3 tests/support/images.py hidden` (Pillow), made
// from fixtures/photos/chelsea.jpg, which the demo list holds by PDQ.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { FIXTURES_DIR, REPO_ROOT, sha256, startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST, E2E_DIR } from "./support/index.mjs";
import { assertBlocked, assertPassesUntouched } from "./support/compare.mjs";

const HIDDEN = path.join(E2E_DIR, "hidden");

const route = (pattern, extra = {}) => ({ pattern, action: "block", lists: ["demo"], fail: "open", ...extra });
const POLICY = {
  routes: [
    route("*/*", { scan: ["responses", "uploads"] }),
    route("hashgate.test/closed/*", { fail: "closed" }),
    // Closed for failures, but images that cannot be decoded pass (and are reported).
    route("hashgate.test/lenient/*", { fail: "closed", undecodable: "pass" }),
  ],
};

let origin, worker;

before(async () => {
  await promisify(execFile)("python3", [path.join(REPO_ROOT, "tests/support/images.py"), "hidden", HIDDEN]);
  origin = await startOrigin({ mounts: { "/hidden": HIDDEN, "/closed/hidden": HIDDEN, "/lenient/hidden": HIDDEN, "/lenient/fixtures": FIXTURES_DIR } });
  worker = await startWorker({ origin: origin.url, policy: POLICY });
  await worker.loadIndex(await buildIndex("hidden", { demo: DEMO_LIST }));
});

after(async () => {
  await worker?.dispose();
  await origin?.close();
});

/** The match report of `url` (path under the worker's host). */
async function reportFor(urlPath) {
  const url = `http://hashgate.test${urlPath}`;
  const records = await worker.waitForReports((rs) => rs.some((r) => r.value.urls.includes(url)), { prefix: "report/v1/" });
  return records.find((r) => r.value.urls.includes(url)).value;
}

/** The unscanned record of the file `name` under `route`. */
async function unscannedFor(routePattern, name) {
  const sha = sha256(await readFile(path.join(HIDDEN, name)));
  const records = await worker.waitForReports(
    (rs) => rs.some((r) => r.value.route === routePattern && r.value.sha256 === sha),
    { prefix: "unscanned/v1/" },
  );
  return records.find((r) => r.value.route === routePattern && r.value.sha256 === sha).value;
}

describe("what a viewer sees is hashed", () => {
  for (const [file, matchedBy] of [
    ["alpha-ink.png", /^over-white$/],
    ["alpha-dark.png", /^over-black$/],
    ["alpha-holes.png", /^over-(white|black)$/],
    ["frame2.gif", /^frame-2$/],
    ["partial.gif", /^frame-2$/],
    ["apng.png", /^frame-2$/],
    ["frame2.webp", /^frame-2$/],
  ]) {
    test(`${file}: 451, matched by ${matchedBy.source}`, async () => {
      await assertBlocked(await worker.fetch(`/hidden/${file}`), file);
      const { matches } = await reportFor(`/hidden/${file}`);
      assert.equal(matches[0].type, "pdq");
      assert.match(matches[0].variant, matchedBy);
      assert.equal(matches[0].id, "demo-chelsea");
    });
  }

  test("a frame bomb (10,000 frames) is read to the bound and answered", async () => {
    const started = Date.now();
    const res = await worker.fetch("/hidden/many-frames.gif");
    await res.arrayBuffer();
    assert.equal(res.status, 200);
    assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
  });
});

describe("formats the worker used to pass unread", () => {
  for (const file of ["chelsea.ico", "chelsea-bmp.ico", "chelsea.tiff"]) {
    test(`${file} served as application/octet-stream: 451`, async () => {
      const res = await worker.fetch(`/hidden/${file}`);
      await assertBlocked(res, file);
      const direct = await fetch(`${origin.url}/hidden/${file}`);
      assert.equal(direct.headers.get("content-type"), "application/octet-stream");
    });
  }

  test("an SVG wrapping the picture as a data: URI: 451 as image/svg+xml, octet-stream or text/plain", async () => {
    await assertBlocked(await worker.fetch("/hidden/chelsea.svg"), "svg");
    await assertBlocked(await worker.fetch("/hidden/__typed/application%2Foctet-stream/chelsea.svg"), "svg as octet-stream");
    await assertBlocked(await worker.fetch("/hidden/__typed/text%2Fplain/chelsea-jpeg.svg"), "escaped svg as text/plain");
    const { matches } = await reportFor("/hidden/chelsea.svg");
    assert.equal(matches[0].id, "demo-chelsea");
  });

  test("an SVG without raster images passes untouched, unreported", async () => {
    await assertPassesUntouched(worker, origin, "/hidden/vector.svg");
    await assertPassesUntouched(worker, origin, "/closed/hidden/vector.svg");
  });

  test("an upload of a hidden-alpha PNG is refused before the origin sees it", async () => {
    origin.reset();
    const body = await readFile(path.join(HIDDEN, "alpha-ink.png"));
    const res = await worker.fetch("/upload/avatar", { method: "PUT", body, headers: { "content-type": "application/octet-stream" } });
    await assertBlocked(res, "upload");
    assert.equal(origin.uploads.length, 0);
  });
});

describe("AVIF: recognised, not decodable; the route decides", () => {
  test("undecodable \"fail\" on a fail-open route: passes, reported unscanned", async () => {
    await assertPassesUntouched(worker, origin, "/hidden/chelsea.avif");
    const record = await unscannedFor("*/*", "chelsea.avif");
    assert.equal(record.reason, "undecodable-format");
    assert.equal(record.actions.passed, 1);
  });

  test("undecodable \"fail\" on a fail-closed route: 503", async () => {
    const res = await worker.fetch("/closed/hidden/chelsea.avif");
    assert.equal(res.status, 503, await res.text());
    const record = await unscannedFor("hashgate.test/closed/*", "chelsea.avif");
    assert.equal(record.actions.refused, 1);
  });

  test("undecodable \"pass\" on a fail-closed route: passes, reported unscanned", async () => {
    await assertPassesUntouched(worker, origin, "/lenient/hidden/chelsea.avif");
    const record = await unscannedFor("hashgate.test/lenient/*", "chelsea.avif");
    assert.equal(record.reason, "undecodable-format");
    assert.equal(record.actions.passed, 1);
    // Other failures on that route still fail closed.
    const res = await worker.fetch("/lenient/fixtures/__typed/image%2Fjpeg/errors/truncated.jpg");
    assert.equal(res.status, 503);
  });
});
