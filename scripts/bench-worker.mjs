// Benchmark of the built worker in workerd (Miniflare), against a real
// origin on 127.0.0.1. A benchmark, not a test: it prints figures.
//
//   node scripts/bench-worker.mjs [--runs 50]
//
// What it measures (the worker is built first if out of date):
// * CPU time per request inside workerd for a 1 MP and a 12 MP JPEG, median
//   of N sequential requests, on a scanning route and on a route with no
//   policy (the worker only proxies), and their ratio. CPU time is the
//   workerd process's own (sum over its threads of /proc/<pid>/task/*/schedstat,
//   nanoseconds) read before and after each request: Date.now() does not
//   advance inside a Worker during computation, so it is measured from
//   outside. Local KV is emulated inside workerd, so the scanning figure
//   includes the KV reads' CPU; a route with pdq_threshold 0 (about 20 keys
//   instead of about 2,200) shows how much of it that is. The verdict cache
//   is off, so every request is decoded, hashed and looked up.
//   Wall time per request (median) is printed too.
//   A route with `variants: "all"` (pixel orientations, border trimming)
//   shows what the extra query hashes cost.
// * Peak wasm memory while scanning a 24 MP JPEG: a fresh isolate with
//   DEBUG=1 reports its linear memory size (which only grows) in a header.
// * Added latency for a non-image response: median wall time of a small
//   text response through the scanning route (peeked, streamed) and the
//   proxy-only route, versus the origin directly.
// * The wasm size raw and gzipped, from `wrangler deploy --dry-run`.
//
// Images are generated from fixtures/photos/hubble.jpg with Pillow
// (tests/support/images.py sizes) into target/bench/images/; results are
// also written to target/bench/worker-bench.json.

import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, existsSync, writeFileSync, mkdirSync, statSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { performance } from "node:perf_hooks";
import { FIXTURES_DIR, REPO_ROOT, startOrigin } from "../tests/support/origin.mjs";
import { BUILD_DIR, startWorker } from "../tests/support/worker.mjs";
import { buildIndex, DEMO_LIST } from "../tests/support/index.mjs";
import { fmt, median, series, startMeasuredWorker } from "./lib/workerd-cpu.mjs";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const RUNS = Number(arg("--runs", 50));
const OUT = path.join(REPO_ROOT, "target", "bench");
const IMAGES = path.join(OUT, "images");
const env = { ...process.env, WRANGLER_SEND_METRICS: "false", WRANGLER_HIDE_BANNER: "true", CLOUDFLARE_CF_FETCH_ENABLED: "false" };

const log = (...a) => console.error("[bench]", ...a);

// --- main ---------------------------------------------------------------------
log("building the worker (skipped if up to date)");
execFileSync("bash", [path.join(REPO_ROOT, "scripts/build-worker.sh")], { stdio: ["ignore", "ignore", "inherit"], env });
log("generating images");
mkdirSync(IMAGES, { recursive: true });
execFileSync("python3", [path.join(REPO_ROOT, "tests/support/images.py"), "sizes", IMAGES], { stdio: "ignore" });
const images = {
  "1 MP": "photo-1mp.jpg",
  "12 MP": "photo-12mp.jpg",
  "24 MP": "photo-24mp.jpg",
};
log("building the demo index");
const bulk = await buildIndex("bench", { demo: DEMO_LIST });

const origin = await startOrigin({
  root: IMAGES,
  mounts: {
    "/scan/web": path.join(FIXTURES_DIR, "web"),
    "/t0/web": path.join(FIXTURES_DIR, "web"),
    "/proxy/web": path.join(FIXTURES_DIR, "web"),
    "/all": IMAGES,
    "/scan": IMAGES,
    "/t0": IMAGES,
    "/proxy": IMAGES,
  },
});
const policy = {
  routes: [
    { pattern: "*/scan/*", action: "block", lists: ["demo"], pdq_threshold: 31, max_bytes: 25 << 20 },
    { pattern: "*/t0/*", action: "block", lists: ["demo"], pdq_threshold: 0, max_bytes: 25 << 20 },
    { pattern: "*/all/*", action: "block", lists: ["demo"], pdq_threshold: 31, variants: "all", max_bytes: 25 << 20 },
  ],
  verdict_cache: { ttl_seconds: 0 },
};

const results = { runs: RUNS, cpu: {}, memory: {}, latency: {}, size: {} };
try {
  // CPU per request.
  const { worker, pids } = await startMeasuredWorker({ origin: origin.url, policy });
  await worker.loadIndex(bulk);
  for (const label of ["1 MP", "12 MP"]) {
    const file = images[label];
    log(`${label}: ${RUNS} requests per route`);
    const proxy = await series(worker, pids, `/proxy/${file}`, RUNS, 200);
    const scan = await series(worker, pids, `/scan/${file}`, RUNS, 200);
    const t0 = await series(worker, pids, `/t0/${file}`, RUNS, 200);
    const all = await series(worker, pids, `/all/${file}`, RUNS, 200);
    results.cpu[label] = { file, bytes: statSync(path.join(IMAGES, file)).size, proxy, scan, scan_t0: t0, scan_all_variants: all };
  }

  // Added latency of a non-image response.
  log("non-image latency");
  const directWalls = [];
  for (let i = 0; i < RUNS + 3; i++) {
    const t0 = performance.now();
    await (await fetch(`${origin.url}/scan/web/hello.txt`)).arrayBuffer();
    if (i >= 3) directWalls.push(performance.now() - t0);
  }
  results.latency = {
    direct: median(directWalls),
    proxy: await series(worker, pids, "/proxy/web/hello.txt", RUNS, 200),
    scan: await series(worker, pids, "/scan/web/hello.txt", RUNS, 200),
  };
  await worker.dispose();

  // Peak wasm memory: fresh isolates, one image each.
  for (const label of ["1 MP", "12 MP", "24 MP"]) {
    const w = await startWorker({ origin: origin.url, policy, bindings: { DEBUG: "1" } });
    await w.loadIndex(bulk);
    const idle = await w.fetch("/scan/web/hello.txt");
    await idle.arrayBuffer();
    const res = await w.fetch(`/scan/${images[label]}`);
    await res.arrayBuffer();
    results.memory[label] = {
      file: images[label],
      verdict: res.headers.get("x-hashgate-verdict"),
      before: Number(idle.headers.get("x-hashgate-wasm-memory")),
      after: Number(res.headers.get("x-hashgate-wasm-memory")),
    };
    await w.dispose();
  }
} finally {
  await origin.close();
}

// Size: wrangler's own figures, and the .wasm itself.
log("wrangler deploy --dry-run");
const dry = execFileSync("npx", ["wrangler", "deploy", "--dry-run", "--outdir", path.join(OUT, "dry-run")], {
  cwd: REPO_ROOT,
  env,
  encoding: "utf8",
  stdio: ["ignore", "pipe", "pipe"],
});
const upload = dry.match(/Total Upload:\s*([\d.]+ KiB)\s*\/\s*gzip:\s*([\d.]+ KiB)/);
const wasm = readFileSync(path.join(BUILD_DIR, "index_bg.wasm"));
results.size = {
  wrangler_total_upload: upload?.[1] ?? "n/a",
  wrangler_gzip: upload?.[2] ?? "n/a",
  wasm_raw_bytes: wasm.length,
  wasm_gzip_bytes: gzipSync(wasm, { level: 9 }).length,
};

writeFileSync(path.join(OUT, "worker-bench.json"), JSON.stringify(results, null, 2) + "\n");

// --- report -------------------------------------------------------------------
const mib = (b) => (b / 1048576).toFixed(1);
console.log(`\nhashgate worker in workerd (Miniflare), origin on 127.0.0.1, median of ${RUNS} requests\n`);
console.log("CPU time per request inside workerd (ms; wall ms in brackets):");
console.log("  image                 proxy only        scan T=31         ratio   scan T=0          ratio");
for (const [label, r] of Object.entries(results.cpu)) {
  console.log(
    `  ${label.padEnd(6)} ${(mib(r.bytes) + " MiB").padEnd(10)} ` +
      `${fmt(r.proxy.cpu).padStart(6)} [${fmt(r.proxy.wall).padStart(7)}]  ` +
      `${fmt(r.scan.cpu).padStart(6)} [${fmt(r.scan.wall).padStart(7)}]  ${fmt(r.scan.cpu / r.proxy.cpu, 1).padStart(6)}x  ` +
      `${fmt(r.scan_t0.cpu).padStart(6)} [${fmt(r.scan_t0.wall).padStart(7)}]  ${fmt(r.scan_t0.cpu / r.proxy.cpu, 1).padStart(6)}x`,
  );
}
console.log("  with variants \"all\" (T=31): " +
  Object.entries(results.cpu).map(([l, r]) => `${l} ${fmt(r.scan_all_variants.cpu)} ms [${fmt(r.scan_all_variants.wall)}]`).join(", "));
console.log("  (scan cost = scan - proxy: " +
  Object.entries(results.cpu).map(([l, r]) => `${l} ${fmt(r.scan.cpu - r.proxy.cpu)} ms (T=0: ${fmt(r.scan_t0.cpu - r.proxy.cpu)} ms)`).join(", ") + ")");
console.log("\nPeak wasm linear memory (fresh isolate, one image):");
for (const [label, m] of Object.entries(results.memory)) {
  console.log(`  ${label.padEnd(6)} ${mib(m.after)} MiB (idle ${mib(m.before)} MiB), verdict ${m.verdict}`);
}
const l = results.latency;
console.log("\nNon-image response (36 B text), median wall ms:");
console.log(`  origin direct ${fmt(l.direct)}, proxy-only route ${fmt(l.proxy.wall)}, scanning route ${fmt(l.scan.wall)}` +
  ` -> added by scanning vs proxy: ${fmt(l.scan.wall - l.proxy.wall)} ms; CPU ${fmt(l.proxy.cpu)} vs ${fmt(l.scan.cpu)} ms`);
console.log("\nSize:");
console.log(`  wrangler deploy --dry-run: Total Upload ${results.size.wrangler_total_upload} / gzip ${results.size.wrangler_gzip}`);
console.log(`  index_bg.wasm ${(results.size.wasm_raw_bytes / 1024).toFixed(0)} KiB raw, ${(results.size.wasm_gzip_bytes / 1024).toFixed(0)} KiB gzip -9`);
console.log(`\n(written to target/bench/worker-bench.json)`);
process.exit(0);
