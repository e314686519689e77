// Stored content: objects in R2 buckets scanned by the worker's consumer of
// hashgate-stored-objects (worker/src/stored.rs), in workerd with
// Miniflare's local R2, D1 and Queues.
//
// Miniflare does not emit R2 event notifications: the tests put an object
// in the bucket, then send the notification R2 would send (its documented
// body: account, action, bucket, object {key, size, eTag}, eventTime) to the
// same queue through Miniflare's queue producer.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { FIXTURES_DIR, REPO_ROOT, sha256, startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST, E2E_DIR } from "./support/index.mjs";

const BUCKET = "user-uploads";
const ADMIN_TOKEN = "e2e-admin-token";
const OBJECTS = path.join(E2E_DIR, "stored-objects");
const TOTAL = 1000;
const LISTED = 20;
const chelsea = await readFile(path.join(FIXTURES_DIR, "photos/chelsea.jpg"));
const coffee = await readFile(path.join(FIXTURES_DIR, "photos/coffee.jpg"));
const camera = await readFile(path.join(FIXTURES_DIR, "photos/camera.jpg"));

const rule = (prefix, action) => ({
  bucket: BUCKET,
  binding: "UPLOADS",
  prefix,
  action,
  ...(action === "quarantine" ? { quarantine_binding: "QUARANTINE" } : {}),
  lists: ["*"],
});
const POLICY = {
  routes: [{ pattern: "*/*", action: "flag", lists: ["*"], scan: ["responses"] }],
  index: { refresh_seconds: 1 },
  stored: [rule("new/", "quarantine"), rule("bulk/", "report"), rule("old/", "quarantine")],
};

let origin, worker, persist;
const start = () =>
  startWorker({
    origin: origin.url,
    policy: POLICY,
    bindings: { ADMIN_TOKEN },
    miniflare: { kvPersist: path.join(persist, "kv"), r2Persist: path.join(persist, "r2"), d1Persist: path.join(persist, "d1") },
  });

before(async () => {
  await promisify(execFile)("python3", [path.join(REPO_ROOT, "tests/support/stored_images.py"), OBJECTS, String(TOTAL), String(LISTED)]);
  persist = await mkdtemp(path.join(tmpdir(), "hashgate-stored-"));
  origin = await startOrigin({ mounts: { "/photos": path.join(FIXTURES_DIR, "photos") } });
  worker = await start();
  await worker.loadIndex(await buildIndex("stored-v1", { demo: DEMO_LIST }));
  // The first sight of an index: the base later generations are compared with.
  assert.equal((await admin("POST", "retro")).status, 200);
});

after(async () => {
  await worker?.dispose();
  await origin?.close();
  if (persist) await rm(persist, { recursive: true, force: true });
});

const admin = (method, rest, body, token = ADMIN_TOKEN) =>
  worker.fetch(`/_hashgate/stored/${rest}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });

/** An ArrayBuffer of its own (Node Buffers share a pool, which Miniflare's proxy refuses). */
const own = (bytes) => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);

/** Puts an object and sends the notification R2 would send for it. */
async function upload(key, bytes) {
  const bucket = await worker.mf.getR2Bucket("UPLOADS");
  const object = await bucket.put(key, own(bytes));
  const producer = await worker.queue("STORED_OBJECTS");
  await producer.send({
    account: "0123456789abcdef0123456789abcdef",
    action: "PutObject",
    bucket: BUCKET,
    object: { key, size: bytes.length, eTag: object.etag },
    eventTime: new Date().toISOString(),
  });
  return object;
}

async function logRow(location) {
  const db = await worker.mf.getD1Database("HASH_LOG");
  return db.prepare("SELECT * FROM hash_log WHERE location = ?1").bind(location).first();
}

async function waitFor(what, predicate, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await predicate();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const recordsFor = (records, route) => records.filter((r) => r.value.route === route);

describe("new objects (R2 event notifications)", () => {
  test("a listed upload is quarantined and recorded, once however often it is notified", async () => {
    const key = "new/cat.jpg";
    const { etag } = await upload(key, chelsea);
    const route = `r2://${BUCKET}/new/*`;
    const records = await worker.waitForReports((rs) => recordsFor(rs, route).length === 1, { prefix: "report/" });
    const [{ value }] = recordsFor(records, route);
    assert.equal(value.sha256, sha256(chelsea));
    assert.deepEqual(value.directions, ["stored"]);
    assert.deepEqual(value.urls, [`r2://${BUCKET}/${key}`]);
    assert.equal(value.actions.quarantined, 1);
    assert.equal(value.matches[0].list, "demo");
    assert.equal(value.matches[0].id, "demo-chelsea");

    // Moved: gone from the bucket, in the quarantine bucket with its origin.
    const uploads = await worker.mf.getR2Bucket("UPLOADS");
    const quarantine = await worker.mf.getR2Bucket("QUARANTINE");
    await waitFor("the original to be deleted", async () => (await uploads.head(key)) === null);
    const copy = await quarantine.get(`${BUCKET}/${key}`);
    assert.ok(copy, "the quarantined copy exists");
    assert.deepEqual(Buffer.from(await copy.arrayBuffer()), chelsea);
    assert.equal(copy.customMetadata.bucket, BUCKET);
    assert.equal(copy.customMetadata.key, key);
    assert.equal(copy.customMetadata.etag, etag);
    assert.equal(copy.customMetadata.sha256, sha256(chelsea));
    const row = await logRow(`r2://${BUCKET}/${key}`);
    assert.equal(row.result, "match");

    // The same notification again (queues deliver at least once): nothing changes.
    const producer = await worker.queue("STORED_OBJECTS");
    await producer.send({ account: "a", action: "PutObject", bucket: BUCKET, object: { key, size: chelsea.length, eTag: etag }, eventTime: new Date().toISOString() });
    await new Promise((r) => setTimeout(r, 1500));
    const again = await worker.waitForReports((rs) => recordsFor(rs, route).length === 1, { prefix: "report/" });
    assert.equal(recordsFor(again, route)[0].value.count, 1);
  });

  test("a clean upload stays, and is logged by its hashes", async () => {
    const key = "new/coffee.jpg";
    await upload(key, coffee);
    const row = await waitFor("the log row", () => logRow(`r2://${BUCKET}/${key}`));
    assert.equal(row.result, "clean");
    assert.equal(row.sha256, sha256(coffee));
    assert.match(row.pdq, /^[0-9a-f]{64}$/);
    assert.ok(await (await worker.mf.getR2Bucket("UPLOADS")).head(key), "still in the bucket");
  });

  test("a non-image and a corrupt image are logged, never a reason to stop", async () => {
    await upload("new/readme.txt", Buffer.from("hello"));
    await upload("new/broken.jpg", chelsea.subarray(0, 600));
    const text = await waitFor("readme", () => logRow(`r2://${BUCKET}/new/readme.txt`));
    assert.equal(text.result, "other");
    const broken = await waitFor("broken", () => logRow(`r2://${BUCKET}/new/broken.jpg`));
    assert.equal(broken.result, "failed");
    assert.ok(broken.detail, "the reason is kept");
  });

  test("the admin endpoints need the bearer token", async () => {
    assert.equal((await admin("POST", "backfills", { bucket: BUCKET, prefix: "bulk/" }, "wrong")).status, 401);
    assert.equal((await admin("GET", "backfills/bf-0", undefined, "")).status, 401);
  });
});

describe("backfill", () => {
  test(`${TOTAL} objects, ${LISTED} listed: each scanned once, the same counts after a restart midway`, async () => {
    const bucket = await worker.mf.getR2Bucket("UPLOADS");
    const files = (await readdir(OBJECTS)).sort();
    assert.equal(files.length, TOTAL);
    for (const file of files) await bucket.put(`bulk/${file}`, own(await readFile(path.join(OBJECTS, file))));

    const started = Date.now();
    const res = await admin("POST", "backfills", { bucket: BUCKET, prefix: "bulk/" });
    assert.equal(res.status, 202, await res.clone().text());
    const { backfill } = await res.json();
    const progress = async () => (await (await admin("GET", `backfills/${backfill.id}`)).json()).progress;

    // Restart midway: the worker goes away with work in flight.
    await waitFor("a third scanned", async () => (await progress()).scanned >= TOTAL / 3, 60_000);
    const before = await progress();
    assert.ok(before.scanned < TOTAL, `restart came too late: ${JSON.stringify(before)}`);
    await worker.dispose();
    worker = await start();
    // Resume: the operator starts the same backfill again.
    const resumed = await admin("POST", "backfills", { bucket: BUCKET, prefix: "bulk/" });
    assert.equal(resumed.status, 202);
    assert.equal((await resumed.json()).backfill.id, backfill.id);

    const done = await waitFor(
      "the backfill to complete",
      async () => {
        const p = await progress();
        return p.listed === TOTAL && p.scanned === TOTAL ? p : null;
      },
      120_000,
    );
    const seconds = (Date.now() - started) / 1000;
    assert.deepEqual(done, { listed: TOTAL, scanned: TOTAL, matched: LISTED, failed: 0, other: 0 });

    // Each object scanned once (the log counts scans per location).
    const db = await worker.mf.getD1Database("HASH_LOG");
    const { results } = await db
      .prepare("SELECT scans, count(*) AS n FROM hash_log WHERE location LIKE 'r2://user-uploads/bulk/%' GROUP BY scans")
      .all();
    assert.deepEqual(results, [{ scans: 1, n: TOTAL }]);

    // Each listed object sighted once: 20 records (distinct SHA-256), count 1 each.
    const route = `r2://${BUCKET}/bulk/*`;
    const records = await worker.waitForReports((rs) => recordsFor(rs, route).length === LISTED, {
      prefix: "report/",
      timeoutMs: 20_000,
    });
    const mine = recordsFor(records, route);
    assert.deepEqual(mine.map((r) => r.value.count), Array(LISTED).fill(1));
    assert.deepEqual(
      mine.flatMap((r) => r.value.urls).sort(),
      files.filter((f) => f.startsWith("listed-")).map((f) => `r2://${BUCKET}/bulk/${f}`),
    );
    // Report only: the objects stay.
    assert.ok(await (await worker.mf.getR2Bucket("UPLOADS")).head("bulk/listed-00.jpg"));

    // Run again with the same generation: complete, nothing scanned again.
    const again = await admin("POST", "backfills", { bucket: BUCKET, prefix: "bulk/" });
    assert.deepEqual((await again.json()).progress, done);
    console.log(`# backfill: ${TOTAL} objects in ${seconds.toFixed(1)} s with a restart (${(TOTAL / seconds).toFixed(0)} objects/s)`);
  });
});

describe("retroactive matching", () => {
  test("an index upload that adds the hash of an object stored and an image served earlier raises their sightings", async () => {
    // Stored and served while not listed.
    const key = "old/camera.jpg";
    await upload(key, camera);
    const row = await waitFor("the clean scan", () => logRow(`r2://${BUCKET}/${key}`));
    assert.equal(row.result, "clean");
    const served = await worker.fetch("/photos/coffee.jpg");
    assert.equal(served.status, 200);
    await served.arrayBuffer();
    const edgeUrl = "http://hashgate.test/photos/coffee.jpg";
    const edge = await waitFor("the edge log row", () => logRow(edgeUrl));
    assert.equal(edge.result, "clean");

    // The new generation adds camera's PDQ and coffee's SHA-256 on a new list.
    const v2 = await buildIndex("stored-v2", {
      demo: DEMO_LIST,
      later: [`pdq,${row.pdq},later-camera`, `sha256,${sha256(coffee)},later-coffee`],
    });
    await worker.loadIndex(v2);
    await new Promise((r) => setTimeout(r, 1200)); // index.refresh_seconds
    const res = await admin("POST", "retro");
    const { pass } = await res.json();
    assert.ok(pass, "a pass started");
    const done = await waitFor("the pass", async () => {
      const p = await (await admin("GET", `retro/${pass}`)).json();
      return p.done === 1 ? p : null;
    });
    assert.equal(done.added, 2, "only the added hashes are matched");
    assert.ok(done.checked >= TOTAL + 3, `every logged row checked (${done.checked})`);
    // camera, the coffee uploaded to new/ earlier, and the coffee served.
    assert.equal(done.candidates, 3);

    // The stored object: scanned again, quarantined, recorded.
    const storedRoute = `r2://${BUCKET}/old/*`;
    const records = await worker.waitForReports(
      (rs) => recordsFor(rs, storedRoute).length === 1 && rs.some((r) => r.value.urls.includes(edgeUrl)),
      { prefix: "report/" },
    );
    const [stored] = recordsFor(records, storedRoute);
    assert.equal(stored.value.matches[0].list, "later");
    assert.deepEqual(stored.value.directions, ["stored"]);
    assert.equal(stored.value.actions.quarantined, 1);
    assert.equal(await (await worker.mf.getR2Bucket("UPLOADS")).head(key), null);
    assert.ok(await (await worker.mf.getR2Bucket("QUARANTINE")).head(`${BUCKET}/${key}`));
    // The served image: a sighting at its URL.
    const servedRecord = records.find((r) => r.value.urls.includes(edgeUrl));
    assert.equal(servedRecord.value.sha256, sha256(coffee));
    assert.equal(servedRecord.value.matches[0].id, "later-coffee");
    assert.deepEqual(servedRecord.value.directions, ["response"]);

    // Nothing new: no second pass.
    assert.equal((await (await admin("POST", "retro")).json()).pass, null);
  });
});
