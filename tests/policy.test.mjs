// The policy: validated before anything is served (an invalid one answers
// 500 with the reason, and the origin is not contacted), read from the
// POLICY variable, a JSON object var, or a KV key; no matching route means
// the request passes untouched.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startOrigin } from "./support/origin.mjs";
import { startWorker, WEBHOOK_SECRET } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST } from "./support/index.mjs";
import { assertBlocked, assertPassesUntouched } from "./support/compare.mjs";

const BLOCK = { routes: [{ pattern: "*/*", action: "block", lists: ["demo"] }] };
let origin, bulk;
const workers = [];

before(async () => {
  origin = await startOrigin();
  bulk = await buildIndex("policy", { demo: DEMO_LIST });
});

after(async () => {
  await Promise.all(workers.map((w) => w.dispose()));
  await origin?.close();
});

async function worker(opts) {
  const w = await startWorker({ origin: origin.url, ...opts });
  workers.push(w);
  return w;
}

async function assertMisconfigured(w, pattern) {
  origin.reset();
  for (const path of ["/photos/chelsea.jpg", "/web/hello.txt"]) {
    const res = await w.fetch(path);
    const text = await res.text();
    assert.equal(res.status, 500, text);
    assert.match(text, /^500 hashgate is misconfigured: /);
    assert.match(text, pattern);
  }
  assert.equal(origin.count(), 0, "nothing is served with an invalid policy");
}

describe("invalid configuration answers 500 with the reason", () => {
  const route = (extra) => JSON.stringify({ routes: [{ pattern: "*/*", action: "block", lists: ["demo"], ...extra }] });

  test("an unknown field", async () => {
    await assertMisconfigured(await worker({ policy: route({ treshold: 3 }) }), /unknown field `treshold`/);
  });

  test("a threshold out of range", async () => {
    await assertMisconfigured(await worker({ policy: route({ pdq_threshold: 40 }) }), /routes\[0\].*pdq_threshold 40 is out of range 0..=31/);
  });

  test("a bad pattern", async () => {
    const policy = JSON.stringify({ routes: [{ pattern: "example.com", action: "flag", lists: ["*"] }] });
    await assertMisconfigured(await worker({ policy }), /has no '\/' between host and path/);
  });

  test("a plain-http webhook to a public host", async () => {
    await assertMisconfigured(
      await worker({ policy: route({ notify: { webhook: "http://hooks.example.com/x" } }) }),
      /notify.webhook: .*must use https/,
    );
  });

  test("an empty POLICY and a bad ORIGIN", async () => {
    await assertMisconfigured(await worker({ policy: "" }), /POLICY is empty/);
    const w = await worker({ policy: BLOCK, bindings: { ORIGIN: "127.0.0.1:8080/x" } });
    await assertMisconfigured(w, /ORIGIN "127.0.0.1:8080\/x" must be an http/);
  });

  test("a kv: policy whose key is missing", async () => {
    await assertMisconfigured(await worker({ policy: "kv:config/policy" }), /POLICY is kv:config\/policy: no such key in HASH_INDEX/);
  });
});

describe("where the policy comes from", () => {
  test("a KV key (kv:<key> in HASH_INDEX)", async () => {
    const w = await worker({ policy: "kv:config/policy" });
    await w.loadIndex(bulk);
    await (await w.kv("HASH_INDEX")).put("config/policy", JSON.stringify(BLOCK));
    await assertBlocked(await w.fetch("/photos/chelsea.jpg"), "kv policy");
    await assertPassesUntouched(w, origin, "/photos/coffee.jpg");
  });

  test("a JSON object variable (POLICY as a TOML table in wrangler.toml)", async () => {
    const w = await worker({
      miniflare: { bindings: { POLICY: BLOCK, ORIGIN: origin.url, WEBHOOK_SECRET } },
    });
    await w.loadIndex(bulk);
    await assertBlocked(await w.fetch("/photos/chelsea.jpg"), "object var");
  });

  test("no matching route: untouched, even for a listed image", async () => {
    const w = await worker({ policy: { routes: [{ pattern: "shop.example.com/*", action: "block", lists: ["*"] }] } });
    await w.loadIndex(bulk);
    await assertPassesUntouched(w, origin, "/photos/chelsea.jpg");
  });

  test("the most specific route wins over broader ones, whatever the order", async () => {
    const w = await worker({
      policy: {
        routes: [
          { pattern: "hashgate.test/photos/*", action: "flag", lists: ["demo"] },
          { pattern: "*/*", action: "block", lists: ["demo"] },
          { pattern: "hashgate.test/*", action: "block", lists: ["demo"] },
        ],
      },
    });
    await w.loadIndex(bulk);
    // hashgate.test/photos/* (flag) is the most specific for /photos/.
    await assertPassesUntouched(w, origin, "/photos/chelsea.jpg");
    // Elsewhere on the host, hashgate.test/* (block).
    await assertBlocked(await w.fetch("/__untyped/photos/chelsea.jpg"), "host route");
  });
});
