// The flood guard (worker/src/flood_guard.rs) end to end: a list entry that
// matches more distinct images than `max_images` is suspended by the queue
// consumer in hg2/overrides, with an audit entry and an error log line;
// afterwards its matches are flagged (passed, still reported), never
// blocked, while other entries keep blocking; `hashgate index enable`
// turns it on again.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { FIXTURES_DIR, REPO_ROOT, startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST, E2E_DIR } from "./support/index.mjs";
import { assertBlocked } from "./support/compare.mjs";

const MAX_IMAGES = 3;
const REFRESH_S = 1;
const CHELSEA_PDQ = "5feb5321f01da156898e2b7629a5d3438412cdbd23f48942464526317db33ffd";
const COPIES = path.join(E2E_DIR, `flood-${process.pid}`);

let origin, worker;

before(async () => {
  // Distinct files (distinct SHA-256) with the same pixels: chelsea.jpg
  // with a different trailer after its end-of-image marker.
  const chelsea = await readFile(path.join(FIXTURES_DIR, "photos/chelsea.jpg"));
  await mkdir(COPIES, { recursive: true });
  for (let i = 0; i <= MAX_IMAGES + 2; i++) {
    await writeFile(path.join(COPIES, `copy-${i}.jpg`), Buffer.concat([chelsea, Buffer.from(`copy ${i}`)]));
  }
  origin = await startOrigin({ mounts: { "/copies": COPIES } });
  worker = await startWorker({
    origin: origin.url,
    logs: true,
    policy: {
      routes: [{ pattern: "*/*", action: "block", lists: ["demo"] }],
      index: { refresh_seconds: REFRESH_S },
      verdict_cache: { ttl_seconds: 0 },
      flood_guard: { max_images: MAX_IMAGES, window_seconds: 3600 },
    },
  });
  await worker.loadIndex(await buildIndex("flood", { demo: DEMO_LIST }));
});

after(async () => {
  await worker?.dispose();
  await origin?.close();
  await rm(COPIES, { recursive: true, force: true });
});

async function overrides() {
  const text = await (await worker.kv("HASH_INDEX")).get("hg2/overrides");
  return text ? JSON.parse(text) : null;
}

async function waitFor(what, predicate, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const settle = () => new Promise((r) => setTimeout(r, REFRESH_S * 1000 + 300));

describe("flood guard", () => {
  test("up to max_images distinct images block and suspend nothing", async () => {
    for (let i = 0; i < MAX_IMAGES; i++) {
      await assertBlocked(await worker.fetch(`/copies/copy-${i}.jpg`), `copy ${i}`);
    }
    // The same image again is not a new distinct image.
    await assertBlocked(await worker.fetch("/copies/copy-0.jpg"), "copy 0 again");
    await new Promise((r) => setTimeout(r, 2000));
    const value = await overrides();
    assert.ok(!value || value.entries.length === 0, `nothing suspended yet: ${JSON.stringify(value)}`);
  });

  test("one more distinct image suspends the entry, audited and logged", async () => {
    await assertBlocked(await worker.fetch(`/copies/copy-${MAX_IMAGES}.jpg`), "the image over the limit is still blocked");
    const value = await waitFor("the suspension", async () => {
      const v = await overrides();
      return v?.entries?.length ? v : null;
    });
    assert.equal(value.entries.length, 1);
    const entry = value.entries[0];
    assert.deepEqual(
      { list: entry.list, type: entry.type, hash: entry.hash, state: entry.state, by: entry.by },
      { list: "demo", type: "pdq", hash: CHELSEA_PDQ, state: "suspended", by: "flood-guard" },
    );
    assert.match(entry.reason, new RegExp(`matched ${MAX_IMAGES + 1} distinct images`));

    const reports = await worker.kv("REPORTS");
    const audit = await waitFor("the audit entry", async () => {
      const { keys } = await reports.list({ prefix: "audit/v1/" });
      for (const k of keys) {
        const e = JSON.parse(await reports.get(k.name));
        if (e.action === "suspend") return e;
      }
      return null;
    });
    assert.equal(audit.who, "flood-guard");
    assert.match(audit.detail, /suspended demo pdq/);

    const line = worker
      .logs()
      .split("\n")
      .map((l) => l.slice(l.indexOf("{")))
      .filter((l) => l.startsWith("{"))
      .map((l) => { try { return JSON.parse(l); } catch { return null; } })
      .find((l) => l?.event === "entry-suspended");
    assert.ok(line, "an entry-suspended log line");
    assert.equal(line.level, "error");
    assert.equal(line.list, "demo");
    assert.equal(line.distinct_images, MAX_IMAGES + 1);
  });

  test("a suspended entry's matches pass, flagged; other entries still block", async () => {
    await settle();
    const copy = `/copies/copy-${MAX_IMAGES + 1}.jpg`;
    const res = await worker.fetch(copy);
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(res.status, 200, "flagged, not blocked");
    assert.deepEqual(body, await readFile(path.join(COPIES, `copy-${MAX_IMAGES + 1}.jpg`)));
    // Still a sighting: its record says flagged.
    const reports = await worker.kv("REPORTS");
    await waitFor("a flagged record", async () => {
      const { keys } = await reports.list({ prefix: "report/v1/" });
      for (const k of keys) {
        const r = JSON.parse(await reports.get(k.name));
        if ((r.urls ?? []).some((u) => u.endsWith(copy)) && r.actions.flagged === 1) return r;
      }
      return null;
    });
    await assertBlocked(await worker.fetch("/photos/rocket.jpg"), "rocket's entry is not suspended");
  });

  test("`hashgate index enable` turns the entry on again", async () => {
    const file = path.join(COPIES, "overrides.json");
    await writeFile(file, JSON.stringify(await overrides()));
    const args = ["run", "--release", "--quiet", "-p", "hashgate-cli", "--", "index", "enable", "--list", "demo", "--type", "pdq", "--hash", CHELSEA_PDQ, "--by", "e2e", "--reason", "reviewed", "--file", file];
    await promisify(execFile)("cargo", args, { cwd: REPO_ROOT });
    await (await worker.kv("HASH_INDEX")).put("hg2/overrides", await readFile(file, "utf8"));
    await settle();
    await assertBlocked(await worker.fetch("/copies/copy-0.jpg"), "enabled again");
  });
});
