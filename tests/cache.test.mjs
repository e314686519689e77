// The verdict cache: a verdict is remembered per isolate by the image's
// SHA-256 and by URL + ETag, for the policy's TTL. Observed from outside by
// emptying the index after a first request: a remembered verdict still
// applies, a new image sees the empty index.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { REPO_ROOT, startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST, E2E_DIR } from "./support/index.mjs";
import { assertBlocked, assertPassesUntouched } from "./support/compare.mjs";

const VARIANTS = path.join(E2E_DIR, "variants");
const route = { pattern: "*/*", action: "block", lists: ["demo"] };
let origin, bulk;
const workers = [];

before(async () => {
  await promisify(execFile)("python3", [path.join(REPO_ROOT, "tests/support/images.py"), "variants", VARIANTS]);
  origin = await startOrigin({ mounts: { "/variants": VARIANTS } });
  bulk = await buildIndex("cache", { demo: DEMO_LIST });
});

after(async () => {
  await Promise.all(workers.map((w) => w.dispose()));
  await origin?.close();
});

async function worker(policyExtra = {}) {
  const w = await startWorker({ origin: origin.url, policy: { routes: [route], ...policyExtra } });
  workers.push(w);
  await w.loadIndex(bulk);
  return w;
}

async function emptyIndex(w) {
  const kv = await w.kv("HASH_INDEX");
  for (const { name } of (await kv.list()).keys) await kv.delete(name);
  assert.equal((await kv.list()).keys.length, 0);
}

describe("verdict cache", () => {
  test("remembered verdicts outlive the index entries; new images do not", async () => {
    const w = await worker();
    origin.reset();
    await assertBlocked(await w.fetch("/photos/chelsea.jpg"), "first");
    await assertPassesUntouched(w, origin, "/photos/coffee.jpg");
    await emptyIndex(w);

    // Control: a listed image never seen before now passes (the index is empty)...
    await assertPassesUntouched(w, origin, "/photos/rocket.jpg");
    // ...while the remembered one is still refused: by URL + ETag,
    await assertBlocked(await w.fetch("/photos/chelsea.jpg"), "same URL, same ETag");
    // and by SHA-256 when the same bytes come from another URL.
    await assertBlocked(await w.fetch("/variants/chelsea-copy.jpg"), "same bytes, other URL");
    // A clean verdict is remembered too; the origin is still asked each time.
    await assertPassesUntouched(w, origin, "/photos/coffee.jpg");
    assert.equal(origin.count("/photos/chelsea.jpg"), 2);
  });

  test("entries expire after ttl_seconds", async () => {
    // Long enough that emptying the index (hundreds of KV deletes) fits in
    // it on a loaded machine.
    const TTL_S = 5;
    const w = await worker({ verdict_cache: { ttl_seconds: TTL_S } });
    const cachedAt = Date.now();
    await assertBlocked(await w.fetch("/photos/chelsea.jpg"), "first");
    await emptyIndex(w);
    assert.ok(Date.now() - cachedAt < TTL_S * 1000, "the index emptied within the TTL");
    await assertBlocked(await w.fetch("/photos/chelsea.jpg"), "within the TTL");
    await new Promise((r) => setTimeout(r, cachedAt + TTL_S * 1000 + 500 - Date.now()));
    await assertPassesUntouched(w, origin, "/photos/chelsea.jpg");
  });

  test("ttl_seconds 0 turns the cache off", async () => {
    const w = await worker({ verdict_cache: { ttl_seconds: 0 } });
    await assertBlocked(await w.fetch("/photos/chelsea.jpg"), "first");
    await emptyIndex(w);
    await assertPassesUntouched(w, origin, "/photos/chelsea.jpg");
  });
});
