// The Miniflare options wrangler.toml implies, read from the file itself, so
// the tests run the worker with the bindings a deployment has: the
// compatibility date and flags, KV namespaces, R2 buckets, D1 databases,
// queue producers and consumers, Analytics Engine datasets, rate limits and
// [vars]. What the tests change (fast queue delivery, the policy, the
// origin, secrets) is layered on top in worker.mjs, explicitly.
//
// A binding kind this file does not translate makes it throw, rather than
// start a worker that silently lacks a binding wrangler.toml declares.

import { readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "smol-toml";
import { REPO_ROOT } from "./origin.mjs";

export const WRANGLER_TOML = path.join(REPO_ROOT, "wrangler.toml");

/** wrangler.toml, parsed. */
export const WRANGLER = parse(readFileSync(WRANGLER_TOML, "utf8"));

// Top-level keys that declare bindings this file does not translate.
const UNTRANSLATED = [
  "durable_objects",
  "services",
  "hyperdrive",
  "vectorize",
  "ai",
  "browser",
  "send_email",
  "dispatch_namespaces",
  "workflows",
  "mtls_certificates",
  "pipelines",
  "secrets_store_secrets",
  "unsafe",
  "assets",
  "images",
];

const byBinding = (entries, value) => Object.fromEntries((entries ?? []).map((e) => [e.binding, value(e)]));
const defined = (object) => Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined));

/**
 * Miniflare options for the bindings of `config` (wrangler.toml by default).
 * Queue consumers are keyed by queue name, with wrangler's settings
 * (max_concurrency has no Miniflare counterpart and is left out).
 */
export function bindingOptions(config = WRANGLER) {
  const untranslated = UNTRANSLATED.filter((key) => config[key] !== undefined);
  if (untranslated.length > 0) {
    throw new Error(`wrangler.toml declares ${untranslated.join(", ")}: translate it in tests/support/wrangler.mjs`);
  }
  return {
    compatibilityDate: config.compatibility_date,
    ...(config.compatibility_flags ? { compatibilityFlags: config.compatibility_flags } : {}),
    kvNamespaces: (config.kv_namespaces ?? []).map((kv) => kv.binding),
    r2Buckets: byBinding(config.r2_buckets, (r2) => r2.bucket_name),
    d1Databases: byBinding(config.d1_databases, (d1) => d1.database_name),
    queueProducers: byBinding(config.queues?.producers, (p) => ({ queueName: p.queue })),
    queueConsumers: Object.fromEntries(
      (config.queues?.consumers ?? []).map((c) => [
        c.queue,
        defined({
          maxBatchSize: c.max_batch_size,
          maxBatchTimeout: c.max_batch_timeout,
          maxRetries: c.max_retries,
          retryDelay: c.retry_delay,
          deadLetterQueue: c.dead_letter_queue,
        }),
      ]),
    ),
    analyticsEngineDatasets: byBinding(config.analytics_engine_datasets, (a) => ({ dataset: a.dataset })),
    ratelimits: Object.fromEntries((config.ratelimits ?? []).map((r) => [r.name, { simple: r.simple }])),
    bindings: { ...(config.vars ?? {}) },
  };
}

/** The queue a producer binding of wrangler.toml sends to. */
export function producerQueue(binding, config = WRANGLER) {
  const producer = (config.queues?.producers ?? []).find((p) => p.binding === binding);
  if (!producer) throw new Error(`wrangler.toml has no queue producer ${binding}`);
  return producer.queue;
}
