// List hygiene at the edge: PDQ quality, per-list distance, negative lists
// and overrides (an entry disabled without rebuilding), each against the
// built worker in workerd, an index built by the real CLI and a real origin.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startOrigin, FIXTURES_DIR } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST, E2E_DIR } from "./support/index.mjs";
import { execFile } from "node:child_process";
import { mkdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { REPO_ROOT } from "./support/origin.mjs";
import { assertBlocked, assertPassesUntouched } from "./support/compare.mjs";

// fixtures/manifest.json: exact/synthetic-5x5.png has PDQ quality 20.
const LOW_Q_PDQ = "64d96c5b9b269b26318c6e5b318c91a4ce7364d964d96c5b9b269b26318c6e5b";
const LOW_Q_SHA256 = "46b7d7585e408ff66e30a457082b2b164ea6dc456755568735c198092dc95ea0";
// fixtures/lists/demo.csv: chelsea by PDQ.
const CHELSEA_PDQ = "5feb5321f01da156898e2b7629a5d3438412cdbd23f48942464526317db33ffd";

/** `hash` with `bits` of its bits flipped (the lowest ones). */
function flip(hash, bits) {
  const bytes = Buffer.from(hash, "hex");
  for (let bit = 0; bit < bits; bit++) bytes[31 - (bit >> 3)] ^= 1 << (bit & 7);
  return bytes.toString("hex");
}

const MOUNTS = ["lowq", "lowqoff", "digest", "tight", "loose", "negative", "plain"];
let origin, index;
const workers = [];

before(async () => {
  origin = await startOrigin({ mounts: Object.fromEntries(MOUNTS.map((m) => [`/${m}`, FIXTURES_DIR])) });
  index = await buildIndex("hygiene", {
    demo: DEMO_LIST,
    lowq: [`pdq,${LOW_Q_PDQ},lowq-1`],
    lowqsha: [`sha256,${LOW_Q_SHA256},lowq-2`],
    // chelsea's hash, 12 bits away.
    far: [`pdq,${flip(CHELSEA_PDQ, 12)},far-1`],
    stock: [`pdq,${CHELSEA_PDQ},stock-1`],
  });
});

after(async () => {
  await Promise.all(workers.map((w) => w.dispose()));
  await origin?.close();
});

async function worker(routes, extra = {}) {
  const w = await startWorker({ origin: origin.url, policy: { routes, verdict_cache: { ttl_seconds: 0 }, ...extra } });
  workers.push(w);
  await w.loadIndex(index);
  return w;
}

const route = (mount, fields) => ({ pattern: `*/${mount}/*`, action: "block", ...fields });

describe("hygiene rules at the edge", () => {
  let w;
  before(async () => {
    w = await worker([
      route("lowq", { lists: ["lowq"] }),
      route("lowqoff", { lists: ["lowq"], min_pdq_quality: 0 }),
      route("digest", { lists: ["lowqsha"] }),
      route("tight", { lists: ["far"], list_distance: { far: 6 } }),
      route("loose", { lists: ["far"] }),
      route("negative", { lists: ["demo"], negative_lists: ["stock"] }),
      route("plain", { lists: ["demo"] }),
    ]);
  });

  test("an image of PDQ quality below 50 is not matched by PDQ by default", async () => {
    await assertPassesUntouched(w, origin, "/lowq/exact/synthetic-5x5.png");
  });

  test("min_pdq_quality 0 matches it again", async () => {
    await assertBlocked(await w.fetch("/lowqoff/exact/synthetic-5x5.png"), "quality rule off");
  });

  test("its digests still match", async () => {
    await assertBlocked(await w.fetch("/digest/exact/synthetic-5x5.png"), "sha256 of a low-quality image");
  });

  test("a per-list distance below the match's distance lets the image through", async () => {
    await assertPassesUntouched(w, origin, "/tight/photos/chelsea.jpg");
    await assertBlocked(await w.fetch("/loose/photos/chelsea.jpg"), "same list, route threshold 31");
  });

  test("a match on a negative list cancels the image's matches, and only that image's", async () => {
    await assertPassesUntouched(w, origin, "/negative/photos/chelsea.jpg");
    await assertBlocked(await w.fetch("/plain/photos/chelsea.jpg"), "without the negative list");
    await assertBlocked(await w.fetch("/negative/photos/rocket.jpg"), "rocket is on demo, not on stock");
  });
});

/** `hashgate index disable|enable` on `file`; returns the file's text (what gets uploaded). */
async function overridesCommand(verb, file) {
  const args = ["run", "--release", "--quiet", "-p", "hashgate-cli", "--", "index", verb, "--list", "demo", "--type", "pdq", "--hash", CHELSEA_PDQ, "--by", "e2e", "--reason", "review", "--file", file];
  const { stdout } = await promisify(execFile)("cargo", args, { cwd: REPO_ROOT });
  assert.match(stdout, /wrangler kv key put --binding HASH_INDEX --remote hg2\/overrides --path /);
  return readFile(file, "utf8");
}

describe("overrides: one entry disabled without rebuilding", () => {
  test("`hashgate index disable` lets the image through; `enable` blocks it again", async () => {
    const w = await worker([route("plain", { lists: ["demo"] })], { index: { refresh_seconds: 1 } });
    await assertBlocked(await w.fetch("/plain/photos/chelsea.jpg"), "before");
    const kv = await w.kv("HASH_INDEX");
    await mkdir(E2E_DIR, { recursive: true });
    const file = path.join(E2E_DIR, `overrides-hygiene-${process.pid}.json`);
    await rm(file, { force: true });
    await kv.put("hg2/overrides", await overridesCommand("disable", file));
    await new Promise((r) => setTimeout(r, 1100));
    await assertPassesUntouched(w, origin, "/plain/photos/chelsea.jpg");
    // Other entries of the list still block.
    await assertBlocked(await w.fetch("/plain/photos/rocket.jpg"), "rocket's entry is not disabled");
    await kv.put("hg2/overrides", await overridesCommand("enable", file));
    await new Promise((r) => setTimeout(r, 1100));
    await assertBlocked(await w.fetch("/plain/photos/chelsea.jpg"), "enabled again");
    await rm(file, { force: true });
  });

  test("an image allowed for a list is no match there", async () => {
    const w = await worker([route("plain", { lists: ["demo"] })], { index: { refresh_seconds: 1 } });
    const kv = await w.kv("HASH_INDEX");
    const sha256 = "96677f79beb3872970f2d3d907e5063b9e42aa5b1fba85fa2d55e7f2ad681ff6"; // rocket.jpg
    await kv.put(
      "hg2/overrides",
      JSON.stringify({ v: 1, updated_unix: 1, entries: [], allowed: [{ list: "demo", sha256, pdq: null, at: "t", by: "test", reason: "fp" }] }),
    );
    await new Promise((r) => setTimeout(r, 1100));
    await assertPassesUntouched(w, origin, "/plain/photos/rocket.jpg");
    await assertBlocked(await w.fetch("/plain/photos/chelsea.jpg"), "chelsea is not allowed");
  });

  test("an invalid overrides value is ignored, never clears anything", async () => {
    const w = await worker([route("plain", { lists: ["demo"] })], { index: { refresh_seconds: 1 } });
    const kv = await w.kv("HASH_INDEX");
    await kv.put("hg2/overrides", JSON.stringify({ v: 1, entries: [{ list: "demo", type: "pdq", hash: "nothex", state: "disabled", at: "t", by: "x" }] }));
    await new Promise((r) => setTimeout(r, 1100));
    await assertBlocked(await w.fetch("/plain/photos/chelsea.jpg"), "invalid overrides");
  });
});
