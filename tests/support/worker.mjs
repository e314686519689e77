// The built worker (worker/build/, from scripts/build-worker.sh) running in
// workerd through Miniflare, with the bindings wrangler.toml declares, read
// from it (tests/support/wrangler.mjs): local KV, R2, D1, the queues (their
// consumers made fast for tests, below), Analytics Engine and the vars.
// Nothing is built here; run scripts/build-worker.sh first (scripts/test-e2e.sh does).
//
// Create ONE instance per test file (startup costs ~0.5 s):
//
//   let origin, worker;
//   before(async () => {
//     origin = await startOrigin();
//     worker = await startWorker({ origin: origin.url, policy });
//     await worker.loadIndex(await buildIndex({ demo: DEMO_LIST }));
//   });
//   after(async () => { await worker?.dispose(); await origin?.close(); });
//
//   const res = await worker.fetch("/web/hello.txt");

import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { Miniflare } from "miniflare";
import { REPO_ROOT } from "./origin.mjs";
import { WRANGLER, bindingOptions, producerQueue } from "./wrangler.mjs";

export const BUILD_DIR = path.join(REPO_ROOT, "worker", "build");
export const SCRIPT_PATH = path.join(BUILD_DIR, "index.js");

// Bindings, compatibility date and vars come from wrangler.toml
// (tests/support/wrangler.mjs); the names below are read from it too.
const WRANGLER_OPTIONS = bindingOptions();
export const COMPATIBILITY_DATE = WRANGLER_OPTIONS.compatibilityDate;
export const MATCH_EVENTS_QUEUE = producerQueue("MATCH_EVENTS");
export const DEAD_LETTER_QUEUE = WRANGLER_OPTIONS.queueConsumers[MATCH_EVENTS_QUEUE].deadLetterQueue;
export const KV_NAMESPACES = WRANGLER_OPTIONS.kvNamespaces;
/** The evidence key the tests' worker encrypts with (base64 of 32 bytes) and its id. */
export const EVIDENCE_KEY = Buffer.alloc(32, 7).toString("base64");
export const EVIDENCE_KEY_ID = "e2e-k1";
// Stored content (docs/stored.md): buckets, the hash log, the objects queue.
export const STORED_QUEUE = producerQueue("STORED_OBJECTS");
// The R2 buckets: evidence (docs/reporting.md) and stored content.
export const R2_BUCKETS = WRANGLER_OPTIONS.r2Buckets;
/** The secret the tests' webhook receivers verify with. */
export const WEBHOOK_SECRET = "e2e-webhook-secret";
/** Example policy: the POLICY default in wrangler.toml. */
export const DEFAULT_POLICY = JSON.parse(WRANGLER.vars.POLICY);

// Test-only: queues deliver at once and retry without delay, so tests see
// events within ~1 s (wrangler.toml batches for seconds and retries after
// 30 s); the match events and their dead letters one message per batch.
const TEST_CONSUMERS = {
  [MATCH_EVENTS_QUEUE]: { maxBatchSize: 1, maxBatchTimeout: 0, maxRetries: 3, retryDelay: 0 },
  [DEAD_LETTER_QUEUE]: { maxBatchSize: 1, maxBatchTimeout: 0, maxRetries: 3, retryDelay: 0 },
  [STORED_QUEUE]: { maxBatchTimeout: 0, maxRetries: 3, retryDelay: 0 },
};

/** The Analytics Engine binding and dataset (wrangler.toml [[analytics_engine_datasets]]). */
export const ANALYTICS_BINDING = "HASHGATE_EVENTS";
export const ANALYTICS_DATASET = WRANGLER_OPTIONS.analyticsEngineDatasets[ANALYTICS_BINDING].dataset;
const RECORDER = "hashgate-analytics-recorder";

// A wrapped binding with the dataset's one method (synchronous, as the
// real one); each data point is printed on one marked line of the
// runtime's stdout, which startWorker captures.
const DATA_POINT_MARK = "hashgate-test-data-point ";
function recordDataPoints(options) {
  const { cf, host, port, handleRuntimeStdio, analyticsEngineDatasets, ...main } = options;
  const shared = Object.fromEntries(
    Object.entries({ cf, host, port, handleRuntimeStdio }).filter(([, v]) => v !== undefined),
  );
  return {
    ...shared,
    workers: [
      { ...main, wrappedBindings: { [ANALYTICS_BINDING]: { scriptName: RECORDER } } },
      {
        name: RECORDER,
        modules: true,
        script: `export default function () {
          return { writeDataPoint(point) { console.log(${JSON.stringify(DATA_POINT_MARK)} + JSON.stringify(point ?? {})); } };
        }`,
      },
    ],
  };
}

/** Host used in URLs sent to the worker (the worker proxies to ORIGIN anyway). */
export const WORKER_BASE = "http://hashgate.test";

/**
 * Start the built worker under Miniflare.
 * @param {object} [opts]
 * @param {string} [opts.origin] ORIGIN var: base URL of the origin ("" = pass through)
 * @param {object|string} [opts.policy] POLICY var (object is JSON-encoded)
 * @param {object} [opts.bindings] extra/overriding plain bindings (e.g. DEBUG: "1")
 * @param {object} [opts.consumer] overrides for the MATCH_EVENTS consumer (maxRetries, retryDelay)
 * @param {boolean} [opts.http] also listen on 127.0.0.1 (a free port) for real HTTP: `worker.http(path, init)`.
 *   dispatchFetch hands request bodies to workerd without their length; a real
 *   client's Content-Length survives, which upload tests check.
 * @param {boolean} [opts.logs] keep what the worker logs (console.*) for `worker.logs()` instead of printing it
 * @param {object} [opts.miniflare] extra Miniflare options (override the defaults)
 * @param {object} [opts.faults] from createFaults() (tests/support/faults.mjs): HASH_INDEX and
 *   MATCH_EVENTS go through fault-injecting wrappers around the real bindings
 * @param {boolean} [opts.recordAnalytics] HASHGATE_EVENTS becomes a recorder with the
 *   dataset's writeDataPoint: `worker.dataPoints()` lists what was written (Miniflare's
 *   own local dataset discards data points)
 */
export async function startWorker({ origin = "", policy = DEFAULT_POLICY, bindings = {}, consumer = {}, http = false, logs = false, miniflare = {}, faults = null, recordAnalytics = false } = {}) {
  if (!existsSync(SCRIPT_PATH)) {
    throw new Error(`${SCRIPT_PATH} not found: build the worker first (bash scripts/build-worker.sh)`);
  }
  const logged = [];
  let options = {
    modules: true,
    // Absolute paths: workerd refuses module names with "..".
    scriptPath: SCRIPT_PATH,
    modulesRoot: BUILD_DIR,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    ...WRANGLER_OPTIONS,
    // No network fetch of cf.json; request.cf gets a fixed local value.
    cf: false,
    queueConsumers: Object.fromEntries(
      Object.entries(WRANGLER_OPTIONS.queueConsumers).map(([queue, settings]) => [
        queue,
        { ...settings, ...TEST_CONSUMERS[queue], ...(queue === MATCH_EVENTS_QUEUE ? consumer : {}) },
      ]),
    ),
    // wrangler.toml's [vars], then what the tests set.
    bindings: {
      ...WRANGLER_OPTIONS.bindings,
      POLICY: typeof policy === "string" ? policy : JSON.stringify(policy),
      ORIGIN: origin,
      WEBHOOK_SECRET,
      EVIDENCE_KEY,
      EVIDENCE_KEY_ID,
      ...bindings,
    },
    ...(http ? { host: "127.0.0.1", port: 0 } : {}),
    ...(logs || recordAnalytics
      ? {
          handleRuntimeStdio(stdout, stderr) {
            for (const stream of [stdout, stderr]) stream.on("data", (chunk) => logged.push(chunk.toString()));
          },
        }
      : {}),
    ...miniflare,
  };
  if (faults) {
    // Shared options stay at the top; the rest is the worker's own.
    const { cf, host, port, kvPersist, cachePersist, r2Persist, d1Persist, ...main } = options;
    const shared = Object.fromEntries(
      Object.entries({ cf, host, port, kvPersist, cachePersist, r2Persist, d1Persist }).filter(([, v]) => v !== undefined),
    );
    options = { ...shared, workers: faults.apply(main, { queueName: MATCH_EVENTS_QUEUE }) };
  }
  if (recordAnalytics) options = recordDataPoints(options);
  const mf = new Miniflare(options);
  const url = await mf.ready;
  // With fault injection, HASH_INDEX is the wrapper; the namespace itself is HASH_INDEX_STORE.
  const kvName = (name) => (faults && name === "HASH_INDEX" ? "HASH_INDEX_STORE" : name);

  const worker = {
    mf,
    /** dispatchFetch with a path ("/x?y") or a full URL. */
    fetch: (input, init) => mf.dispatchFetch(new URL(input, WORKER_BASE).href, init),
    /** Real HTTP to the worker (needs `http: true`); the Host is 127.0.0.1:PORT. */
    url,
    http: (input, init) => fetch(new URL(input, url).href, init),
    kv: (name) => mf.getKVNamespace(kvName(name)),
    r2: (name = "EVIDENCE") => mf.getR2Bucket(faults?.wrapsR2 && name === "EVIDENCE" ? "EVIDENCE_STORE" : name),
    queue: (binding = "MATCH_EVENTS") => mf.getQueueProducer(binding),
    dispose: () => mf.dispose(),
    /** What the worker logged so far (needs `logs: true`). */
    logs: () => logged.join(""),
    /** Data points written to HASHGATE_EVENTS (needs `recordAnalytics: true`). */
    dataPoints: () =>
      logged
        .join("")
        .split("\n")
        .filter((line) => line.includes(DATA_POINT_MARK))
        .map((line) => JSON.parse(line.slice(line.indexOf(DATA_POINT_MARK) + DATA_POINT_MARK.length))),
    /** Fires the cron trigger (the scheduled handler) once and waits for it. */
    scheduled: async (cron = "* * * * *") => (await mf.getWorker()).scheduled({ cron }),
    /**
     * Uploads a `hashgate index build` directory into HASH_INDEX the way its
     * printed commands do: the generation's values first (resident parts, or
     * the bucket layout's kv-bulk files), then `hg2/current`. Returns the
     * manifest.
     */
    async loadIndex(buildDir) {
      const kv = await mf.getKVNamespace(kvName("HASH_INDEX"));
      const manifestText = await readFile(path.join(buildDir, "kv-current.json"), "utf8");
      const manifest = JSON.parse(manifestText);
      if (manifest.layout === "resident") {
        for (const [i, key] of manifest.parts.entries()) {
          const bytes = await readFile(path.join(buildDir, `kv-part-${i}.bin`));
          await kv.put(key, bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
        }
      } else {
        const files = (await readdir(buildDir)).filter((f) => f.startsWith("kv-bulk") && f.endsWith(".json"));
        for (const file of files) {
          for (const { key, value, base64 } of JSON.parse(await readFile(path.join(buildDir, file), "utf8"))) {
            await kv.put(key, base64 ? Buffer.from(value, "base64") : value);
          }
        }
      }
      await kv.put("hg2/current", manifestText);
      return manifest;
    },
    /** Polls REPORTS until `predicate(records)` holds (records: [{key, value, expiration}]). */
    async waitForReports(predicate, { prefix = "", timeoutMs = 10_000 } = {}) {
      const kv = await mf.getKVNamespace("REPORTS");
      const deadline = Date.now() + timeoutMs;
      let records = [];
      while (Date.now() < deadline) {
        const list = await kv.list({ prefix });
        records = await Promise.all(
          list.keys.map(async (k) => ({ key: k.name, expiration: k.expiration, value: JSON.parse(await kv.get(k.name)) })),
        );
        if (predicate(records)) return records;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`timed out waiting for REPORTS (prefix ${JSON.stringify(prefix)}); have ${JSON.stringify(records, null, 1)}`);
    },
  };
  return worker;
}
