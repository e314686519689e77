// The built worker (worker/build/, from scripts/build-worker.sh) running in
// workerd through Miniflare, with the bindings wrangler.toml declares: local
// KV namespaces, the MATCH_EVENTS queue (producer and consumer) and the vars.
// Nothing is built here; run scripts/build-worker.sh first (scripts/test-e2e.sh does).
//
// Create ONE instance per test file (startup costs ~0.5 s):
//
//   let origin, worker;
//   before(async () => {
//     origin = await startOrigin();
//     worker = await startWorker({ origin: origin.url });
//   });
//   after(async () => { await worker?.dispose(); await origin?.close(); });
//
//   const res = await worker.fetch("/web/hello.txt");
//   await (await worker.kv("HASH_INDEX")).put(key, value);

import { existsSync } from "node:fs";
import path from "node:path";
import { Miniflare } from "miniflare";
import { REPO_ROOT } from "./origin.mjs";

export const BUILD_DIR = path.join(REPO_ROOT, "worker", "build");
export const SCRIPT_PATH = path.join(BUILD_DIR, "index.js");

// Keep in step with wrangler.toml.
export const COMPATIBILITY_DATE = "2026-04-26";
export const MATCH_EVENTS_QUEUE = "hashgate-match-events";
export const DEAD_LETTER_QUEUE = "hashgate-dlq";
export const KV_NAMESPACES = ["HASH_INDEX", "REPORTS"];
/** Example policy, same as the POLICY default in wrangler.toml. */
export const DEFAULT_POLICY = {
  routes: [
    {
      pattern: "*",
      enabled: true,
      action: "flag",
      thresholds: { pdq: 31 },
      lists: ["*"],
      fail: "open",
      scan: ["responses"],
    },
  ],
};

/** Host used in URLs sent to the worker (the worker proxies to ORIGIN anyway). */
export const WORKER_BASE = "http://hashgate.test";

/**
 * Start the built worker under Miniflare.
 * @param {object} [opts]
 * @param {string} [opts.origin] ORIGIN var: base URL of the origin ("" = pass through)
 * @param {object|string} [opts.policy] POLICY var (object is JSON-encoded)
 * @param {object} [opts.bindings] extra/overriding plain bindings
 * @param {object} [opts.miniflare] extra Miniflare options (override the defaults)
 */
export async function startWorker({ origin = "", policy = DEFAULT_POLICY, bindings = {}, miniflare = {} } = {}) {
  if (!existsSync(SCRIPT_PATH)) {
    throw new Error(`${SCRIPT_PATH} not found: build the worker first (bash scripts/build-worker.sh)`);
  }
  const mf = new Miniflare({
    modules: true,
    // Absolute paths: workerd refuses module names with "..".
    scriptPath: SCRIPT_PATH,
    modulesRoot: BUILD_DIR,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    compatibilityDate: COMPATIBILITY_DATE,
    // No network fetch of cf.json; request.cf gets a fixed local value.
    cf: false,
    kvNamespaces: KV_NAMESPACES,
    queueProducers: { MATCH_EVENTS: { queueName: MATCH_EVENTS_QUEUE } },
    // Deliver each event on its own and fast, so tests see them within ~1 s.
    queueConsumers: {
      [MATCH_EVENTS_QUEUE]: { maxBatchSize: 1, maxBatchTimeout: 1, maxRetries: 5, deadLetterQueue: DEAD_LETTER_QUEUE },
    },
    bindings: {
      POLICY: typeof policy === "string" ? policy : JSON.stringify(policy),
      ORIGIN: origin,
      ...bindings,
    },
    ...miniflare,
  });
  await mf.ready;

  return {
    mf,
    /** dispatchFetch with a path ("/x?y") or a full URL. */
    fetch: (input, init) => mf.dispatchFetch(new URL(input, WORKER_BASE).href, init),
    kv: (name) => mf.getKVNamespace(name),
    queue: (binding = "MATCH_EVENTS") => mf.getQueueProducer(binding),
    dispose: () => mf.dispose(),
  };
}
