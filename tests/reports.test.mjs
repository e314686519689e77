// Reporting: match events go through the MATCH_EVENTS queue to the
// consumer, which writes deduplicated records to REPORTS (kept one year)
// and posts HMAC-signed notifications to the route's webhook, retrying
// failures and dead-lettering what never succeeds.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { FIXTURES_DIR, REPO_ROOT, sha256, startOrigin } from "./support/origin.mjs";
import { startWorker, WEBHOOK_SECRET } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST, E2E_DIR } from "./support/index.mjs";
import { assertBlocked, assertPassesUntouched } from "./support/compare.mjs";
import { startWebhook, verifySignature } from "./support/webhook.mjs";

const VARIANTS = path.join(E2E_DIR, "variants");
const YEAR_S = 365 * 24 * 3600;
const chelsea = await readFile(path.join(FIXTURES_DIR, "photos/chelsea.jpg"));
const rocket = await readFile(path.join(FIXTURES_DIR, "photos/rocket.jpg"));
const CHELSEA_SHA = sha256(chelsea);
const ROCKET_SHA = sha256(rocket);

let origin, worker, hook, flaky, down;

before(async () => {
  await promisify(execFile)("python3", [path.join(REPO_ROOT, "tests/support/images.py"), "variants", VARIANTS]);
  hook = await startWebhook({ secret: WEBHOOK_SECRET });
  flaky = await startWebhook({ secret: WEBHOOK_SECRET, failFirst: 2 });
  down = await startWebhook({ secret: WEBHOOK_SECRET, alwaysFail: true });
  origin = await startOrigin({
    mounts: { "/variants": VARIANTS, "/flag": FIXTURES_DIR, "/flaky": FIXTURES_DIR, "/down": FIXTURES_DIR },
  });
  const route = (pattern, action, webhook) => ({ pattern, action, lists: ["demo"], notify: { webhook } });
  worker = await startWorker({
    origin: origin.url,
    policy: {
      routes: [
        route("*/*", "block", hook.url),
        route("hashgate.test/flag/*", "flag", hook.url),
        route("hashgate.test/flaky/*", "block", flaky.url),
        route("hashgate.test/down/*", "block", down.url),
      ],
    },
    consumer: { maxRetries: 2 },
  });
  await worker.loadIndex(await buildIndex("reports", { demo: DEMO_LIST }));
});

after(async () => {
  await worker?.dispose();
  await origin?.close();
  await Promise.all([hook?.close(), flaky?.close(), down?.close()]);
});

const recordFor = (records, sha, route) =>
  records.find((r) => r.key.startsWith(`report/v1/${sha}/`) && r.value.route === route);

describe("report records and notifications", () => {
  test("flag: the original passes and the event is reported", async () => {
    await assertPassesUntouched(worker, origin, "/flag/photos/chelsea.jpg");
    const records = await worker.waitForReports((rs) => recordFor(rs, CHELSEA_SHA, "hashgate.test/flag/*"), {
      prefix: "report/",
    });
    const { value, expiration } = recordFor(records, CHELSEA_SHA, "hashgate.test/flag/*");
    assert.equal(value.type, "match");
    assert.equal(value.count, 1);
    assert.deepEqual(value.actions, { blocked: 0, flagged: 1, passed: 0, refused: 0 });
    assert.equal(value.matches[0].list, "demo");
    assert.equal(value.matches[0].id, "demo-chelsea");
    assert.equal(value.matches[0].type, "pdq");
    assert.ok(value.matches[0].distance <= 31);
    assert.equal(value.sha256, CHELSEA_SHA);
    assert.match(value.pdq, /^[0-9a-f]{64}$/);
    assert.deepEqual(value.urls, ["http://hashgate.test/flag/photos/chelsea.jpg"]);
    // Kept one year from now (KV expiration, seconds since the epoch).
    const now = Date.now() / 1000;
    assert.ok(Math.abs(expiration - (now + YEAR_S)) < 120, `expiration ${expiration} is not ~1 year ahead`);

    const [delivery] = await hook.waitFor((ds) => ds.some((d) => d.json?.event?.action === "flagged"));
    assert.equal(delivery.signatureValid, true);
  });

  test("block: 451, a record, and one signed notification with the event", async () => {
    const res = await worker.fetch("/photos/chelsea.jpg");
    await assertBlocked(res, "chelsea");
    await worker.waitForReports((rs) => recordFor(rs, CHELSEA_SHA, "*/*"), { prefix: "report/" });
    const deliveries = await hook.waitFor((ds) => ds.some((d) => d.json?.event?.route === "*/*"));
    const delivery = deliveries.find((d) => d.json.event.route === "*/*");

    assert.equal(delivery.method, "POST");
    assert.equal(delivery.headers["content-type"], "application/json");
    assert.equal(delivery.headers["x-hashgate-event"], "match");
    assert.equal(delivery.headers["x-hashgate-delivery"], delivery.json.event.id);
    assert.equal(delivery.signatureValid, true, "HMAC-SHA256 of the body with the shared secret");
    assert.equal(verifySignature("another secret", delivery.raw, delivery.headers["x-hashgate-signature"]), false);

    const { v, type, event, report } = delivery.json;
    assert.equal(v, 1);
    assert.equal(type, "hashgate.match");
    assert.equal(event.v, 2);
    assert.equal(event.type, "match");
    assert.equal(event.action, "blocked");
    assert.equal(event.direction, "response");
    assert.equal(event.url, "http://hashgate.test/photos/chelsea.jpg");
    assert.equal(event.matches[0].list, "demo");
    assert.equal(event.matches[0].id, "demo-chelsea");
    assert.equal(event.matches[0].type, "pdq");
    assert.equal(event.sha256, CHELSEA_SHA);
    assert.match(event.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(event.request_id, "request id");
    // The request id in the event is the one the 451 body quotes.
    assert.ok(typeof event.matches[0].distance === "number");
    assert.match(report.key, new RegExp(`^report/v1/${CHELSEA_SHA}/[0-9a-f]{16}$`));
    assert.equal(report.count, 1);
    // Identities only: no image bytes anywhere in the notification.
    assert.ok(delivery.raw.length < 4096, `notification is ${delivery.raw.length} bytes`);
    assert.ok(!delivery.raw.includes(chelsea.subarray(0, 64).toString("base64")));
  });

  test("repeats of the same image count on one record and notify once", async () => {
    for (let i = 0; i < 3; i++) {
      await assertBlocked(await worker.fetch("/photos/chelsea.jpg"), `repeat ${i}`);
    }
    // Same bytes at another URL: same record.
    await assertBlocked(await worker.fetch("/variants/chelsea-copy.jpg"), "copy");
    const records = await worker.waitForReports((rs) => recordFor(rs, CHELSEA_SHA, "*/*")?.value.count === 5, {
      prefix: "report/",
    });
    const { value } = recordFor(records, CHELSEA_SHA, "*/*");
    assert.equal(value.actions.blocked, 5);
    assert.deepEqual(value.urls.sort(), [
      "http://hashgate.test/photos/chelsea.jpg",
      "http://hashgate.test/variants/chelsea-copy.jpg",
    ]);
    assert.ok(value.last_seen >= value.first_seen);
    assert.ok(value.notified_at, "notified");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(hook.deliveries.filter((d) => d.json?.report?.key === value.key).length, 1, "one notification per record");
  });

  test("an exact-digest match is reported with its type", async () => {
    await assertBlocked(await worker.fetch("/photos/rocket.jpg"), "rocket");
    const deliveries = await hook.waitFor((ds) => ds.some((d) => d.json?.event?.sha256 === ROCKET_SHA));
    const { event } = deliveries.find((d) => d.json?.event?.sha256 === ROCKET_SHA).json;
    assert.equal(event.matches[0].type, "sha256");
    assert.equal(event.matches[0].hash, ROCKET_SHA);
    assert.equal(event.matches[0].distance, 0);
    assert.equal(event.matches[0].id, "demo-rocket-exact");
  });

  test("a failing webhook is retried until it succeeds; the sighting counts once", async () => {
    await assertBlocked(await worker.fetch("/flaky/photos/chelsea.jpg"), "flaky");
    await flaky.waitFor((ds) => ds.some((d) => d.status === 204));
    assert.equal(flaky.deliveries.length, 3, "two failures, then success");
    assert.ok(flaky.deliveries.every((d) => d.signatureValid));
    assert.equal(new Set(flaky.deliveries.map((d) => d.headers["x-hashgate-delivery"])).size, 1, "same event each time");
    const records = await worker.waitForReports(
      (rs) => recordFor(rs, CHELSEA_SHA, "hashgate.test/flaky/*")?.value.notified_at,
      { prefix: "report/" },
    );
    assert.equal(recordFor(records, CHELSEA_SHA, "hashgate.test/flaky/*").value.count, 1);
  });

  test("a webhook that never succeeds: the record is kept and the event lands in the dead-letter store", async () => {
    await assertBlocked(await worker.fetch("/down/photos/chelsea.jpg"), "down");
    const dead = await worker.waitForReports((rs) => rs.length > 0, { prefix: "dead/v1/" });
    assert.equal(dead.length, 1);
    const { value, expiration } = dead[0];
    assert.equal(value.queue, "hashgate-dlq");
    assert.equal(value.body.route, "hashgate.test/down/*");
    assert.equal(value.body.sha256, CHELSEA_SHA);
    assert.equal(dead[0].key, `dead/v1/${value.body.id}`);
    assert.ok(Math.abs(expiration - (Date.now() / 1000 + YEAR_S)) < 120);
    // 1 delivery + 2 retries.
    assert.equal(down.deliveries.length, 3);
    const records = await worker.waitForReports((rs) => recordFor(rs, CHELSEA_SHA, "hashgate.test/down/*"), {
      prefix: "report/",
    });
    const record = recordFor(records, CHELSEA_SHA, "hashgate.test/down/*").value;
    assert.equal(record.count, 1);
    assert.equal(record.notified_at, null);
  });
});
