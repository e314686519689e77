// Stored content in workerd: objects scanned per second by one consumer,
// and the hash log's bytes per object. Builds nothing: run
// scripts/build-worker.sh first.
//
//   node scripts/bench-stored.mjs [--objects 1000] [--listed 20] [--source photos|small]
//
// Puts OBJECTS objects (tests/support/stored_images.py: LISTED altered
// copies of a listed photo, the rest distinct 96 x 96 crops; or, with
// --source photos, the six fixture photos of 0.1-0.6 MP repeated under
// distinct keys) into Miniflare's local R2, backfills them through the
// real queue consumer (one consumer, batches of 10, as wrangler.toml), and
// prints: objects per second (first key listed to last row written), the
// hash log's D1 file size per row, and the counts.

import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { parseArgs } from "node:util";
import { FIXTURES_DIR, REPO_ROOT } from "../tests/support/origin.mjs";
import { startWorker } from "../tests/support/worker.mjs";
import { buildIndex, DEMO_LIST, E2E_DIR } from "../tests/support/index.mjs";

process.env.WRANGLER_SEND_METRICS ??= "false";
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";

const { values } = parseArgs({
  options: {
    objects: { type: "string", default: "1000" },
    listed: { type: "string", default: "20" },
    source: { type: "string", default: "small" },
  },
});
const TOTAL = Number(values.objects);
const LISTED = Number(values.listed);
const TOKEN = "bench";
const policy = {
  routes: [{ pattern: "*/*", action: "flag", lists: ["*"] }],
  stored: [{ bucket: "user-uploads", binding: "UPLOADS", action: "report", lists: ["*"] }],
};

const dir = path.join(E2E_DIR, "bench-stored-objects");
let files;
if (values.source === "photos") {
  const photos = path.join(FIXTURES_DIR, "photos");
  const names = (await readdir(photos)).filter((f) => f.endsWith(".jpg"));
  files = Array.from({ length: TOTAL }, (_, i) => path.join(photos, names[i % names.length]));
} else {
  await promisify(execFile)("python3", [path.join(REPO_ROOT, "tests/support/stored_images.py"), dir, String(TOTAL), String(LISTED)]);
  files = (await readdir(dir)).sort().map((f) => path.join(dir, f));
}

const persist = await mkdtemp(path.join(tmpdir(), "hashgate-bench-stored-"));
const summary = [];
let bytes = 0;
let progress;
let seconds;
const worker = await startWorker({
  policy,
  bindings: { ADMIN_TOKEN: TOKEN },
  miniflare: { d1Persist: path.join(persist, "d1") },
});
try {
  await worker.loadIndex(await buildIndex("bench-stored", { demo: DEMO_LIST }));
  const bucket = await worker.mf.getR2Bucket("UPLOADS");
  for (const [i, file] of files.entries()) {
    const data = await readFile(file);
    bytes += data.length;
    await bucket.put(`objects/${String(i).padStart(6, "0")}.jpg`, data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  }
  const admin = (method, rest, body) =>
    worker.fetch(`/_hashgate/stored/${rest}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}` },
      body: body && JSON.stringify(body),
    });
  const started = performance.now();
  const { backfill } = await (await admin("POST", "backfills", { bucket: "user-uploads", prefix: "" })).json();
  for (;;) {
    ({ progress } = await (await admin("GET", `backfills/${backfill.id}`)).json());
    if (progress.listed === TOTAL && progress.scanned === TOTAL) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  seconds = (performance.now() - started) / 1000;
  const db = await worker.mf.getD1Database("HASH_LOG");
  const { n } = await db.prepare("SELECT count(*) AS n FROM hash_log").first();
  const { logical } = await db
    .prepare(
      "SELECT sum(length(location) + length(etag) + length(generation) + length(result) + length(route) + length(direction) + " +
        "coalesce(length(pdq), 0) + coalesce(length(md5), 0) + coalesce(length(sha1), 0) + coalesce(length(sha256), 0) + 16) AS logical FROM hash_log",
    )
    .first();
  summary.push(`hash log: ${n} rows, ${(logical / n).toFixed(0)} bytes of values a row`);
} finally {
  await worker.dispose();
}
try {
  // The D1 database Miniflare keeps (SQLite with both indexes), compacted
  // (VACUUM on a copy: the local file keeps free pages and its
  // write-ahead log), as D1 reports a database's size.
  const sqlite = [];
  const walk = async (d) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith(".sqlite")) sqlite.push(p);
    }
  };
  await walk(path.join(persist, "d1"));
  const measure = `
import shutil, sqlite3, sys, tempfile, os
best = 0
for path in sys.argv[1:]:
    tmp = os.path.join(tempfile.mkdtemp(), "db.sqlite")
    shutil.copy(path, tmp)
    for ext in ("-wal", "-shm"):
        if os.path.exists(path + ext):
            shutil.copy(path + ext, tmp + ext)
    c = sqlite3.connect(tmp)
    if c.execute("SELECT count(*) FROM sqlite_master WHERE name = 'hash_log'").fetchone()[0]:
        c.execute("VACUUM")
        best = c.execute("PRAGMA page_count").fetchone()[0] * c.execute("PRAGMA page_size").fetchone()[0]
print(best)
`;
  const { stdout } = await promisify(execFile)("python3", ["-c", measure, ...sqlite]);
  const dbBytes = Number(stdout.trim());
  summary.push(`objects ${TOTAL} (${(bytes / TOTAL / 1024).toFixed(1)} KiB average, source ${values.source}), one consumer, batches of 10`);
  summary.push(`progress ${JSON.stringify(progress)}`);
  summary.push(`scanned in ${seconds.toFixed(1)} s: ${(TOTAL / seconds).toFixed(1)} objects/s`);
  const rows = TOTAL;
  summary.push(`D1 file: ${dbBytes} bytes: ${(dbBytes / rows).toFixed(0)} bytes an object, ${((dbBytes / rows) * 1e6 / 1e9).toFixed(2)} GB per 10^6 objects`);
  console.log(summary.join("\n"));
} finally {
  await rm(persist, { recursive: true, force: true });
}
