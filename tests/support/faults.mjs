// Fault injection at the worker's bindings, around the real local ones.
//
// The worker's HASH_INDEX (KV) and MATCH_EVENTS (queue producer) become
// Miniflare wrapped bindings: thin JS objects, in the worker's own isolate,
// that forward every call to the real local KV namespace / queue unless the
// test says otherwise. The test flips the mode at any time from Node:
//
//   const faults = createFaults();
//   worker = await startWorker({ origin, policy, faults });
//   faults.kv = "fail";     // every KV call rejects ("injected fault: ...")
//   faults.kv = "hang";     // every KV call never settles
//   faults.queue = "fail";  // every send/sendBatch rejects
//   faults.heal();          // back to "ok"
//   faults.calls            // { kv: n, kvFailed: n, queue: n, queueFailed: n }
//   faults.keys             // KV keys by operation, as Cloudflare bills them:
//                           // { get: n, put: n, list: n, delete: n } (a bulk
//                           // get of 100 keys is 100 reads)
//
// Each wrapped call asks Node for the current mode through a service
// binding (a function in this process), so a change applies to the very
// next call. Nothing about verdicts is faked: values come from the real
// namespace, events go to the real queue and its real consumer.
//
// workers-rs reads a KV binding by its methods (get, getWithMetadata, put,
// list, delete), but checks a queue binding's constructor name
// ("WorkerQueue"), so the queue wrapper's class has that name.

export const FAULTS_WORKER = "hashgate-faults";

const SCRIPT = `
async function mode(env, what, op = "", keys = 0) {
  const res = await env.CONTROL.fetch("http://faults/" + what + "?op=" + op + "&keys=" + keys);
  return res.text();
}
const never = () => new Promise(() => {});

class FaultyKv {
  constructor(env) { this.env = env; this.inner = env.INNER_KV; }
  async guard(op, keys) {
    const m = await mode(this.env, "kv", op, keys);
    if (m === "fail") throw new Error("injected fault: KV unavailable");
    if (m === "hang") await never();
  }
  async get(...args) { await this.guard("get", Array.isArray(args[0]) ? args[0].length : 1); return this.inner.get(...args); }
  async getWithMetadata(...args) { await this.guard("get", Array.isArray(args[0]) ? args[0].length : 1); return this.inner.getWithMetadata(...args); }
  async put(...args) { await this.guard("put", 1); return this.inner.put(...args); }
  async list(...args) { await this.guard("list", 1); return this.inner.list(...args); }
  async delete(...args) { await this.guard("delete", 1); return this.inner.delete(...args); }
}

class WorkerQueue {
  constructor(env) { this.env = env; this.inner = env.INNER_QUEUE; }
  async guard() {
    const m = await mode(this.env, "queue");
    if (m === "fail") throw new Error("injected fault: queue unavailable");
  }
  async send(...args) { await this.guard(); return this.inner.send(...args); }
  async sendBatch(...args) { await this.guard(); return this.inner.sendBatch(...args); }
}

// Only with createFaults({ r2: true }): EVIDENCE puts fail in mode "fail"
// (reads pass, so what was stored can be checked). workers-rs checks an R2
// binding's constructor name, hence the class name.
class R2Bucket {
  constructor(env) { this.env = env; this.inner = env.INNER_R2; }
  async guard(op) {
    const m = await mode(this.env, "r2", op, 1);
    if (m === "fail") throw new Error("injected fault: R2 unavailable");
  }
  async head(...args) { return this.inner.head(...args); }
  async get(...args) { return this.inner.get(...args); }
  async list(...args) { return this.inner.list(...args); }
  async put(...args) { await this.guard("put"); return this.inner.put(...args); }
  async delete(...args) { await this.guard("delete"); return this.inner.delete(...args); }
}

export function r2(env) { return new R2Bucket(env); }
export function kv(env) { return new FaultyKv(env); }
export function queue(env) { return new WorkerQueue(env); }
`;

export function createFaults({ r2 = false } = {}) {
  const calls = { kv: 0, kvFailed: 0, queue: 0, queueFailed: 0, r2: 0, r2Failed: 0 };
  const keys = { get: 0, put: 0, list: 0, delete: 0 };
  const faults = {
    kv: "ok",
    queue: "ok",
    r2: "ok",
    wrapsR2: r2,
    calls,
    keys,
    /** Zeroes the key counts (calls too). */
    resetCounts() {
      for (const k of Object.keys(keys)) keys[k] = 0;
      for (const k of Object.keys(calls)) calls[k] = 0;
    },
    heal() {
      faults.kv = "ok";
      faults.queue = "ok";
      faults.r2 = "ok";
    },
    /**
     * Rewrites single-worker Miniflare options (as tests/support/worker.mjs
     * builds them) so HASH_INDEX and MATCH_EVENTS go through the wrappers.
     * The real namespace stays reachable from Node as HASH_INDEX_STORE.
     */
    apply(options, { kvNamespace = "HASH_INDEX", queueName }) {
      const { HASH_INDEX: _kv, ...kvRest } = Object.fromEntries(
        (Array.isArray(options.kvNamespaces) ? options.kvNamespaces.map((n) => [n, n]) : Object.entries(options.kvNamespaces)),
      );
      const { MATCH_EVENTS: _q, ...queueRest } = options.queueProducers;
      const main = {
        ...options,
        name: "hashgate",
        kvNamespaces: { ...kvRest, HASH_INDEX_STORE: kvNamespace },
        queueProducers: queueRest,
        wrappedBindings: {
          HASH_INDEX: { scriptName: FAULTS_WORKER, entrypoint: "kv" },
          MATCH_EVENTS: { scriptName: FAULTS_WORKER, entrypoint: "queue" },
          ...(r2 ? { EVIDENCE: { scriptName: FAULTS_WORKER, entrypoint: "r2" } } : {}),
        },
        ...(r2 ? { r2Buckets: { EVIDENCE_STORE: "EVIDENCE" } } : {}),
      };
      const wrapper = {
        name: FAULTS_WORKER,
        modules: true,
        script: SCRIPT,
        kvNamespaces: { INNER_KV: kvNamespace },
        queueProducers: { INNER_QUEUE: { queueName } },
        ...(r2 ? { r2Buckets: { INNER_R2: "EVIDENCE" } } : {}),
        serviceBindings: {
          CONTROL: async (request) => {
            const url = new URL(request.url);
            const what = url.pathname.slice(1);
            const op = url.searchParams.get("op");
            if (what === "kv" && op in keys) keys[op] += Number(url.searchParams.get("keys") ?? 0);
            const m = what === "kv" ? faults.kv : what === "queue" ? faults.queue : what === "r2" ? faults.r2 : "ok";
            calls[what] = (calls[what] ?? 0) + 1;
            if (m !== "ok") calls[`${what}Failed`] = (calls[`${what}Failed`] ?? 0) + 1;
            return new Response(m);
          },
        },
      };
      return [main, wrapper];
    },
  };
  return faults;
}
