// The reporting job: a confirmed incident is filed with the CyberTipline
// stand-in (tests/support/ncmec.mjs, written from NCMEC's ESP API docs) in
// the documented order, submit -> upload -> fileinfo -> finish, driven by
// the cron trigger; with the stand-in failing at each step in turn (an
// error answer, or a lost answer), and with the worker restarted mid-job,
// exactly one finished report results; an unrecoverable answer retracts.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createHash } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { FIXTURES_DIR, sha256, startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST } from "./support/index.mjs";
import { assertBlocked } from "./support/compare.mjs";
import { waitForEvidence } from "./support/evidence.mjs";
import { find, startNcmec } from "./support/ncmec.mjs";

const ADMIN = "e2e-admin-token";
const chelsea = await readFile(path.join(FIXTURES_DIR, "photos/chelsea.jpg"));
const CHELSEA = sha256(chelsea);
const routeId = (pattern) => createHash("sha256").update(pattern).digest("hex").slice(0, 16);
const incidentOf = (pattern) => `report/v1/${CHELSEA}/${routeId(pattern)}`;

const FAULTS = ["submit", "upload", "fileinfo", "finish"].flatMap((step) =>
  ["http500", "code1000", "drop"].map((mode) => ({ step, mode, prefix: `f-${step}-${mode}` })),
);
const EXTRA = ["reject", "restart", "auto"];

let origin, worker, ncmec, persist, options;

before(async () => {
  ncmec = await startNcmec();
  const mounts = Object.fromEntries([...FAULTS.map((f) => f.prefix), ...EXTRA].map((p) => [`/${p}`, FIXTURES_DIR]));
  origin = await startOrigin({ mounts });
  persist = await mkdtemp(path.join(os.tmpdir(), "hashgate-reporting-"));
  const route = (prefix, extra = {}) => ({ pattern: `hashgate.test/${prefix}/*`, action: "block", lists: ["demo"], ...extra });
  options = {
    origin: origin.url,
    http: true,
    policy: {
      routes: [
        { pattern: "*/*", action: "block", lists: ["demo"], scan: ["responses", "uploads"] },
        ...FAULTS.map((f) => route(f.prefix)),
        route("reject"),
        route("restart"),
        route("auto", { report: { auto: true } }),
      ],
    },
    bindings: {
      ADMIN_TOKEN: ADMIN,
      NCMEC_USERNAME: ncmec.username,
      NCMEC_PASSWORD: ncmec.password,
      REPORTING_RETRY_BASE_MS: "100",
      REPORTING: JSON.stringify({
        environment: "test",
        base_url: ncmec.url,
        reporter: { first_name: "Rae", last_name: "Porter", email: "abuse@example.com", phone: "+1 555 0100" },
        terms_of_service: "https://example.com/terms",
        legal_url: "https://example.com/legal",
      }),
    },
    // Durable local storage, so a restarted worker sees the same KV and R2.
    miniflare: { kvPersist: path.join(persist, "kv"), r2Persist: path.join(persist, "r2") },
  };
  worker = await startWorker(options);
  await worker.loadIndex(await buildIndex("reporting", { demo: DEMO_LIST }));
});

after(async () => {
  await worker?.dispose();
  await origin?.close();
  await ncmec?.close();
  if (persist) await rm(persist, { recursive: true, force: true });
});

const admin = (action, init = {}) =>
  worker.fetch(`/.hashgate/admin/${action}`, {
    ...init,
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json", ...(init.headers ?? {}) },
  });

async function confirm(incident, extra = {}) {
  const res = await admin("confirm", { method: "POST", body: JSON.stringify({ incident, reviewer: "ana@example.com", note: "matches the list", ...extra }) });
  const body = await res.json();
  assert.equal(res.status, 202, JSON.stringify(body));
  return body.filing;
}

async function filing(incident) {
  const res = await admin(`filing?incident=${encodeURIComponent(incident)}`);
  if (res.status === 404) {
    await res.arrayBuffer();
    return null;
  }
  return (await res.json()).filing;
}

const DONE = new Set(["finished", "retracted", "failed"]);

/** Fires the cron until the filing is over (bounded). */
async function drive(incident, { ticks = 80 } = {}) {
  let f;
  for (let i = 0; i < ticks; i++) {
    await worker.scheduled();
    f = await filing(incident);
    if (f && DONE.has(f.stage)) return f;
    await new Promise((r) => setTimeout(r, 120));
  }
  throw new Error(`filing of ${incident} did not finish: ${JSON.stringify(f, null, 1)}`);
}

/** A sighting on a route's prefix, its record and evidence in place. */
async function sighting(prefix) {
  const pattern = prefix ? `hashgate.test/${prefix}/*` : "*/*";
  await assertBlocked(await worker.fetch(`${prefix ? `/${prefix}` : ""}/photos/chelsea.jpg`), `chelsea on ${pattern}`);
  const incident = incidentOf(pattern);
  await worker.waitForReports((rs) => rs.some((r) => r.key === incident), { prefix: incident });
  await waitForEvidence(await worker.r2(), `evidence/v1/${CHELSEA}/`, (keys) => keys.includes(`evidence/v1/${CHELSEA}/object`));
  return incident;
}

const finished = (incident) => ncmec.reportsFor(incident).filter((r) => r.state === "finished");

describe("filing a confirmed incident", () => {
  test("the admin endpoint wants the token, and an incident that exists", async () => {
    const res = await worker.fetch("/.hashgate/admin/confirm", { method: "POST", body: "{}" });
    assert.equal(res.status, 401);
    await res.arrayBuffer();
    const wrong = await worker.fetch("/.hashgate/admin/confirm", { method: "POST", body: "{}", headers: { authorization: "Bearer nope" } });
    assert.equal(wrong.status, 401);
    await wrong.arrayBuffer();
    const missing = await admin("confirm", { method: "POST", body: JSON.stringify({ incident: incidentOf("hashgate.test/nowhere/*"), reviewer: "a" }) });
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();
    const bad = await admin("confirm", { method: "POST", body: JSON.stringify({ incident: "report/v1/../../x", reviewer: "a" }) });
    assert.equal(bad.status, 400);
    await bad.arrayBuffer();
  });

  test("nothing is sent before a person confirms; then submit, upload (the image), fileinfo, finish, in order", async () => {
    const incident = await sighting("");
    // An upload of the same image: its client IP goes into the report.
    const up = await worker.http("/profile/avatar", {
      method: "PUT",
      body: chelsea,
      headers: { "content-type": "image/jpeg", "cf-connecting-ip": "203.0.113.77" },
    });
    await assertBlocked(up, "upload");
    await waitForEvidence(await worker.r2(), `evidence/v1/${CHELSEA}/sighting/`, (keys) => keys.length >= 2);

    await worker.scheduled();
    assert.equal(ncmec.calls.length, 0, "no call without a confirmation");
    assert.equal(await filing(incident), null);

    const f0 = await confirm(incident, { viewed: true });
    assert.equal(f0.stage, "confirmed");
    assert.equal(f0.reviewer, "ana@example.com");
    const done = await drive(incident);
    assert.equal(done.stage, "finished", JSON.stringify(done));

    const [report] = ncmec.reportsFor(incident);
    assert.equal(ncmec.reportsFor(incident).length, 1);
    assert.equal(report.state, "finished");
    assert.equal(done.report_id, report.id);
    const steps = ncmec.calls.filter((c) => c.reportId === report.id).map((c) => c.step);
    assert.deepEqual(steps, ["submit", "upload", "fileinfo", "finish"]);
    for (const c of ncmec.calls) assert.match(c.headers.authorization, /^Basic /);

    // The report document, from the record, the manifests and the configuration.
    const doc = report.doc;
    assert.equal(find(doc, "incidentType").text, "Child Pornography (possession, manufacture, and distribution)");
    assert.ok(find(doc, "webPageIncident").children.some((c) => c.name === "url" && c.text === "http://hashgate.test/photos/chelsea.jpg"));
    assert.equal(find(doc, "reportingPerson").children.find((c) => c.name === "email").text, "abuse@example.com");
    assert.equal(find(doc, "legalURL").text, "https://example.com/legal");
    assert.equal(find(doc, "termsOfService").text, "https://example.com/terms");
    assert.equal(find(find(doc, "personOrUserReported"), "ipAddress").text, "203.0.113.77");

    // The file is the image itself, and its details name its hash.
    assert.equal(report.files.length, 1);
    const [file] = report.files;
    assert.deepEqual(file.bytes, chelsea, "the uploaded bytes are the original image");
    assert.equal(file.type, "image/jpeg");
    const details = file.details.doc;
    const hash = find(details, "originalFileHash");
    assert.equal(hash.attrs.hashType, "SHA256");
    assert.equal(hash.text, CHELSEA);
    assert.equal(find(details, "fileViewedByEsp").text, "true");
    assert.equal(find(details, "fileId").text, file.fileId);

    // A second confirmation changes nothing and sends nothing.
    const calls = ncmec.calls.length;
    const again = await confirm(incident, { reviewer: "bo" });
    assert.equal(again.stage, "finished");
    assert.equal(again.reviewer, "ana@example.com");
    await worker.scheduled();
    assert.equal(ncmec.calls.length, calls);
  });
});

describe("faults at each step", () => {
  for (const { step, mode, prefix } of FAULTS) {
    test(`${step} failing (${mode}) once: exactly one finished report`, async () => {
      const incident = await sighting(prefix);
      ncmec.reset();
      ncmec.failAt(step, { times: 1, mode });
      await confirm(incident);
      const done = await drive(incident);
      ncmec.reset();
      assert.equal(done.stage, "finished", JSON.stringify(done));
      const ok = finished(incident);
      assert.equal(ok.length, 1, `finished reports: ${ok.map((r) => r.id)}`);
      assert.equal(ok[0].id, done.report_id);
      assert.ok(ok[0].files.some((f) => f.details && Buffer.compare(f.bytes, chelsea) === 0), "the image with its details");
      const faulted = ncmec.calls.filter((c) => c.step === step && c.fault === mode);
      assert.equal(faulted.length, 1, "the fault happened");
      assert.ok(done.history.some((h) => h.includes(`/${step} failed`)), done.history.join("\n"));
      // Nothing left open and unfinished except a report whose answer was lost before its id was known.
      const open = ncmec.reportsFor(incident).filter((r) => r.state === "open");
      assert.equal(open.length, step === "submit" && mode === "drop" ? 1 : 0);
    });
  }

  test("an answer retrying cannot fix (4100 at fileinfo) retracts the report", async () => {
    const incident = await sighting("reject");
    ncmec.failAt("fileinfo", { times: 1, mode: "reject" });
    await confirm(incident);
    const done = await drive(incident);
    ncmec.reset();
    assert.equal(done.stage, "retracted", JSON.stringify(done));
    assert.match(done.last_error, /4100/);
    const reports = ncmec.reportsFor(incident);
    assert.equal(reports.length, 1);
    assert.equal(reports[0].state, "retracted");
    assert.equal(finished(incident).length, 0);
  });
});

describe("durability", () => {
  test("a worker restarted mid-job resumes and files exactly once", async () => {
    const incident = await sighting("restart");
    ncmec.failAt("upload", { times: 1000, mode: "http500" });
    await confirm(incident);
    for (let i = 0; i < 3; i++) await worker.scheduled();
    const mid = await filing(incident);
    assert.equal(mid.stage, "submitted", JSON.stringify(mid));
    assert.ok(mid.report_id);

    await worker.dispose();
    ncmec.reset();
    worker = await startWorker(options);
    const done = await drive(incident);
    assert.equal(done.stage, "finished");
    assert.equal(done.report_id, mid.report_id, "the same report, resumed");
    const reports = ncmec.reportsFor(incident);
    assert.equal(reports.length, 1, "one submit");
    assert.equal(finished(incident).length, 1);
  });

  test("report.auto routes are filed without a confirmation", async () => {
    const incident = await sighting("auto");
    let f;
    for (let i = 0; i < 50 && !f; i++) {
      f = await filing(incident);
      if (!f) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(f, "the consumer confirmed it");
    assert.equal(f.reviewer, "policy (report.auto)");
    const done = await drive(incident);
    assert.equal(done.stage, "finished");
    assert.equal(finished(incident).length, 1);
  });
});
