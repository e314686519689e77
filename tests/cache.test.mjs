// Remembered verdicts: keyed by the bytes' SHA-256, the route and the index
// generation, in the isolate and in the colo's Cache API (shared by every
// isolate; here, two Miniflare instances on the same persisted cache and KV).
// Observed through the DEBUG verdict header ("... (cached)") and the KV keys
// each request reads (a counting wrapper around the real local namespace).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { FIXTURES_DIR, REPO_ROOT, startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";
import { createFaults } from "./support/faults.mjs";
import { buildIndex, DEMO_LIST, E2E_DIR } from "./support/index.mjs";
import { assertBlocked, assertPassesUntouched } from "./support/compare.mjs";

const VARIANTS = path.join(E2E_DIR, "variants");
const route = { pattern: "*/*", action: "block", lists: ["demo"] };
let origin, demoIndex;
const workers = [];

before(async () => {
  await promisify(execFile)("python3", [path.join(REPO_ROOT, "tests/support/images.py"), "variants", VARIANTS]);
  origin = await startOrigin({ mounts: { "/variants": VARIANTS } });
  demoIndex = await buildIndex("cache", { demo: DEMO_LIST });
});

after(async () => {
  await Promise.all(workers.map((w) => w.dispose()));
  await origin?.close();
});

/** A worker (an isolate) with key counting; `persist` shares KV and cache between instances. */
async function worker({ policyExtra = {}, persist = null, originUrl = origin.url } = {}) {
  const faults = createFaults();
  const miniflare = persist ? { kvPersist: path.join(persist, "kv"), cachePersist: path.join(persist, "cache") } : {};
  const w = await startWorker({
    origin: originUrl,
    policy: { routes: [route], ...policyExtra },
    bindings: { DEBUG: "1" },
    faults,
    miniflare,
  });
  w.faults = faults;
  workers.push(w);
  return w;
}

const verdict = (res) => res.headers.get("x-hashgate-verdict");

describe("verdict memory", () => {
  test("the same bytes under another URL are remembered in the isolate", async () => {
    const w = await worker();
    await w.loadIndex(demoIndex);
    await assertBlocked(await w.fetch("/photos/chelsea.jpg"), "first");
    const copy = await w.fetch("/variants/chelsea-copy.jpg");
    assert.equal(verdict(copy), "match (cached)");
    await assertBlocked(copy, "same bytes, other URL");
    const clean = await w.fetch("/photos/coffee.jpg");
    assert.equal(verdict(clean), "clean");
    await clean.arrayBuffer();
    const again = await w.fetch("/photos/coffee.jpg");
    assert.equal(verdict(again), "clean (cached)");
    await again.arrayBuffer();
  });

  test("a second isolate reads at most one KV key for a repeat image, and agrees", async () => {
    const persist = await mkdtemp(path.join(tmpdir(), "hashgate-colo-"));
    const first = await worker({ persist });
    await first.loadIndex(demoIndex);
    first.faults.resetCounts();
    await assertBlocked(await first.fetch("/photos/chelsea.jpg"), "first isolate");
    const coffee = await first.fetch("/photos/coffee.jpg");
    assert.equal(verdict(coffee), "clean");
    await coffee.arrayBuffer();
    // The Cache API write happens after the response (waitUntil).
    await new Promise((r) => setTimeout(r, 300));

    const second = await worker({ persist });
    second.faults.resetCounts();
    const blocked = await second.fetch("/photos/chelsea.jpg");
    assert.equal(verdict(blocked), "match (cached)");
    await assertBlocked(blocked, "second isolate");
    // The manifest, and for a match hg2/overrides (each once per refresh interval).
    assert.ok(second.faults.keys.get <= 2, `keys read: ${second.faults.keys.get}`);
    const passed = await second.fetch("/photos/coffee.jpg");
    assert.equal(verdict(passed), "clean (cached)");
    await passed.arrayBuffer();
    // The manifest was read once for both, the overrides once for the match: nothing else.
    assert.equal(second.faults.keys.get, 2);
  });

  test("a new index generation is never answered with an older generation's verdict", async () => {
    const w = await worker({ policyExtra: { index: { refresh_seconds: 1 } } });
    await w.loadIndex(demoIndex);
    await assertBlocked(await w.fetch("/photos/chelsea.jpg"), "listed");
    const coffee = await w.fetch("/photos/coffee.jpg");
    assert.equal(verdict(coffee), "clean");
    await coffee.arrayBuffer();
    const { pdq } = JSON.parse(
      (await promisify(execFile)("cargo", ["run", "--release", "--quiet", "-p", "hashgate-cli", "--", "hash", path.join(FIXTURES_DIR, "photos/coffee.jpg")], { cwd: REPO_ROOT })).stdout,
    );
    const demoLines = (await readFile(DEMO_LIST, "utf8")).split("\n").filter((l) => l && !l.startsWith("#"));
    await w.loadIndex(await buildIndex("cache-next", { demo: [...demoLines, `pdq,${pdq},coffee-now-listed`] }));
    await new Promise((r) => setTimeout(r, 1_200));
    await assertBlocked(await w.fetch("/photos/coffee.jpg"), "listed in the new generation");
  });

  test("ttl_seconds 0 remembers nothing", async () => {
    const w = await worker({ policyExtra: { verdict_cache: { ttl_seconds: 0 } } });
    await w.loadIndex(demoIndex);
    for (let i = 0; i < 2; i++) {
      const res = await w.fetch("/photos/chelsea.jpg");
      assert.equal(verdict(res), "match");
      await res.arrayBuffer();
    }
  });
});

describe("stale trust", () => {
  test("different bytes under the same URL and ETag are checked again", async () => {
    // An origin that keeps its ETag while its bytes change.
    let file = "photos/coffee.jpg";
    const liar = createServer(async (req, res) => {
      const bytes = await readFile(path.join(FIXTURES_DIR, file));
      res.writeHead(200, { "content-type": "image/jpeg", etag: '"v1"', "content-length": bytes.length });
      res.end(bytes);
    });
    await new Promise((r) => liar.listen(0, "127.0.0.1", r));
    try {
      const w = await worker({ originUrl: `http://127.0.0.1:${liar.address().port}` });
      await w.loadIndex(demoIndex);
      const first = await w.fetch("/img/x.jpg");
      assert.equal(first.status, 200);
      assert.equal(verdict(first), "clean");
      await first.arrayBuffer();
      file = "photos/chelsea.jpg";
      await assertBlocked(await w.fetch("/img/x.jpg"), "same URL and ETag, listed bytes");
    } finally {
      await new Promise((r) => liar.close(r));
    }
  });
});
