// Observability: one structured JSON log line for every match and every
// image that could not be checked (level, event, route, list, reason,
// request id), a Workers Analytics Engine data point with the right
// dimensions for each, and the 451 body's wording per list.
//
// Logs are workerd's own stdout/stderr (Miniflare's handleRuntimeStdio);
// data points are what the worker hands to the HASHGATE_EVENTS binding's
// writeDataPoint (a recorder in place of Miniflare's local dataset, which
// discards them).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { FIXTURES_DIR, startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST } from "./support/index.mjs";

const NCII_MESSAGE = "it was reported as shared without the consent of the people in it.";

let origin, worker;

before(async () => {
  origin = await startOrigin({ mounts: { "/flag": FIXTURES_DIR, "/small": FIXTURES_DIR, "/ncii": FIXTURES_DIR } });
  worker = await startWorker({
    origin: origin.url,
    recordAnalytics: true,
    policy: {
      routes: [
        { pattern: "*/*", action: "block", lists: ["demo"] },
        { pattern: "hashgate.test/ncii/*", action: "block", lists: ["ncii"] },
        { pattern: "hashgate.test/flag/*", action: "flag", lists: ["demo"] },
        { pattern: "hashgate.test/small/*", action: "block", lists: ["demo"], max_bytes: 1000 },
      ],
      block_messages: { ncii: NCII_MESSAGE },
    },
  });
  // The same entries under a second list name, so a route can block on "ncii".
  await worker.loadIndex(await buildIndex("observability", { demo: DEMO_LIST, ncii: DEMO_LIST }));
});

after(async () => {
  await worker?.dispose();
  await origin?.close();
});

/** The JSON log lines the worker printed so far. */
function jsonLines() {
  return worker
    .logs()
    .split("\n")
    .map((line) => line.slice(line.indexOf("{")))
    .filter((line) => line.startsWith("{\"")) // JSON objects only
    .flatMap((line) => {
      try {
        return [JSON.parse(line)];
      } catch {
        return [];
      }
    })
    .filter((v) => typeof v.event === "string" && "level" in v);
}

async function settle(predicate, what) {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if (predicate()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}; logs:\n${worker.logs().slice(-3000)}`);
}

describe("logs and counters", () => {
  test("a 451 logs one JSON line with the route and list, and counts it", async () => {
    const res = await worker.fetch("/photos/chelsea.jpg");
    assert.equal(res.status, 451);
    const body = await res.text();
    assert.match(body, /child sexual abuse material/, "the default wording for a list without its own");
    const id = body.match(/request id (\S+?)\.?\n/)[1];
    await settle(() => jsonLines().some((l) => l.request_id === id), "the match line");
    const lines = jsonLines().filter((l) => l.request_id === id);
    assert.equal(lines.length, 1, JSON.stringify(lines));
    const [line] = lines;
    assert.equal(line.level, "info");
    assert.equal(line.event, "match");
    assert.equal(line.route, "*/*");
    assert.equal(line.list, "demo");
    assert.equal(line.reason, null);
    assert.equal(line.action, "blocked");
    assert.equal(line.entry, "demo-chelsea");
    assert.equal(line.url, "http://hashgate.test/photos/chelsea.jpg");

    await settle(() => worker.dataPoints().some((p) => p.blobs?.[1] === "*/*" && p.blobs?.[0] === "blocked"), "the data point");
    const points = worker.dataPoints().filter((p) => p.blobs[1] === "*/*");
    assert.equal(points.length, 1, JSON.stringify(points));
    assert.deepEqual(points[0].indexes, ["*/*"]);
    assert.deepEqual(points[0].blobs, ["blocked", "*/*", "demo", "", "response", "blocked"]);
    assert.equal(points[0].doubles[0], 1);
    assert.ok(points[0].doubles[1] >= 0 && points[0].doubles[1] <= 31);
  });

  test("the 451 wording is the list's own when the policy gives one", async () => {
    const res = await worker.fetch("/ncii/photos/chelsea.jpg");
    assert.equal(res.status, 451);
    const body = await res.text();
    assert.ok(body.includes(`This image is not available: ${NCII_MESSAGE}`), body);
    assert.doesNotMatch(body, /child sexual abuse/);
    await settle(() => worker.dataPoints().some((p) => p.blobs[2] === "ncii"), "the ncii data point");
    const point = worker.dataPoints().find((p) => p.blobs[2] === "ncii");
    assert.deepEqual(point.blobs, ["blocked", "hashgate.test/ncii/*", "ncii", "", "response", "blocked"]);
  });

  test("a flagged match counts as flagged", async () => {
    const res = await worker.fetch("/flag/photos/chelsea.jpg");
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    await settle(() => worker.dataPoints().some((p) => p.blobs[1] === "hashgate.test/flag/*"), "the flagged data point");
    const point = worker.dataPoints().find((p) => p.blobs[1] === "hashgate.test/flag/*");
    assert.deepEqual(point.blobs, ["flagged", "hashgate.test/flag/*", "demo", "", "response", "flagged"]);
    const line = jsonLines().find((l) => l.event === "match" && l.route === "hashgate.test/flag/*");
    assert.equal(line.action, "flagged");
  });

  test("an image that could not be checked logs one line with its reason, and counts by reason", async () => {
    const res = await worker.fetch("/small/photos/rocket.jpg");
    assert.equal(res.status, 200, "fail open");
    await res.arrayBuffer();
    await settle(() => jsonLines().some((l) => l.event === "unscanned" && l.route === "hashgate.test/small/*"), "the unscanned line");
    const lines = jsonLines().filter((l) => l.event === "unscanned" && l.route === "hashgate.test/small/*");
    assert.equal(lines.length, 1);
    assert.equal(lines[0].level, "warn");
    assert.equal(lines[0].reason, "over-cap");
    assert.equal(lines[0].list, null);
    assert.match(lines[0].request_id, /\S/);
    await settle(() => worker.dataPoints().some((p) => p.blobs[0] === "unscanned"), "the unscanned data point");
    const point = worker.dataPoints().find((p) => p.blobs[0] === "unscanned");
    assert.deepEqual(point.blobs, ["unscanned", "hashgate.test/small/*", "", "over-cap", "response", "passed"]);
    assert.deepEqual(point.indexes, ["hashgate.test/small/*"]);
  });

  test("a clean image logs nothing and counts nothing", async () => {
    const before = worker.dataPoints().length;
    const lines = jsonLines().length;
    const res = await worker.fetch("/photos/coffee.jpg");
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(worker.dataPoints().length, before);
    assert.equal(jsonLines().length, lines);
  });
});
