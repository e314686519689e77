// The isolate's memory budget: bodies read for scanning are counted against
// `memory_budget.bytes` (default 32 MiB); beyond it a read waits (up to
// `memory_budget.wait_ms`), then takes the route's fail mode. Twelve
// concurrent 15.5 MiB images would otherwise hold 186 MiB of wasm memory at
// once, above the 128 MB an isolate has, and wasm memory never shrinks.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { FIXTURES_DIR, startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST, E2E_DIR } from "./support/index.mjs";

const BIG = path.join(E2E_DIR, "memory-big");
const SIZE = 15.5 * 1048576;
const IDENTITY = { headers: { "accept-encoding": "identity" } };
const mib = (b) => (b / 1048576).toFixed(1);
let origin, bulk, image;
const workers = [];

before(async () => {
  // A real JPEG (coffee.jpg) padded to 15.5 MiB: decoders stop at its end
  // marker, so it hashes as coffee.jpg, and the whole body is read.
  const jpeg = await readFile(path.join(FIXTURES_DIR, "photos/coffee.jpg"));
  image = Buffer.concat([jpeg, Buffer.alloc(SIZE - jpeg.length)]);
  await mkdir(BIG, { recursive: true });
  await writeFile(path.join(BIG, "big.jpg"), image);
  origin = await startOrigin({ mounts: { "/big": BIG } });
  bulk = await buildIndex("memory", { demo: DEMO_LIST });
});

after(async () => {
  await Promise.all(workers.map((w) => w.dispose()));
  await origin?.close();
});

async function worker(policy) {
  const w = await startWorker({ origin: origin.url, policy, bindings: { DEBUG: "1" } });
  workers.push(w);
  await w.loadIndex(bulk);
  return w;
}

/** Peak wasm memory so far (linear memory only grows). */
async function memory(w) {
  const res = await w.fetch("/web/hello.txt", IDENTITY);
  await res.arrayBuffer();
  const bytes = Number(res.headers.get("x-hashgate-wasm-memory"));
  assert.ok(bytes > 0, "the DEBUG memory header is present");
  return bytes;
}

/** `n` concurrent requests for the 15.5 MiB image (distinct URLs). */
async function concurrent(w, n, prefix = "") {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const res = await w.fetch(`${prefix}/big/big.jpg?n=${i}`, IDENTITY);
      const body = Buffer.from(await res.arrayBuffer());
      return { status: res.status, verdict: res.headers.get("x-hashgate-verdict"), body };
    }),
  );
}

describe("the isolate's memory budget", () => {
  test("12 concurrent 15.5 MiB images: every one checked, wasm memory within the default budget", async () => {
    const w = await worker({
      routes: [{ pattern: "*/*", action: "block", lists: ["demo"], fail: "closed" }],
      verdict_cache: { ttl_seconds: 0 },
      memory_budget: { wait_ms: 30000 },
    });
    const idle = await memory(w);
    const t0 = performance.now();
    const results = await concurrent(w, 12);
    const peak = await memory(w);
    console.log(`# wasm memory: idle ${mib(idle)} MiB, after 12 x 15.5 MiB at once ${mib(peak)} MiB (${(performance.now() - t0).toFixed(0)} ms)`);
    for (const r of results) {
      assert.equal(r.status, 200);
      assert.equal(r.verdict, "clean");
      assert.ok(r.body.equals(image));
    }
    // The default budget (32 MiB) holds two such bodies at a time; the
    // rest is the idle isolate and one decode at a time.
    const BOUND = (32 << 20) + (16 << 20);
    assert.ok(peak <= BOUND, `peak ${mib(peak)} MiB is over ${mib(BOUND)} MiB`);
  });

  test("beyond the budget with no wait: the fail mode (503 closed), and the isolate keeps serving", async () => {
    const w = await worker({
      routes: [{ pattern: "*/*", action: "block", lists: ["demo"], fail: "closed" }],
      verdict_cache: { ttl_seconds: 0 },
      memory_budget: { bytes: 16 << 20, wait_ms: 0 },
    });
    const results = await concurrent(w, 4);
    const statuses = results.map((r) => r.status).sort();
    assert.ok(statuses.includes(503), `some are refused: ${statuses}`);
    assert.ok(statuses.includes(200), `some are checked: ${statuses}`);
    for (const r of results.filter((r) => r.status === 200)) assert.ok(r.body.equals(image));
    // Room again once those are done.
    const [again] = await concurrent(w, 1);
    assert.equal(again.status, 200);
    assert.ok(await memory(w) <= (16 << 20) + (16 << 20));
  });
});
