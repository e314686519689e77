// Index generations at the edge: what a first-seen image costs in KV reads,
// how soon an upload takes effect everywhere, and what happens when there is
// no index, a broken one, or a KV that fails. The worker reads the real
// local KV through a counting (and fault-injecting) wrapper.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { FIXTURES_DIR, REPO_ROOT, startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";
import { createFaults } from "./support/faults.mjs";
import { buildIndex, DEMO_LIST, hashFile } from "./support/index.mjs";
import { assertBlocked } from "./support/compare.mjs";

const run = promisify(execFile);
const REFRESH_S = 1;
const route = (extra = {}) => ({ pattern: "*/*", action: "block", lists: ["demo"], fail: "open", ...extra });
const closed = (extra = {}) => route({ pattern: "hashgate.test/closed/*", fail: "closed", ...extra });

let origin, demoIndex, coffee;
const workers = [];

before(async () => {
  origin = await startOrigin({ mounts: { "/closed": FIXTURES_DIR } });
  demoIndex = await buildIndex("generations", { demo: DEMO_LIST });
  coffee = await hashFile(path.join(FIXTURES_DIR, "photos/coffee.jpg"));
});

after(async () => {
  await Promise.all(workers.map((w) => w.dispose()));
  await origin?.close();
});

async function worker({ routes = [route(), closed()], persist = null } = {}) {
  const faults = createFaults();
  const miniflare = persist ? { kvPersist: path.join(persist, "kv"), cachePersist: path.join(persist, "cache") } : {};
  const w = await startWorker({
    origin: origin.url,
    policy: { routes, index: { refresh_seconds: REFRESH_S } },
    faults,
    miniflare,
  });
  w.faults = faults;
  workers.push(w);
  return w;
}

async function passes(w, url) {
  const res = await w.fetch(url);
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200, `${url}: ${body.toString().slice(0, 200)}`);
  return body;
}

async function refused(w, url) {
  const res = await w.fetch(url);
  const text = await res.text();
  assert.equal(res.status, 503, text);
  assert.doesNotMatch(text, /hg2|HASH_INDEX|generation/, "no internals in a public body");
}

async function unscanned(w, reason, url) {
  const records = await w.waitForReports((rs) => rs.some((r) => r.value.reason === reason && r.value.urls?.some((u) => u.endsWith(url))), {
    prefix: "unscanned/v1/",
  });
  return records.find((r) => r.value.reason === reason);
}

const wait = (ms) => new Promise((r) => setTimeout(r, ms));

describe("KV reads", () => {
  test("a fresh isolate reads the manifest and the snapshot once; later images read nothing", async () => {
    const w = await worker();
    const manifest = await w.loadIndex(demoIndex);
    assert.equal(manifest.layout, "resident");
    w.faults.resetCounts();
    await assertBlocked(await w.fetch("/photos/chelsea.jpg"), "listed, first image of the isolate");
    // A match also reads hg2/overrides (once per refresh interval, like the manifest).
    assert.equal(w.faults.keys.get, 1 + manifest.parts.length + 1, "manifest + parts + overrides");
    w.faults.resetCounts();
    await passes(w, "/photos/coffee.jpg");
    await passes(w, "/photos/camera.jpg");
    await assertBlocked(await w.fetch("/photos/rocket.jpg"), "listed by SHA-256");
    assert.equal(w.faults.keys.get, 0, "first-seen images in a warm isolate read no key");
    assert.equal(w.faults.keys.list, 0);
  });
});

describe("generations", () => {
  test("an upload that lists a clean image blocks it in every isolate within the refresh bound, and an allowlist lifts it", async () => {
    const persist = await mkdtemp(path.join(tmpdir(), "hashgate-gen-"));
    const routes = [route({ lists: ["*"] })];
    const a = await worker({ persist, routes });
    await a.loadIndex(demoIndex);
    const b = await worker({ persist, routes });
    await passes(a, "/photos/coffee.jpg");
    await passes(b, "/photos/coffee.jpg");

    await a.loadIndex(await buildIndex("generations-more", { demo: DEMO_LIST, more: [`pdq,${coffee.pdq},coffee-1`] }));
    const uploaded = Date.now();
    // Within the bound both isolates block it (a remembered clean verdict
    // belongs to the older generation and is not used).
    await wait(REFRESH_S * 1000 + 200);
    await assertBlocked(await a.fetch("/photos/coffee.jpg"), "isolate a, new generation");
    await assertBlocked(await b.fetch("/photos/coffee.jpg"), "isolate b, new generation");
    assert.ok(Date.now() - uploaded < REFRESH_S * 1000 + 5_000);

    const allow = path.join(tmpdir(), `allow-${process.pid}.csv`);
    await writeFile(allow, `pdq,${coffee.pdq},more\n`);
    const out = path.join(REPO_ROOT, "target", "e2e", "index-generations-allow");
    const listFile = path.join(REPO_ROOT, "target", "e2e", "lists-generations-more", "more.csv");
    await run("cargo", ["run", "--release", "--quiet", "-p", "hashgate-cli", "--", "index", "build", "--list", `demo=${DEMO_LIST}`, "--list", `more=${listFile}`, "--allow", allow, "--out", out], { cwd: REPO_ROOT });
    await a.loadIndex(out);
    await wait(REFRESH_S * 1000 + 200);
    await passes(a, "/photos/coffee.jpg");
    await passes(b, "/photos/coffee.jpg");
    await assertBlocked(await b.fetch("/photos/chelsea.jpg"), "still listed");
  });

  test("no index at all is a failure of its own (index-missing), never a clean verdict, and nothing is remembered", async () => {
    const w = await worker();
    await passes(w, "/photos/chelsea.jpg");
    const record = await unscanned(w, "index-missing", "/photos/chelsea.jpg");
    assert.equal(record.value.reason, "index-missing");
    await refused(w, "/closed/photos/chelsea.jpg");
    await w.loadIndex(demoIndex);
    await wait(REFRESH_S * 1000 + 200);
    await assertBlocked(await w.fetch("/photos/chelsea.jpg"), "after the upload");
    await assertBlocked(await w.fetch("/closed/photos/chelsea.jpg"), "after the upload, closed");
  });

  test("KV failing before the isolate holds an index takes the fail mode; nothing is remembered", async () => {
    const w = await worker();
    await w.loadIndex(demoIndex);
    w.faults.kv = "fail";
    await passes(w, "/photos/chelsea.jpg");
    await unscanned(w, "index-unavailable", "/photos/chelsea.jpg");
    await refused(w, "/closed/photos/chelsea.jpg");
    w.faults.heal();
    await assertBlocked(await w.fetch("/photos/chelsea.jpg"), "healed");
  });

  test("a snapshot part that does not verify is index-corrupt", async () => {
    const w = await worker();
    const manifest = await w.loadIndex(demoIndex);
    const kv = await w.kv("HASH_INDEX");
    const part = Buffer.from(await readFile(path.join(demoIndex, "kv-part-0.bin")));
    part[part.length - 40] ^= 0x01;
    await kv.put(manifest.parts[0], part.buffer.slice(part.byteOffset, part.byteOffset + part.byteLength));
    await passes(w, "/photos/chelsea.jpg");
    await unscanned(w, "index-corrupt", "/photos/chelsea.jpg");
    await refused(w, "/closed/photos/chelsea.jpg");
  });

  test("a route subscribing to a list the index does not hold is unknown-list, not a silent miss", async () => {
    const w = await worker({ routes: [route({ lists: ["dmeo"] }), closed({ lists: ["dmeo"] })] });
    await w.loadIndex(demoIndex);
    await passes(w, "/photos/chelsea.jpg");
    const record = await unscanned(w, "unknown-list", "/photos/chelsea.jpg");
    assert.equal(record.value.reason, "unknown-list");
    await refused(w, "/closed/photos/chelsea.jpg");
  });
});

describe("upload commands", () => {
  test("the commands `hashgate index build` prints load the index into wrangler's local KV", async () => {
    const state = await mkdtemp(path.join(tmpdir(), "hashgate-wrangler-"));
    const out = path.join(REPO_ROOT, "target", "e2e", "index-wrangler");
    const { stdout } = await run("cargo", ["run", "--release", "--quiet", "-p", "hashgate-cli", "--", "index", "build", "--list", `demo=${DEMO_LIST}`, "--out", out], { cwd: REPO_ROOT });
    const commands = stdout.split("\n").map((l) => l.trim()).filter((l) => l.startsWith("npx wrangler kv "));
    assert.ok(commands.length >= 2, stdout);
    assert.ok(commands.every((c) => c.includes("--remote")), "production commands say --remote");
    assert.ok(commands.at(-1).includes("hg2/current"), "the manifest goes last");
    for (const command of commands) {
      const args = command.replace(/^npx wrangler /, "").split(/\s+/).map((a) => (a === "--remote" ? "--local" : a));
      await run(path.join(REPO_ROOT, "node_modules", ".bin", "wrangler"), [...args, "--persist-to", state], {
        cwd: REPO_ROOT,
        env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
      });
    }
    // The worker over the same local state, as `wrangler dev --persist-to` would run it.
    const id = (await readFile(path.join(REPO_ROOT, "wrangler.toml"), "utf8")).match(/binding = "HASH_INDEX"\s*\nid = "(\w+)"/)[1];
    const w = await startWorker({
      origin: origin.url,
      policy: { routes: [route()] },
      miniflare: { kvNamespaces: { HASH_INDEX: id, REPORTS: "REPORTS" }, kvPersist: path.join(state, "v3", "kv") },
    });
    workers.push(w);
    await assertBlocked(await w.fetch("/photos/chelsea.jpg"), "index uploaded by wrangler");
    await passes(w, "/photos/coffee.jpg");
  });
});
