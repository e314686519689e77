// Fail modes: an image that cannot be checked (corrupt, a decompression
// bomb, over the route's cap, not decodable, or an unreadable index value)
// passes untouched and is reported "unscanned" on a `fail: open` route, and
// answers 503 on a `fail: closed` route. The isolate keeps answering.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { FIXTURES_DIR, sha256, startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST } from "./support/index.mjs";
import { assertBlocked, assertPassesUntouched } from "./support/compare.mjs";

const fixtureSha = async (file) => sha256(await readFile(path.join(FIXTURES_DIR, file)));
const CAP = 20_000; // photos/chelsea.jpg is 35 KB

let origin, worker;

before(async () => {
  origin = await startOrigin({
    mounts: { "/closed": FIXTURES_DIR, "/small": FIXTURES_DIR, "/small-closed": FIXTURES_DIR },
  });
  const route = (pattern, fail, extra = {}) => ({ pattern, action: "block", lists: ["demo"], fail, ...extra });
  worker = await startWorker({
    origin: origin.url,
    policy: {
      routes: [
        route("*/*", "open"),
        route("hashgate.test/closed/*", "closed"),
        route("hashgate.test/small/*", "open", { max_bytes: CAP }),
        route("hashgate.test/small-closed/*", "closed", { max_bytes: CAP }),
      ],
    },
  });
  await worker.loadIndex(await buildIndex("fail", { demo: DEMO_LIST }, { layout: "buckets" }));
});

after(async () => {
  await worker?.dispose();
  await origin?.close();
});

/** Waits for the unscanned record of `sha` (or any, if null) on `route`. */
async function unscanned(route, predicate) {
  const records = await worker.waitForReports((rs) => rs.some((r) => r.value.route === route && predicate(r.value)), {
    prefix: "unscanned/v1/",
  });
  return records.find((r) => r.value.route === route && predicate(r.value));
}

async function assertNotChecked(res) {
  const text = await res.text();
  assert.equal(res.status, 503, text);
  assert.equal(res.headers.get("cache-control"), "no-store");
  assert.match(text, /could not be checked/);
}

/** The isolate still works: a listed image is blocked, a clean one passes. */
async function assertStillServing() {
  await assertBlocked(await worker.fetch("/photos/chelsea.jpg"), "chelsea after a failure");
  await assertPassesUntouched(worker, origin, "/photos/coffee.jpg");
}

describe("fail open passes and reports, fail closed answers 503", () => {
  test("a truncated JPEG", async () => {
    await assertPassesUntouched(worker, origin, "/errors/truncated.jpg");
    const sha = await fixtureSha("errors/truncated.jpg");
    const { value, expiration } = await unscanned("*/*", (v) => v.sha256 === sha);
    assert.equal(value.type, "unscanned");
    assert.equal(value.reason, "undecodable");
    assert.equal(value.actions.passed, 1);
    assert.ok(Math.abs(expiration - (Date.now() / 1000 + 30 * 86400)) < 120, "kept 30 days");

    await assertNotChecked(await worker.fetch("/closed/errors/truncated.jpg"));
    const closed = await unscanned("hashgate.test/closed/*", (v) => v.sha256 === sha);
    assert.equal(closed.value.actions.refused, 1);
    await assertStillServing();
  });

  test("a decompression bomb (PNG claiming 50,000 x 50,000)", async () => {
    const started = Date.now();
    await assertPassesUntouched(worker, origin, "/errors/bomb-50000.png");
    await assertNotChecked(await worker.fetch("/closed/errors/bomb-50000.png"));
    assert.ok(Date.now() - started < 5000, "refused from the header, quickly");
    const sha = await fixtureSha("errors/bomb-50000.png");
    assert.equal((await unscanned("*/*", (v) => v.sha256 === sha)).value.reason, "over-limits");
    await assertStillServing();
  });

  test("a truncated PNG, an empty body and HTML declared as images", async () => {
    await assertPassesUntouched(worker, origin, "/errors/truncated.png");
    await assertPassesUntouched(worker, origin, "/__typed/image%2Fjpeg/errors/empty.bin");
    await assertPassesUntouched(worker, origin, "/__typed/image%2Fjpeg/errors/not-an-image.html");
    await assertNotChecked(await worker.fetch("/closed/__typed/image%2Fjpeg/errors/not-an-image.html"));
    await assertNotChecked(await worker.fetch("/closed/__typed/image%2Fpng/errors/empty.bin"));
    const sha = await fixtureSha("errors/not-an-image.html");
    assert.equal((await unscanned("*/*", (v) => v.sha256 === sha)).value.reason, "unsupported-format");
    await assertStillServing();
  });

  test("an image over the route's max_bytes (declared length)", async () => {
    // Open: the listed image passes, untouched, unread, and is reported.
    const { body } = await assertPassesUntouched(worker, origin, "/small/photos/chelsea.jpg");
    assert.equal(body.length, 35042);
    const { key, value } = await unscanned("hashgate.test/small/*", (v) => v.reason === "over-cap");
    // Not read at all, so no digest: the record is keyed by the URL.
    assert.equal(value.sha256, null);
    assert.match(key, /^unscanned\/v1\/url-[0-9a-f]{64}\/[0-9a-f]{16}$/);
    assert.deepEqual(value.urls, ["http://hashgate.test/small/photos/chelsea.jpg"]);
    await assertNotChecked(await worker.fetch("/small-closed/photos/chelsea.jpg"));
  });

  test("an image over max_bytes without Content-Length (detected while reading)", async () => {
    const { body, headers } = await assertPassesUntouched(worker, origin, "/small/__chunked/photos/chelsea.jpg");
    assert.equal(headers["content-length"], undefined, "the origin sent no length");
    assert.ok(body.equals(await readFile(path.join(FIXTURES_DIR, "photos/chelsea.jpg"))));
    await unscanned("hashgate.test/small/*", (v) => v.urls.includes("http://hashgate.test/small/__chunked/photos/chelsea.jpg"));
    await assertNotChecked(await worker.fetch("/small-closed/__chunked/photos/chelsea.jpg"));
    await assertStillServing();
  });

  test("a corrupt index value is a lookup failure, not a crash", async () => {
    // camera.jpg has not been requested in this file, so no verdict is cached.
    const cameraSha = await fixtureSha("photos/camera.jpg");
    const kv = await worker.kv("HASH_INDEX");
    await kv.put(`hg1/sha256/${cameraSha}`, "!!! not a record !!!");
    await assertNotChecked(await worker.fetch("/closed/photos/camera.jpg"));
    const { value } = await unscanned("hashgate.test/closed/*", (v) => v.sha256 === cameraSha);
    assert.equal(value.reason, "index-corrupt");
    await assertPassesUntouched(worker, origin, "/photos/camera.jpg");
    // Failures are not cached: once the value is fixed, the image passes.
    await kv.delete(`hg1/sha256/${cameraSha}`);
    await assertPassesUntouched(worker, origin, "/closed/photos/camera.jpg");
    await assertStillServing();
  });
});
