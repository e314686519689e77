// The per-client limit on 451 answers (worker/src/block_limit.rs), with
// the Workers rate-limiting binding as wrangler.toml describes it: a client
// past its limit gets 429 for everything on scanning routes, matching or
// not, so the 429 says nothing about the image; other clients, and requests
// without a client address, are not affected.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST } from "./support/index.mjs";
import { assertBlocked, assertPassesUntouched } from "./support/compare.mjs";

const LIMIT = 3;
const ATTACKER = "203.0.113.7";
let origin, worker;

before(async () => {
  origin = await startOrigin();
  worker = await startWorker({
    origin: origin.url,
    policy: { routes: [{ pattern: "*/*", action: "block", lists: ["demo"] }] },
    miniflare: { ratelimits: { BLOCK_LIMIT: { simple: { limit: LIMIT, period: 60 } } } },
  });
  await worker.loadIndex(await buildIndex("block-limit", { demo: DEMO_LIST }));
});

after(async () => {
  await worker?.dispose();
  await origin?.close();
});

const from = (ip) => ({ headers: { "cf-connecting-ip": ip } });

describe("limit on 451 answers per client", () => {
  test("up to the limit a client gets 451s", async () => {
    for (let i = 0; i < LIMIT; i++) {
      await assertBlocked(await worker.fetch("/photos/chelsea.jpg", from(ATTACKER)), `451 number ${i + 1}`);
    }
    // A clean image is not counted.
    await assertPassesUntouched(worker, origin, "/photos/coffee.jpg", from(ATTACKER));
  });

  test("past it, 429 for everything on the route, matching or not", async () => {
    for (const p of ["/photos/chelsea.jpg", "/photos/coffee.jpg", "/photos/rocket.jpg"]) {
      const res = await worker.fetch(p, from(ATTACKER));
      const body = await res.text();
      assert.equal(res.status, 429, `${p}: ${body}`);
      assert.equal(res.headers.get("retry-after"), "60");
      assert.equal(res.headers.get("cache-control"), "no-store");
      assert.doesNotMatch(body, /legal|demo|chelsea/i, "nothing about the image or the list");
    }
  });

  test("other clients and requests without an address are not affected", async () => {
    await assertBlocked(await worker.fetch("/photos/chelsea.jpg", from("198.51.100.1")), "another client");
    await assertPassesUntouched(worker, origin, "/photos/coffee.jpg", from("198.51.100.1"));
    await assertBlocked(await worker.fetch("/photos/chelsea.jpg"), "no client address");
  });

  test("an IPv6 client is limited by its /64", async () => {
    for (let i = 0; i < LIMIT; i++) {
      await assertBlocked(await worker.fetch("/photos/chelsea.jpg", from(`2001:db8:5:6::${i + 1}`)), `451 number ${i + 1}`);
    }
    // One more 451 from another address in the same /64 is past the limit.
    for (const p of ["/photos/chelsea.jpg", "/photos/coffee.jpg"]) {
      const res = await worker.fetch(p, from("2001:db8:5:6:ffff::9"));
      await res.arrayBuffer();
      assert.equal(res.status, 429, `${p} from another address in the same /64`);
    }
    await assertPassesUntouched(worker, origin, "/photos/coffee.jpg", from("2001:db8:5:7::1"));
  });
});
