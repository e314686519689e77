// The policy: validated before anything is served, read from the POLICY
// variable, a JSON object var, or a KV key; no matching route means the
// request passes untouched. An unusable policy is logged and never shown:
// the isolate keeps its last good policy, or serves the safe default
// (everything scanned, every list, block, fail closed).

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

// What a public body must never carry: configuration, KV keys, parse errors.
const INTERNALS = /kv:|config\/policy|HASH_INDEX|POLICY|ORIGIN|unknown field|routes\[|treshold|pdq_threshold|webhook|misconfigured/i;

// The log is JSON lines (worker/src/logging.rs): match the text and each line's decoded message.
const logText = (w) =>
  [w.logs(), ...w.logs().split("\n").flatMap((line) => {
    try {
      return [JSON.parse(line.slice(line.indexOf("{"))).message ?? ""];
    } catch {
      return [];
    }
  })].join("\n");

async function waitForLog(w, pattern) {
  const deadline = Date.now() + 5000;
  while (!pattern.test(logText(w))) {
    if (Date.now() > deadline) assert.fail(`the log never said ${pattern}; it has:\n${w.logs()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The safe default: every image checked against every list and blocked, the rest served, unscannable images withheld. */
async function assertSafeDefault(w, reason) {
  await w.loadIndex(bulk);
  const text = await assertBlocked(await w.fetch("/photos/chelsea.jpg"), "safe default");
  assert.doesNotMatch(text, INTERNALS);
  await assertPassesUntouched(w, origin, "/web/hello.txt");
  await assertPassesUntouched(w, origin, "/photos/coffee.jpg");
  // Fails closed: an image that cannot be decoded is withheld.
  const withheld = await w.fetch("/__typed/image%2Fjpeg/web/hello.txt");
  const body = await withheld.text();
  assert.equal(withheld.status, 503, body);
  assert.doesNotMatch(body, INTERNALS);
  await waitForLog(w, reason);
  await waitForLog(w, /serving with the safe default policy/);
}

describe("an unusable policy: logged, never shown, and the safe default serves", () => {
  const route = (extra) => JSON.stringify({ routes: [{ pattern: "*/*", action: "block", lists: ["demo"], ...extra }] });

  test("an unknown field", async () => {
    await assertSafeDefault(await worker({ policy: route({ treshold: 3 }), logs: true }), /unknown field `treshold`/);
  });

  test("a threshold out of range", async () => {
    await assertSafeDefault(await worker({ policy: route({ pdq_threshold: 40 }), logs: true }), /routes\[0\].*pdq_threshold 40 is out of range 0..=31/);
  });

  test("a bad pattern", async () => {
    const policy = JSON.stringify({ routes: [{ pattern: "example.com", action: "flag", lists: ["*"] }] });
    await assertSafeDefault(await worker({ policy, logs: true }), /has no '\/' between host and path/);
  });

  test("a plain-http webhook to a public host", async () => {
    await assertSafeDefault(await worker({ policy: route({ notify: { webhook: "http://hooks.example.com/x" } }), logs: true }), /notify.webhook: .*must use https/);
  });

  test("an empty POLICY", async () => {
    await assertSafeDefault(await worker({ policy: "", logs: true }), /POLICY is empty/);
  });

  test("a kv: policy whose key is missing", async () => {
    await assertSafeDefault(await worker({ policy: "kv:config/policy", logs: true }), /POLICY is kv:config\/policy: no such key in HASH_INDEX/);
  });

  test("a kv: policy that turns invalid or goes missing: the last good one keeps serving", async () => {
    const w = await worker({ policy: "kv:config/policy", logs: true });
    await w.loadIndex(bulk);
    const kv = await w.kv("HASH_INDEX");
    // Flag, not block: tells it apart from the safe default.
    const flag = { routes: [{ pattern: "*/*", action: "flag", lists: ["demo"] }], kv_refresh_seconds: 1 };
    await kv.put("config/policy", JSON.stringify(flag));
    await assertPassesUntouched(w, origin, "/photos/chelsea.jpg");
    for (const broken of ['{"routes": [', JSON.stringify({ routes: [{ pattern: "*/*", action: "flag", lists: ["demo"], treshold: 1 }] }), null]) {
      if (broken === null) await kv.delete("config/policy");
      else await kv.put("config/policy", broken);
      await new Promise((r) => setTimeout(r, 1200));
      const { body } = await assertPassesUntouched(w, origin, "/photos/chelsea.jpg");
      assert.ok(body.length > 1000, "the flag policy still serves the image");
      await waitForLog(w, /serving with the last good policy/);
    }
    assert.match(w.logs(), /no such key in HASH_INDEX/);
    // Fixed: the new policy is read on the next try.
    await kv.put("config/policy", JSON.stringify(BLOCK));
    await new Promise((r) => setTimeout(r, 1200));
    await assertBlocked(await w.fetch("/photos/chelsea.jpg"), "fixed kv policy");
  });

  test("a bad ORIGIN: a bare 500, the reason in the log, nothing sent", async () => {
    origin.reset();
    const w = await worker({ policy: BLOCK, bindings: { ORIGIN: "127.0.0.1:8080/x" }, logs: true });
    for (const path of ["/photos/chelsea.jpg", "/web/hello.txt"]) {
      const res = await w.fetch(path);
      const text = await res.text();
      assert.equal(res.status, 500, text);
      assert.match(text, /^500 Internal Server Error\. Request id [\w-]+\.\n$/);
    }
    assert.equal(origin.count(), 0);
    await waitForLog(w, /ORIGIN "127.0.0.1:8080\/x" must be an http/);
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
