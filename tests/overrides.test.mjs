// hg2/overrides in the fetch path (hasher/src/overrides.rs): an image
// cleared on a list passes on that list only, a list entry turned off
// matches nothing, a broken value clears nothing, and a stalled KV never
// holds a verdict.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { FIXTURES_DIR, sha256, startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";
import { createFaults } from "./support/faults.mjs";
import { buildIndex, DEMO_LIST } from "./support/index.mjs";
import { assertBlocked } from "./support/compare.mjs";

const REFRESH_S = 1;
const chelsea = await readFile(path.join(FIXTURES_DIR, "photos/chelsea.jpg"));
const CHELSEA_SHA = sha256(chelsea);
const ROCKET_SHA = "96677f79beb3872970f2d3d907e5063b9e42aa5b1fba85fa2d55e7f2ad681ff6";

let origin, worker, faults;

before(async () => {
  origin = await startOrigin({ mounts: { "/other": FIXTURES_DIR } });
  faults = createFaults();
  worker = await startWorker({
    origin: origin.url,
    faults,
    policy: {
      routes: [
        { pattern: "*/*", action: "block", lists: ["demo"], kv_timeout_ms: 300 },
        { pattern: "hashgate.test/other/*", action: "block", lists: ["other"], kv_timeout_ms: 300 },
      ],
      index: { refresh_seconds: REFRESH_S },
    },
  });
  await worker.loadIndex(await buildIndex("overrides", { demo: DEMO_LIST, other: DEMO_LIST }));
});

after(async () => {
  await worker?.dispose();
  await origin?.close();
});

const put = async (value) =>
  (await worker.kv("HASH_INDEX")).put("hg2/overrides", typeof value === "string" ? value : JSON.stringify(value));
const settle = () => new Promise((r) => setTimeout(r, REFRESH_S * 1000 + 200));
const status = async (p) => {
  const res = await worker.fetch(p);
  await res.arrayBuffer();
  return res.status;
};
const at = "2026-01-01T00:00:00Z";

describe("overrides", () => {
  test("an image cleared on a list passes there, and only there", async () => {
    await assertBlocked(await worker.fetch("/photos/chelsea.jpg"), "before");
    await put({ v: 1, updated_unix: 1, allowed: [{ list: "demo", sha256: CHELSEA_SHA, pdq: null, at, by: "t", reason: "fp" }] });
    await settle();
    assert.equal(await status("/photos/chelsea.jpg"), 200, "cleared on demo (a remembered verdict too)");
    assert.equal(await status("/other/photos/chelsea.jpg"), 451, "still a match on the other list");
    assert.equal(await status("/photos/rocket.jpg"), 451, "another image of the same list");
  });

  test("a list entry turned off matches nothing", async () => {
    await put({
      v: 1,
      updated_unix: 2,
      entries: [{ list: "demo", type: "sha256", hash: ROCKET_SHA, state: "suspended", at, by: "flood guard", reason: "r" }],
    });
    await settle();
    assert.equal(await status("/photos/rocket.jpg"), 200);
    assert.equal(await status("/photos/chelsea.jpg"), 451, "the allowed entry is gone with the old value");
    assert.equal(await status("/other/photos/rocket.jpg"), 451);
  });

  test("a broken value clears nothing new and keeps the last good one", async () => {
    await put({ v: 1, updated_unix: 3, allowed: [{ list: "*", sha256: CHELSEA_SHA, pdq: null, at, by: "t", reason: "x" }] });
    await settle();
    assert.equal(await status("/photos/chelsea.jpg"), 200);
    await put('{"v":1,"updated_unix":4,"allowed":[{"list":"*","sha256":"not hex"');
    await settle();
    assert.equal(await status("/photos/chelsea.jpg"), 200, "the last good value stays");
    assert.equal(await status("/photos/rocket.jpg"), 451, "and nothing else is cleared");
  });

  test("a stalled KV does not hold a verdict", async () => {
    await put({ v: 1, updated_unix: 5 });
    await settle();
    assert.equal(await status("/photos/chelsea.jpg"), 451);
    await settle();
    faults.kv = "hang";
    try {
      const started = Date.now();
      assert.equal(await status("/photos/chelsea.jpg"), 451, "the known generation and overrides are kept");
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    } finally {
      faults.heal();
    }
  });
});
