// Route matching sees the path as an origin does: an encoded or otherwise
// respelled path that the origin serves as /photos/x.jpg is on the
// /photos/* route, for responses and for uploads. The origin here (like
// most static servers and frameworks) percent-decodes the whole path and
// resolves dot segments before it looks up the file.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { FIXTURES_DIR, startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST } from "./support/index.mjs";
import { assertBlocked, assertPassesUntouched } from "./support/compare.mjs";

// Only /photos/* and /upload/* scan; everything else passes unscanned.
const POLICY = {
  routes: [
    { pattern: "hashgate.test/photos/*", action: "block", lists: ["demo"] },
    { pattern: "hashgate.test/upload/*", action: "block", lists: ["demo"], scan: ["uploads"] },
    // A hole for public files, which a %2F spelling must not reach into.
    { pattern: "hashgate.test/public/*", enabled: false, action: "block", lists: ["demo"] },
  ],
};
const CHELSEA = await readFile(path.join(FIXTURES_DIR, "photos/chelsea.jpg"));

let origin, worker;

before(async () => {
  origin = await startOrigin({ mounts: { "/public": FIXTURES_DIR, "/upload": FIXTURES_DIR } });
  worker = await startWorker({ origin: origin.url, policy: POLICY });
  await worker.loadIndex(await buildIndex("paths", { demo: DEMO_LIST }));
});

after(async () => {
  await worker?.dispose();
  await origin?.close();
});

describe("respelled paths of a listed image are on the route", () => {
  for (const spelling of [
    "/%70hotos/chelsea.jpg",
    "/%70%68%6F%74%6F%73/chelsea.jpg",
    "/ph%6ftos/chelsea.jpg",
    "/photos%2fchelsea.jpg",
    "/photos%2Fchelsea.jpg",
    "/photos//chelsea.jpg",
    "/x/../photos/chelsea.jpg",
    "/x/%2e%2e/photos/chelsea.jpg",
    "/x/%2E./photos/chelsea.jpg",
    "/x/..%2fphotos/chelsea.jpg",
    "/public%2f..%2fphotos/chelsea.jpg",
    "/photos/%63helsea.jpg",
  ]) {
    test(`GET ${spelling}`, async () => {
      const direct = await fetch(`${origin.url}${spelling}`);
      assert.equal(direct.status, 200, `the origin serves ${spelling}`);
      assert.ok(Buffer.from(await direct.arrayBuffer()).equals(CHELSEA), `the origin serves chelsea.jpg for ${spelling}`);
      await assertBlocked(await worker.fetch(spelling), spelling);
    });
  }

  test("the host in another case, with a trailing dot and a port", async () => {
    for (const url of ["http://HASHGATE.test/photos/chelsea.jpg", "http://hashgate.test./photos/chelsea.jpg", "http://hashgate.test:8443/%70hotos/chelsea.jpg"]) {
      await assertBlocked(await worker.fetch(url), url);
    }
  });
});

describe("uploads under respelled paths are checked", () => {
  for (const spelling of ["/%75pload/x.jpg", "/upload%2fx.jpg", "/%2fupload/x.jpg", "/a/..%2Fupload/x.jpg"]) {
    test(`PUT ${spelling}`, async () => {
      origin.reset();
      const res = await worker.fetch(spelling, { method: "PUT", headers: { "content-type": "image/jpeg" }, body: CHELSEA });
      const text = await res.text();
      assert.equal(res.status, 451, text);
      assert.equal(origin.uploads.length, 0, "the origin never saw the upload");
    });
  }
});

describe("plain spellings are routed as before", () => {
  test("a path off every route passes untouched", async () => {
    await assertPassesUntouched(worker, origin, "/__untyped/photos/chelsea.jpg");
  });

  test("the disabled hole still passes what it covers", async () => {
    await assertPassesUntouched(worker, origin, "/public/photos/chelsea.jpg");
  });
});
