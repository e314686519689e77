// Evidence is never lost silently: when R2 refuses every attempt, the
// encrypted object waits in the evidence outbox (REPORTS KV) and the cron
// tick moves it into the EVIDENCE bucket once R2 takes writes again.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { FIXTURES_DIR, sha256, startOrigin } from "./support/origin.mjs";
import { EVIDENCE_KEY, EVIDENCE_KEY_ID, startWorker } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST } from "./support/index.mjs";
import { assertBlocked } from "./support/compare.mjs";
import { createFaults } from "./support/faults.mjs";
import { listKeys, openEvidence, readObject, waitForEvidence } from "./support/evidence.mjs";

const chelsea = await readFile(path.join(FIXTURES_DIR, "photos/chelsea.jpg"));
const CHELSEA = sha256(chelsea);
let origin, worker, faults;

before(async () => {
  origin = await startOrigin();
  faults = createFaults({ r2: true });
  worker = await startWorker({
    origin: origin.url,
    policy: { routes: [{ pattern: "*/*", action: "block", lists: ["demo"] }] },
    faults,
  });
  await worker.loadIndex(await buildIndex("evidence-outbox", { demo: DEMO_LIST }));
});

after(async () => {
  await worker?.dispose();
  await origin?.close();
});

test("R2 refusing every write: the evidence waits in the outbox, then reaches R2", async () => {
  faults.r2 = "fail";
  await assertBlocked(await worker.fetch("/photos/chelsea.jpg"), "chelsea");
  const kv = await worker.kv("REPORTS");
  let keys = [];
  for (let i = 0; i < 100 && keys.length < 2; i++) {
    keys = (await kv.list({ prefix: "evidence-outbox/v1/" })).keys.map((k) => k.name);
    if (keys.length < 2) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(keys.includes(`evidence-outbox/v1/evidence/v1/${CHELSEA}/object`), JSON.stringify(keys));
  assert.ok(keys.some((k) => k.startsWith(`evidence-outbox/v1/evidence/v1/${CHELSEA}/sighting/`)));
  assert.ok(faults.calls.r2Failed >= 6, `each object tried 3 times: ${faults.calls.r2Failed}`);
  assert.equal(await kv.get("evidence-outbox/pending"), "1");
  // Encrypted in the outbox too.
  const kept = Buffer.from(await kv.get(`evidence-outbox/v1/evidence/v1/${CHELSEA}/object`, "arrayBuffer"));
  assert.equal(kept.indexOf(chelsea.subarray(0, 32)), -1);
  const bucket = await worker.r2();
  assert.deepEqual(await listKeys(bucket, `evidence/v1/${CHELSEA}/`), []);

  // Still failing: a tick leaves everything where it is.
  await worker.scheduled();
  assert.equal((await kv.list({ prefix: "evidence-outbox/v1/" })).keys.length, 2);

  faults.heal();
  await worker.scheduled();
  await waitForEvidence(bucket, `evidence/v1/${CHELSEA}/`, (k) => k.length === 2);
  const { plain, digest } = openEvidence(await readObject(bucket, `evidence/v1/${CHELSEA}/object`), { [EVIDENCE_KEY_ID]: EVIDENCE_KEY });
  assert.deepEqual(plain, chelsea);
  assert.equal(digest, CHELSEA);
  assert.equal((await kv.list({ prefix: "evidence-outbox/v1/" })).keys.length, 0, "drained");
  assert.equal(await kv.get("evidence-outbox/pending"), null);
});
