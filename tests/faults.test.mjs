// Faults at the edge: what the worker does when the things around it fail.
//
// * KV errors or stalls: the route's fail mode applies (open: the original
//   passes and is reported "unscanned"; closed: 503), a stalled read gives
//   up after the route's kv_timeout_ms, nothing is cached, and the next
//   request after KV is back is checked again.
// * The queue refuses events: the verdict holds (451), the event waits in
//   the outbox and reaches its report record exactly once after the drain.
// * The webhook receiver is down: notifications are retried until it is
//   back (received == sent), or all end in the dead-letter store.
// * The origin misbehaves (reset or clean close mid-body, more bytes than
//   Content-Length, chunked body cut, slow body, slow headers): the client
//   gets what a plain proxy gives, a partial image is never called clean,
//   and the full image at the same URL is blocked afterwards.
// * Two concurrent requests, a 24 MP JPEG and decompression bombs, on one
//   isolate: both answered correctly, wasm memory under a stated bound.
//
// Real parts throughout: the built wasm in workerd, local KV and queues,
// real sockets. Faults are injected by wrappers around the real bindings
// (support/faults.mjs) and by an origin on raw sockets (support/raw-origin.mjs).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { performance } from "node:perf_hooks";
import { FIXTURES_DIR, REPO_ROOT, sha256, startOrigin } from "./support/origin.mjs";
import { startRawOrigin } from "./support/raw-origin.mjs";
import { startWorker, WEBHOOK_SECRET } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST, E2E_DIR, hashFile } from "./support/index.mjs";
import { assertBlocked, assertPassesUntouched, headerMap } from "./support/compare.mjs";
import { createFaults } from "./support/faults.mjs";
import { startWebhook } from "./support/webhook.mjs";

const run = promisify(execFile);
const IMAGES_PY = path.join(REPO_ROOT, "tests/support/images.py");
const VARIANTS = path.join(E2E_DIR, "variants");
const SIZES = path.join(E2E_DIR, "sizes");
const BOMBS = path.join(E2E_DIR, "bombs");
const fileSha = async (file) => sha256(await readFile(file));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const IDENTITY = { headers: { "accept-encoding": "identity" } };

before(async () => {
  await run("python3", [IMAGES_PY, "variants", VARIANTS]);
});

/** How a response ended: status, and whether the body arrived whole (its digest if so). */
async function outcome(responsePromise) {
  let res;
  try {
    res = await responsePromise;
  } catch (e) {
    return { status: null, complete: false };
  }
  try {
    const body = Buffer.from(await res.arrayBuffer());
    return { status: res.status, complete: true, length: body.length, sha256: sha256(body) };
  } catch {
    return { status: res.status, complete: false };
  }
}

async function assertNotChecked(res, what) {
  const text = await res.text();
  assert.equal(res.status, 503, `${what}: ${text}`);
  assert.equal(res.headers.get("cache-control"), "no-store");
}

describe("faults at the edge: KV, queue, origin", () => {
  let raw, worker, faults;
  const KV_TIMEOUT_MS = 300;

  before(async () => {
    raw = await startRawOrigin({ mounts: { "/variants": VARIANTS } });
    faults = createFaults();
    const route = (pattern, fail, extra = {}) => ({
      pattern,
      action: "block",
      lists: ["demo"],
      fail,
      kv_timeout_ms: KV_TIMEOUT_MS,
      ...extra,
    });
    worker = await startWorker({
      origin: raw.url,
      faults,
      policy: {
        routes: [
          route("hashgate.test/open/*", "open"),
          route("hashgate.test/closed/*", "closed"),
          // The same traffic with no scanning at all: what a plain proxy gives.
          route("hashgate.test/plain/*", "open", { enabled: false }),
        ],
      },
    });
    // The bucket layout: every image reads KV, which is what these faults
    // are about (a resident index, once loaded, needs no KV per image; its
    // own failures are in generations.test.mjs).
    await worker.loadIndex(await buildIndex("faults", { demo: DEMO_LIST }, { layout: "buckets" }));
  });

  after(async () => {
    await worker?.dispose();
    await raw?.close();
  });

  const unscanned = async (route, predicate) => {
    const records = await worker.waitForReports((rs) => rs.some((r) => r.value.route === route && predicate(r.value)), {
      prefix: "unscanned/v1/",
    });
    return records.find((r) => r.value.route === route && predicate(r.value)).value;
  };

  describe("KV", () => {
    test("KV read fails: open passes and reports, closed answers 503; checked again once KV is back", async () => {
      const sha = await fileSha(path.join(FIXTURES_DIR, "photos/chelsea.jpg"));
      faults.kv = "fail";
      const failedBefore = faults.calls.kvFailed;
      await assertPassesUntouched(worker, raw, "/open/photos/chelsea.jpg?kv-fail");
      await assertNotChecked(await worker.fetch("/closed/photos/chelsea.jpg?kv-fail"), "closed, KV failing");
      assert.ok(faults.calls.kvFailed > failedBefore, "the KV wrapper was called and failed");
      faults.heal();

      const open = await unscanned("hashgate.test/open/*", (v) => v.sha256 === sha);
      assert.equal(open.reason, "index-unavailable");
      assert.equal(open.actions.passed, 1);
      const closed = await unscanned("hashgate.test/closed/*", (v) => v.sha256 === sha);
      assert.equal(closed.actions.refused, 1);

      // KV is back: the same URLs (same ETag) are checked and blocked.
      await assertBlocked(await worker.fetch("/open/photos/chelsea.jpg?kv-fail"), "open, KV back");
      await assertBlocked(await worker.fetch("/closed/photos/chelsea.jpg?kv-fail"), "closed, KV back");
    });

    test("KV read hangs: given up after kv_timeout_ms, a failure not a clean verdict, never cached", async () => {
      const sha = await fileSha(path.join(FIXTURES_DIR, "photos/rocket.jpg"));
      faults.kv = "hang";
      let t0 = performance.now();
      await assertPassesUntouched(worker, raw, "/open/photos/rocket.jpg?kv-hang");
      const openMs = performance.now() - t0;
      t0 = performance.now();
      await assertNotChecked(await worker.fetch("/closed/photos/rocket.jpg?kv-hang"), "closed, KV hanging");
      const closedMs = performance.now() - t0;
      // Twice: a timed-out look-up must not have left a verdict behind.
      await assertNotChecked(await worker.fetch("/closed/photos/rocket.jpg?kv-hang"), "closed, KV hanging, again");
      for (const ms of [openMs, closedMs]) {
        assert.ok(ms >= KV_TIMEOUT_MS - 20 && ms < KV_TIMEOUT_MS + 3000, `answered after ${ms.toFixed(0)} ms`);
      }
      faults.heal();
      const open = await unscanned("hashgate.test/open/*", (v) => v.sha256 === sha);
      assert.equal(open.reason, "index-timeout");
      await assertBlocked(await worker.fetch("/open/photos/rocket.jpg?kv-hang"), "open, KV back");
      await assertBlocked(await worker.fetch("/closed/photos/rocket.jpg?kv-hang"), "closed, KV back");
      console.log(`# KV hang: fail open answered in ${openMs.toFixed(0)} ms, fail closed in ${closedMs.toFixed(0)} ms (kv_timeout_ms ${KV_TIMEOUT_MS})`);
    });
  });

  describe("queue", () => {
    test("queue send fails: still 451; the event waits in the outbox and is reported exactly once after the drain", async () => {
      const file = "variants/chelsea-q40.jpg";
      const sha = await fileSha(path.join(VARIANTS, "chelsea-q40.jpg"));
      const REPORTS = await worker.kv("REPORTS");
      const sendsBefore = faults.calls.queueFailed;
      faults.queue = "fail";
      await assertBlocked(await worker.fetch(`/open/${file}`), "queue failing");
      await assertBlocked(await worker.fetch(`/closed/${file}`), "queue failing, closed route");
      const outbox = await worker.waitForReports((rs) => rs.length === 2, { prefix: "outbox/v1/" });
      const refused = faults.calls.queueFailed - sendsBefore;
      assert.equal(refused, 6, "each event was tried 3 times before going to the outbox");
      for (const { key, value, expiration } of outbox) {
        assert.equal(key, `outbox/v1/${value.id}`);
        assert.equal(value.type, "match");
        assert.equal(value.sha256, sha);
        assert.ok(Math.abs(expiration - (Date.now() / 1000 + 30 * 86400)) < 120, "outbox entries expire in 30 days");
      }
      const reported = async () => (await REPORTS.list({ prefix: `report/v1/${sha}/` })).keys.length;
      assert.equal(await reported(), 0, "nothing reached the consumer while the queue was down");

      // A drain while the queue is still down changes nothing.
      await worker.scheduled();
      assert.equal((await REPORTS.list({ prefix: "outbox/v1/" })).keys.length, 2, "entries kept while the queue refuses");

      faults.heal();
      // Two drains at once: both may send the same entries; each event still counts once.
      await Promise.all([worker.scheduled(), worker.scheduled()]);
      await worker.waitForReports((rs) => rs.length === 2, { prefix: `report/v1/${sha}/` });
      await worker.scheduled();
      await sleep(1000); // any duplicate delivery would have arrived by now
      const mine = (await worker.waitForReports(() => true, { prefix: `report/v1/${sha}/` })).map((r) => r.value);
      assert.equal(mine.length, 2, "one record per route");
      for (const value of mine) {
        assert.equal(value.count, 1, `${value.route}: counted once`);
        assert.equal(value.actions.blocked, 1);
        assert.equal(value.event_ids.length, 1);
      }
      assert.deepEqual(new Set(mine.map((v) => v.event_ids[0])), new Set(outbox.map((o) => o.value.id)));
      assert.equal((await REPORTS.list({ prefix: "outbox/v1/" })).keys.length, 0, "outbox empty after the drain");
    });

    test("the isolate that kept an event drains it on a later request once the queue is back", async () => {
      const file = "variants/chelsea-rot90.jpg";
      const sha = await fileSha(path.join(VARIANTS, "chelsea-rot90.jpg"));
      faults.queue = "fail";
      await assertBlocked(await worker.fetch(`/open/${file}`), "queue failing");
      const [entry] = await worker.waitForReports((rs) => rs.length === 1, { prefix: "outbox/v1/" });
      faults.heal();
      // Any request: the drain runs after its response (waitUntil), no cron needed.
      await assertPassesUntouched(worker, raw, "/open/web/hello.txt");
      const [record] = await worker.waitForReports((rs) => rs.length === 1, { prefix: `report/v1/${sha}/` });
      assert.equal(record.value.count, 1);
      assert.deepEqual(record.value.event_ids, [entry.value.id]);
      await worker.waitForReports((rs) => rs.length === 0, { prefix: "outbox/v1/" });
    });
  });

  describe("origin", () => {
    /** The same request to the origin directly, through the plain route, and through the scanning routes. */
    async function compare(file) {
      const direct = await outcome(fetch(`${raw.url}/direct/${file}`, IDENTITY));
      const plain = await outcome(worker.fetch(`/plain/${file}`, IDENTITY));
      const open = await outcome(worker.fetch(`/open/${file}`, IDENTITY));
      return { direct, plain, open };
    }

    for (const mode of ["reset", "short", "chunked-cut"]) {
      test(`a listed image cut short (${mode}): no clean partial 200, not cached; the full image is then blocked`, async () => {
        const file = `photos/chelsea.jpg?${mode}`;
        raw.fault(file, mode);
        const { direct, plain, open } = await compare(file);
        assert.deepEqual(open, plain, "fail open: what a plain proxy gives");
        assert.deepEqual(direct, plain, "the plain proxy gives what the origin gives");
        if (mode === "chunked-cut") {
          // Node's fetch (undici) takes a chunked body cut by a clean close
          // as complete, from the origin directly and through any proxy
          // alike; the worker itself saw the cut (the record below).
          assert.ok(open.length < (await readFile(path.join(FIXTURES_DIR, "photos/chelsea.jpg"))).length);
        } else {
          assert.equal(open.complete, false, `no complete 200 with a partial body: ${JSON.stringify(open)}`);
        }
        const closed = await worker.fetch(`/closed/${file}`, IDENTITY);
        await assertNotChecked(closed, `closed, ${mode}`);
        const record = await unscanned("hashgate.test/open/*", (v) => v.urls.includes(`http://hashgate.test/open/${file}`));
        assert.equal(record.reason, "body-error");

        // The origin recovers: the same URL with the same ETag is read and blocked.
        raw.fault(file, "ok");
        const before = raw.count(file);
        await assertBlocked(await worker.fetch(`/open/${file}`), `open, after ${mode}`);
        await assertBlocked(await worker.fetch(`/closed/${file}`), `closed, after ${mode}`);
        assert.equal(raw.count(file) - before, 2, "both went to the origin");
      });
    }

    test("more bytes than Content-Length: read as a plain proxy reads it (listed: 451, clean: identical)", async () => {
      raw.fault("photos/chelsea.jpg?long", "long");
      raw.fault("photos/coffee.jpg?long", "long");
      await assertBlocked(await worker.fetch("/open/photos/chelsea.jpg?long"), "listed, long body");
      const { direct, plain, open } = await compare("photos/coffee.jpg?long");
      const coffee = await readFile(path.join(FIXTURES_DIR, "photos/coffee.jpg"));
      assert.equal(plain.status, 200);
      assert.equal(plain.sha256, sha256(coffee), "the plain proxy gives Content-Length bytes");
      assert.deepEqual(open, plain);
      assert.deepEqual(direct, plain);
    });

    test("a slow origin: a trickled listed image is blocked, a trickled clean one passes byte-identical", async () => {
      raw.fault("variants/chelsea-small.jpg?slow", "slow");
      raw.fault("photos/coffee.jpg?slow", "slow");
      raw.fault("photos/coffee.jpg?slow-headers", "slow-headers");
      let t0 = performance.now();
      await assertBlocked(await worker.fetch("/open/variants/chelsea-small.jpg?slow"), "listed, trickled");
      await assertBlocked(await worker.fetch("/closed/variants/chelsea-small.jpg?slow"), "listed, trickled, closed");
      const slowMs = (performance.now() - t0) / 2;
      t0 = performance.now();
      const { body } = await assertPassesUntouched(worker, raw, "/open/photos/coffee.jpg?slow");
      assert.ok(body.equals(await readFile(path.join(FIXTURES_DIR, "photos/coffee.jpg"))));
      await assertPassesUntouched(worker, raw, "/closed/photos/coffee.jpg?slow-headers");
      console.log(`# slow origin: trickled listed image answered 451 after ${slowMs.toFixed(0)} ms`);
    });
  });
});

describe("faults at the edge: the webhook receiver is down", () => {
  // Five distinct listed images (five records, five notifications per route).
  const FILES = [
    "photos/chelsea.jpg",
    "photos/rocket.jpg",
    "variants/chelsea-q40.jpg",
    "variants/chelsea-small.jpg",
    "variants/chelsea-rot90.jpg",
  ];
  const MAX_RETRIES = 5;
  let origin, worker, late, latePort, neverPort;

  before(async () => {
    // Two ports nobody listens on: one comes back later, one never does.
    const probe1 = await startWebhook({ secret: WEBHOOK_SECRET });
    const probe2 = await startWebhook({ secret: WEBHOOK_SECRET });
    latePort = probe1.port;
    neverPort = probe2.port;
    await Promise.all([probe1.close(), probe2.close()]);
    origin = await startOrigin({ mounts: { "/late/variants": VARIANTS, "/never/variants": VARIANTS, "/late": FIXTURES_DIR, "/never": FIXTURES_DIR } });
    const route = (pattern, port) => ({ pattern, action: "block", lists: ["demo"], notify: { webhook: `http://127.0.0.1:${port}/hook` } });
    worker = await startWorker({
      origin: origin.url,
      policy: { routes: [route("hashgate.test/late/*", latePort), route("hashgate.test/never/*", neverPort)] },
      // One second between attempts, five retries: about five seconds before a dead letter.
      consumer: { maxRetries: MAX_RETRIES, retryDelay: 1 },
    });
    await worker.loadIndex(await buildIndex("faults-hooks", { demo: DEMO_LIST }));
  });

  after(async () => {
    await worker?.dispose();
    await origin?.close();
    await late?.close();
  });

  const shas = async () => Promise.all(FILES.map((f) => fileSha(path.join(f.startsWith("variants/") ? E2E_DIR : FIXTURES_DIR, f))));

  test("down for a while, then back: every notification arrives, each once", async () => {
    for (const f of FILES) await assertBlocked(await worker.fetch(`/late/${f}`), f);
    const sent = FILES.length;
    await sleep(2500); // the receiver is down for the first attempts
    late = await startWebhook({ secret: WEBHOOK_SECRET, port: latePort });
    const deliveries = await late.waitFor((ds) => new Set(ds.map((d) => d.headers["x-hashgate-delivery"])).size >= sent, 15_000);
    await sleep(1500); // a duplicate would arrive by now
    const ids = late.deliveries.map((d) => d.headers["x-hashgate-delivery"]);
    assert.equal(new Set(ids).size, sent, "received == sent");
    assert.equal(ids.length, sent, "each notification delivered once");
    assert.ok(late.deliveries.every((d) => d.signatureValid && d.status === 204));
    const expected = new Set(await shas());
    assert.deepEqual(new Set(deliveries.map((d) => d.json.event.sha256)), expected);
    const records = await worker.waitForReports(
      (rs) => rs.filter((r) => r.value.route === "hashgate.test/late/*" && r.value.notified_at).length === sent,
      { prefix: "report/v1/" },
    );
    for (const r of records.filter((r) => r.value.route === "hashgate.test/late/*")) assert.equal(r.value.count, 1);
    const dead = await worker.waitForReports(() => true, { prefix: "dead/v1/" });
    assert.equal(dead.filter((d) => d.value.body.route === "hashgate.test/late/*").length, 0, "none dead-lettered");
    console.log(`# webhook down ~2.5 s: sent ${sent}, received ${new Set(ids).size}, deliveries ${ids.length}`);
  });

  test("never back: after the retry limit every event is in the dead-letter store, none dropped", async () => {
    for (const f of FILES) await assertBlocked(await worker.fetch(`/never/${f}`), f);
    const sent = FILES.length;
    const dead = await worker.waitForReports(
      (rs) => rs.filter((d) => d.value.body.route === "hashgate.test/never/*").length === sent,
      { prefix: "dead/v1/", timeoutMs: 20_000 },
    );
    const mine = dead.filter((d) => d.value.body.route === "hashgate.test/never/*");
    assert.deepEqual(new Set(mine.map((d) => d.value.body.sha256)), new Set(await shas()));
    assert.ok(mine.every((d) => d.value.queue === "hashgate-dlq" && d.key === `dead/v1/${d.value.body.id}`));
    const records = (await worker.waitForReports(() => true, { prefix: "report/v1/" })).filter(
      (r) => r.value.route === "hashgate.test/never/*",
    );
    assert.equal(records.length, sent, "every sighting has its record");
    assert.ok(records.every((r) => r.value.count === 1 && r.value.notified_at === null));
    console.log(`# webhook never back: sent ${sent}, dead letters ${mine.length}, records ${records.length}`);
  });
});

describe("faults at the edge: memory under concurrent large images", () => {
  // Peak wasm linear memory of one isolate (linear memory only grows, so a
  // request after the others shows the peak so far; DEBUG=1 adds the
  // X-Hashgate-Wasm-Memory header). Hashing runs synchronously in wasm, so
  // concurrent requests add their bodies, not a second decode.
  //
  // 1. A 24 MP JPEG (reduced-scale decoding) with a bomb refused from its
  //    header (50,000 x 50,000 PNG): measured 5.4 MiB, as the 24 MP alone.
  //    Bound: 12 MiB.
  // 2. The 24 MP JPEG again with a zip bomb (62 KB PNG inflating to 7000 x
  //    7000 grey, under the 50 MP limit, so it is decoded): read row by row
  //    into block means, it never holds the 47 MiB of pixels; measured
  //    8.4 MiB after step 1 (54.2 MiB when such PNGs were decoded whole).
  //    Bound: step 1's bound plus 8 MiB for the PNG's rows, inflate state
  //    and reduced luma plane.
  const BOUND_24MP = 12 << 20;
  const BOUND_ZIP = BOUND_24MP + (8 << 20);
  let origin, worker, bigPdq;

  before(async () => {
    await run("python3", [IMAGES_PY, "sizes", SIZES]);
    await run("python3", [IMAGES_PY, "bombs", BOMBS]);
    bigPdq = (await hashFile(path.join(SIZES, "photo-24mp.jpg"))).pdq;
    origin = await startOrigin({ mounts: { "/sizes": SIZES, "/bombs": BOMBS } });
    worker = await startWorker({
      origin: origin.url,
      bindings: { DEBUG: "1" },
      policy: {
        routes: [{ pattern: "*/*", action: "block", lists: ["big"], fail: "open", max_bytes: 25 << 20 }],
        // Every request decodes and hashes.
        verdict_cache: { ttl_seconds: 0 },
      },
    });
    await worker.loadIndex(await buildIndex("faults-big", { big: [`pdq,${bigPdq},big-24mp`] }));
  });

  after(async () => {
    await worker?.dispose();
    await origin?.close();
  });

  const mib = (b) => (b / 1048576).toFixed(1);
  const memory = async () => {
    const res = await worker.fetch("/web/hello.txt", IDENTITY);
    await res.arrayBuffer();
    const bytes = Number(res.headers.get("x-hashgate-wasm-memory"));
    assert.ok(bytes > 0, "the DEBUG memory header is present");
    return bytes;
  };

  /** The 24 MP JPEG (listed) and `bomb` at once: 451, and the bomb passes untouched (fail open). */
  async function together(bomb, bombFile) {
    const t0 = performance.now();
    const [big, other] = await Promise.all([worker.fetch("/sizes/photo-24mp.jpg", IDENTITY), worker.fetch(bomb, IDENTITY)]);
    assert.equal(big.headers.get("x-hashgate-verdict"), "match");
    await assertBlocked(big, "24 MP JPEG on the list");
    const body = Buffer.from(await other.arrayBuffer());
    assert.equal(other.status, 200);
    assert.ok(body.equals(await readFile(bombFile)), `${bomb} passes byte-identical`);
    return { ms: performance.now() - t0, verdict: other.headers.get("x-hashgate-verdict") };
  }

  test("a 24 MP JPEG and a decompression bomb at once: both answered correctly, wasm memory bounded", async () => {
    const idle = await memory();
    const a = await together("/errors/bomb-50000.png", path.join(FIXTURES_DIR, "errors/bomb-50000.png"));
    assert.equal(a.verdict, "over-limits", "the header bomb is refused from its header");
    const peakA = await memory();
    console.log(`# wasm memory: idle ${mib(idle)} MiB; 24 MP + header bomb at once (${a.ms.toFixed(0)} ms): peak ${mib(peakA)} MiB (bound ${mib(BOUND_24MP)})`);
    assert.ok(peakA < BOUND_24MP, `peak ${mib(peakA)} MiB is over ${mib(BOUND_24MP)} MiB`);

    const b = await together("/bombs/zipbomb-7000.png", path.join(BOMBS, "zipbomb-7000.png"));
    assert.ok(["clean", "over-limits"].includes(b.verdict), `zip bomb: ${b.verdict}`);
    const peakB = await memory();
    console.log(`# wasm memory: 24 MP + zip bomb (${b.verdict}) at once (${b.ms.toFixed(0)} ms): peak ${mib(peakB)} MiB (bound ${mib(BOUND_ZIP)})`);
    assert.ok(peakB < BOUND_ZIP, `peak ${mib(peakB)} MiB is over ${mib(BOUND_ZIP)} MiB`);

    // The isolate still answers, and the grown memory is reused, not grown again.
    await assertBlocked(await worker.fetch("/sizes/photo-24mp.jpg"), "24 MP again");
    await (await worker.fetch("/bombs/zipbomb-7000.png")).arrayBuffer();
    assert.equal(await memory(), peakB, "a second round does not grow memory");
  });
});
