// Benchmark of the index at the edge: KV keys read and written, workerd CPU
// and wasm memory, for indexes of N PDQ hashes (the demo list plus N random
// hashes), with the built worker in workerd (Miniflare), the real local KV
// behind a counting wrapper (tests/support/faults.mjs counts keys as
// Cloudflare bills them: a bulk read of 100 keys is 100 reads) and the Cache
// API persisted, so that a second Miniflare on the same storage is a second
// isolate of the same colo. A benchmark, not a test: it prints figures.
//
//   node scripts/bench-index.mjs [--sizes 10000,100000,1000000] [--runs 30] [--buckets-up-to 100000]
//
// Per size, default policy (T = 31, dihedral variants, every list):
// * keys read: the first image of a fresh isolate (manifest + snapshot
//   parts), a first-seen image in a warm isolate, the same image again, the
//   same image in a fresh Miniflare on the same persisted KV and cache;
// * KV writes of a full upload (parts + manifest);
// * the bucket layout (`--layout buckets`) beside it, up to --buckets-up-to:
//   keys read for a first-seen image, keys written;
// * workerd CPU per first-seen 1 MP JPEG (verdict memory off, so every
//   request is decoded, hashed and matched), median of --runs, beside a
//   proxy-only route; the one-time index load (the first request's CPU);
// * the isolate's wasm memory once the index is loaded.
// Results also go to target/bench/index-bench.json.

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { FIXTURES_DIR, REPO_ROOT, startOrigin } from "../tests/support/origin.mjs";
import { startWorker } from "../tests/support/worker.mjs";
import { createFaults } from "../tests/support/faults.mjs";
import { buildIndex, DEMO_LIST } from "../tests/support/index.mjs";
import { fmt, measure, series, startMeasuredWorker } from "./lib/workerd-cpu.mjs";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const SIZES = arg("--sizes", "10000,100000").split(",").map(Number);
const RUNS = Number(arg("--runs", 30));
const BUCKETS_UP_TO = Number(arg("--buckets-up-to", 100000));
const OUT = path.join(REPO_ROOT, "target", "bench");
const IMAGES = path.join(OUT, "images");
const env = { ...process.env, WRANGLER_SEND_METRICS: "false", WRANGLER_HIDE_BANNER: "true", CLOUDFLARE_CF_FETCH_ENABLED: "false" };
const log = (...a) => console.error("[bench-index]", ...a);

/** N random PDQ lines (SplitMix64, fixed seed: the same list every run). */
function randomList(n) {
  let state = 0x9e3779b97f4a7c15n;
  const mask = (1n << 64n) - 1n;
  const next = () => {
    state = (state + 0x9e3779b97f4a7c15n) & mask;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask;
    return (z ^ (z >> 31n)).toString(16).padStart(16, "0");
  };
  const lines = new Array(n);
  for (let i = 0; i < n; i++) lines[i] = `pdq,${next()}${next()}${next()}${next()},r-${i}`;
  return lines;
}

log("building the worker (skipped if up to date)");
execFileSync("bash", [path.join(REPO_ROOT, "scripts/build-worker.sh")], { stdio: ["ignore", "ignore", "inherit"], env });
mkdirSync(IMAGES, { recursive: true });
execFileSync("python3", [path.join(REPO_ROOT, "tests/support/images.py"), "sizes", IMAGES], { stdio: "ignore" });

const origin = await startOrigin({ root: IMAGES, mounts: { "/scan": IMAGES, "/proxy": IMAGES, "/fixtures": FIXTURES_DIR } });
const route = { pattern: "*/scan/*", action: "block", lists: ["*"], pdq_threshold: 31, variants: "dihedral", max_bytes: 25 << 20 };
const fixtureRoute = { ...route, pattern: "*/fixtures/*" };
const remembering = { routes: [route, fixtureRoute] };
const forgetful = { routes: [route, fixtureRoute], verdict_cache: { ttl_seconds: 0 } };
const IMAGE = "/scan/photo-1mp.jpg";
const results = { runs: RUNS, sizes: {} };

async function counted(opts) {
  const faults = createFaults();
  const worker = await startWorker({ origin: origin.url, faults, bindings: { DEBUG: "1" }, ...opts });
  return { worker, faults };
}

async function get(worker, url) {
  const res = await worker.fetch(url);
  await res.arrayBuffer();
  return res;
}

try {
  for (const n of SIZES) {
    log(`N = ${n}: building the index`);
    const lists = { demo: DEMO_LIST, random: randomList(n) };
    const dir = await buildIndex(`bench-${n}`, lists);
    const row = {};

    // Keys read, with the Cache API and KV persisted between two isolates.
    const persist = mkdtempSync(path.join(tmpdir(), "hashgate-bench-"));
    const miniflare = { kvPersist: path.join(persist, "kv"), cachePersist: path.join(persist, "cache") };
    const a = await counted({ policy: remembering, miniflare });
    const manifest = await a.worker.loadIndex(dir);
    row.layout = manifest.layout;
    row.snapshot_bytes = manifest.bytes;
    // What the printed commands write: the parts, then the manifest.
    row.upload_writes = manifest.parts.length + 1;
    a.faults.resetCounts();
    const first = await get(a.worker, "/fixtures/photos/chelsea.jpg");
    row.first_image_of_isolate = { status: first.status, keys: a.faults.keys.get };
    row.wasm_memory_after_load = Number(first.headers.get("x-hashgate-wasm-memory"));
    a.faults.resetCounts();
    const seen = await get(a.worker, IMAGE);
    row.first_seen_warm = { status: seen.status, keys: a.faults.keys.get };
    a.faults.resetCounts();
    await get(a.worker, IMAGE);
    row.same_again = { keys: a.faults.keys.get };
    await new Promise((r) => setTimeout(r, 300)); // the Cache API put runs after the response
    await a.worker.dispose();
    const b = await counted({ policy: remembering, miniflare });
    b.faults.resetCounts();
    const other = await get(b.worker, IMAGE);
    row.same_in_second_isolate = { keys: b.faults.keys.get, verdict: other.headers.get("x-hashgate-verdict") };
    await b.worker.dispose();

    // The bucket layout beside it.
    if (n <= BUCKETS_UP_TO) {
      log(`N = ${n}: bucket layout`);
      // Keys read do not depend on what the keys hold (a missing key is
      // billed too), so only the manifest is uploaded; the writes are the
      // build's key count.
      const bucketDir = await buildIndex(`bench-${n}-buckets`, lists, { layout: "buckets" });
      const printed = readFileSync(path.join(REPO_ROOT, "target", "e2e", `lists-bench-${n}-buckets`, "build.txt"), "utf8");
      const writes = Number(printed.match(/kv: (\d+) keys/)[1]) + 1;
      const c = await counted({ policy: forgetful });
      await (await c.worker.kv("HASH_INDEX")).put("hg2/current", readFileSync(path.join(bucketDir, "kv-current.json"), "utf8"));
      await get(c.worker, "/fixtures/photos/coffee.jpg");
      c.faults.resetCounts();
      await get(c.worker, IMAGE);
      row.buckets = { upload_writes: writes, first_seen_keys: c.faults.keys.get };
      await c.worker.dispose();
    }

    // CPU: every request a first-seen image (nothing remembered).
    log(`N = ${n}: CPU, ${RUNS} requests per route`);
    const { worker, pids } = await startMeasuredWorker({ origin: origin.url, policy: forgetful });
    await worker.loadIndex(dir);
    // The isolate's first request compiles the wasm; then the first image
    // loads the index.
    await measure(worker, pids, "/fixtures/web/hello.txt");
    const load = await measure(worker, pids, "/fixtures/photos/chelsea.jpg");
    row.cpu = {
      first_request_with_index_load: load.cpu,
      proxy: await series(worker, pids, "/proxy/photo-1mp.jpg", RUNS, 200),
      scan: await series(worker, pids, IMAGE, RUNS, 200),
    };
    await worker.dispose();
    results.sizes[n] = row;
  }
} finally {
  await origin.close();
}

writeFileSync(path.join(OUT, "index-bench.json"), JSON.stringify(results, null, 2) + "\n");
const mib = (b) => (b / 1048576).toFixed(1);
console.log(`\nhashgate index at the edge: workerd (Miniflare), local KV behind a counting wrapper; policy T=31, dihedral, lists ["*"]\n`);
console.log("N PDQ      layout    snapshot  upload  first image  first-seen  same    2nd isolate | buckets: upload  first-seen | wasm mem  CPU 1 MP scan / proxy (ms)  index load");
console.log("                               writes  of isolate   (warm)      again   same image  |          writes  keys       | loaded");
for (const [n, r] of Object.entries(results.sizes)) {
  console.log(
    `${String(n).padEnd(10)} ${r.layout.padEnd(9)} ${(mib(r.snapshot_bytes) + " MiB").padEnd(9)} ${String(r.upload_writes).padStart(6)}  ` +
      `${String(r.first_image_of_isolate.keys).padStart(11)}  ${String(r.first_seen_warm.keys).padStart(10)}  ${String(r.same_again.keys).padStart(6)}  ` +
      `${String(r.same_in_second_isolate.keys).padStart(11)} | ${String(r.buckets?.upload_writes ?? "-").padStart(14)}  ${String(r.buckets?.first_seen_keys ?? "-").padStart(10)} | ` +
      `${(mib(r.wasm_memory_after_load) + " MiB").padStart(8)}  ${fmt(r.cpu.scan.cpu).padStart(8)} / ${fmt(r.cpu.proxy.cpu)} (${fmt(r.cpu.scan.cpu / r.cpu.proxy.cpu, 1)}x)  ${fmt(r.cpu.first_request_with_index_load)} ms`,
  );
}
console.log(`\n(second isolate verdicts: ${Object.values(results.sizes).map((r) => r.same_in_second_isolate.verdict).join(", ")}; written to target/bench/index-bench.json)`);
process.exit(0);
