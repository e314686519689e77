// Evidence: a listed image, served or uploaded, leaves one encrypted copy
// in the EVIDENCE bucket (R2) per SHA-256, and an encrypted manifest per
// sighting; stored bytes are never the plaintext, decrypt with the
// operator's key to the original and match its digest; retention is the
// bucket's lifecycle rule (shipped in evidence-lifecycle.json) and each
// manifest's retain_until. Miniflare's R2 does not apply lifecycle rules,
// so the rule document itself is checked here, not an expiry.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { FIXTURES_DIR, REPO_ROOT, sha256, startOrigin } from "./support/origin.mjs";
import { EVIDENCE_KEY, EVIDENCE_KEY_ID, startWorker } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST } from "./support/index.mjs";
import { assertBlocked } from "./support/compare.mjs";
import { listKeys, openEvidence, readObject, waitForEvidence } from "./support/evidence.mjs";

const YEAR_MS = 365 * 24 * 3600 * 1000;
const KEYS = { [EVIDENCE_KEY_ID]: EVIDENCE_KEY };
const chelsea = await readFile(path.join(FIXTURES_DIR, "photos/chelsea.jpg"));
const rocket = await readFile(path.join(FIXTURES_DIR, "photos/rocket.jpg"));
const coffee = await readFile(path.join(FIXTURES_DIR, "photos/coffee.jpg"));
const CHELSEA = sha256(chelsea);
const ROCKET = sha256(rocket);

function form(parts, boundary = "----hashgate-evidence-3b9") {
  const chunks = [];
  for (const { name, filename, type, data } of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${filename}"\r\nContent-Type: ${type}\r\n\r\n`));
    chunks.push(Buffer.from(data), Buffer.from("\r\n"));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

let origin, worker, bucket;

before(async () => {
  origin = await startOrigin({ mounts: { "/flag": FIXTURES_DIR } });
  worker = await startWorker({
    origin: origin.url,
    http: true,
    policy: {
      routes: [
        { pattern: "*/*", action: "block", lists: ["demo"], scan: ["responses", "uploads"] },
        { pattern: "*/flag/*", action: "flag", lists: ["demo"], scan: ["responses"] },
      ],
      evidence: { headers: ["X-Account-Id"] },
    },
  });
  await worker.loadIndex(await buildIndex("evidence", { demo: DEMO_LIST }));
  bucket = await worker.r2();
});

after(async () => {
  await worker?.dispose();
  await origin?.close();
});

async function sightings(sha) {
  const keys = await listKeys(bucket, `evidence/v1/${sha}/sighting/`);
  return Promise.all(keys.map(async (key) => ({ key, ...openEvidence(await readObject(bucket, key), KEYS) })));
}

describe("evidence of a match", () => {
  test("a served listed image: one encrypted object that decrypts to the original, and a manifest", async () => {
    const before = Date.now();
    await assertBlocked(await worker.fetch("/photos/chelsea.jpg"), "chelsea");
    await waitForEvidence(bucket, `evidence/v1/${CHELSEA}/`, (keys) => keys.length >= 2);

    const stored = await readObject(bucket, `evidence/v1/${CHELSEA}/object`);
    assert.ok(stored, "the image object");
    assert.notDeepEqual(stored, chelsea);
    assert.equal(stored.indexOf(chelsea.subarray(0, 32)), -1, "no plaintext in the stored bytes");
    assert.equal(stored.indexOf(chelsea.subarray(2000, 2032)), -1, "no plaintext in the stored bytes");
    const { header, plain, digest } = openEvidence(stored, KEYS);
    assert.deepEqual(plain, chelsea, "decrypts to the original");
    assert.equal(digest, CHELSEA);
    assert.equal(header.sha256, CHELSEA);
    assert.equal(header.size, chelsea.length);
    assert.equal(header.keyId, EVIDENCE_KEY_ID);
    assert.equal(header.nonce.length, 12);
    assert.equal(header.contentType, "image/jpeg");

    // A wrong key does not open it; nor does an edited header.
    assert.throws(() => openEvidence(stored, { [EVIDENCE_KEY_ID]: Buffer.alloc(32, 8).toString("base64") }));
    const edited = Buffer.from(stored.toString("latin1").replace(`${chelsea.length} image/jpeg`, `${chelsea.length} image/pngx`), "latin1");
    assert.throws(() => openEvidence(edited, KEYS));

    const [sighting] = await sightings(CHELSEA);
    const m = JSON.parse(sighting.plain);
    assert.equal(sighting.header.contentType, "application/json");
    assert.equal(m.sha256, CHELSEA);
    assert.equal(m.size, chelsea.length);
    assert.equal(m.content_type, "image/jpeg");
    assert.equal(m.url, "http://hashgate.test/photos/chelsea.jpg");
    assert.equal(m.route, "*/*");
    assert.equal(m.direction, "response");
    assert.equal(m.action, "blocked");
    assert.ok(m.request_id);
    assert.equal(m.object_key, `evidence/v1/${CHELSEA}/object`);
    assert.equal(m.key_id, EVIDENCE_KEY_ID);
    assert.equal(m.matches[0].list, "demo");
    assert.equal(m.matches[0].id, "demo-chelsea");
    assert.deepEqual(Object.keys(m.matches[0]).sort(), ["distance", "hash", "id", "list", "type", "variant"]);
    assert.equal(m.uploader, undefined, "a served image has no uploader");
    const time = Date.parse(m.time);
    assert.ok(time >= before - 1000 && time <= Date.now() + 1000, m.time);
    assert.equal(Date.parse(m.retain_until) - time, YEAR_MS, "kept one year from the sighting");
    // The sighting's manifest is not plaintext either.
    const raw = await readObject(bucket, sighting.key);
    assert.equal(raw.indexOf(Buffer.from("chelsea.jpg")), -1);
  });

  test("a second sighting (an upload of the same image) adds a manifest, not a copy", async () => {
    const first = await bucket.head(`evidence/v1/${CHELSEA}/object`);
    const { body, contentType } = form([{ name: "photo", filename: "cat.jpg", type: "image/jpeg", data: chelsea }]);
    const res = await worker.http("/profile/upload", {
      method: "POST",
      body,
      headers: {
        "content-type": contentType,
        "cf-connecting-ip": "203.0.113.7",
        "user-agent": "evidence-test/1.0",
        "x-account-id": "acct-42",
        "x-not-kept": "secret",
      },
    });
    await assertBlocked(res, "upload of chelsea");
    await waitForEvidence(bucket, `evidence/v1/${CHELSEA}/sighting/`, (keys) => keys.length >= 2);
    const objects = (await listKeys(bucket, `evidence/v1/${CHELSEA}/`)).filter((k) => k.endsWith("/object"));
    assert.deepEqual(objects, [`evidence/v1/${CHELSEA}/object`], "one copy per SHA-256");
    const again = await bucket.head(`evidence/v1/${CHELSEA}/object`);
    assert.equal(again.etag, first.etag, "the object was not written again");
    assert.equal(again.uploaded.getTime(), first.uploaded.getTime());

    const upload = (await sightings(CHELSEA)).map((s) => JSON.parse(s.plain)).find((m) => m.direction === "upload");
    assert.ok(upload, "the upload's manifest");
    assert.equal(upload.url, "http://127.0.0.1/profile/upload".replace("127.0.0.1", new URL(worker.url).host));
    assert.equal(upload.action, "blocked");
    assert.equal(upload.uploader.ip, "203.0.113.7");
    assert.equal(upload.uploader.user_agent, "evidence-test/1.0");
    assert.deepEqual(upload.uploader.headers, { "x-account-id": "acct-42" }, "only the headers the policy lists");
    assert.equal(upload.uploader.field, "photo");
    assert.equal(upload.uploader.filename, "cat.jpg");
  });

  test("a blocked raw upload that never reached the origin is preserved", async () => {
    const res = await worker.http("/u/rocket.jpg", {
      method: "PUT",
      body: rocket,
      headers: { "content-type": "image/jpeg", "cf-connecting-ip": "198.51.100.4" },
    });
    await assertBlocked(res, "rocket upload");
    await waitForEvidence(bucket, `evidence/v1/${ROCKET}/`, (keys) => keys.length >= 2);
    const { plain, digest } = openEvidence(await readObject(bucket, `evidence/v1/${ROCKET}/object`), KEYS);
    assert.deepEqual(plain, rocket);
    assert.equal(digest, ROCKET);
    const [m] = (await sightings(ROCKET)).map((s) => JSON.parse(s.plain));
    assert.equal(m.uploader.ip, "198.51.100.4");
  });

  test("flagged images are preserved too; clean ones never", async () => {
    const res = await worker.fetch("/flag/photos/chelsea.jpg");
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    await waitForEvidence(bucket, `evidence/v1/${CHELSEA}/sighting/`, (keys) => keys.length >= 3);
    const flagged = (await sightings(CHELSEA)).map((s) => JSON.parse(s.plain)).find((m) => m.action === "flagged");
    assert.equal(flagged.route, "*/flag/*");

    const clean = await worker.fetch("/photos/coffee.jpg");
    assert.equal(clean.status, 200);
    await clean.arrayBuffer();
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await listKeys(bucket, `evidence/v1/${sha256(coffee)}/`), []);
  });
});

describe("natively", () => {
  test("hashgate evidence get decrypts what the worker stored (Web Crypto -> aes-gcm) and checks its digest", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "hashgate-evidence-"));
    try {
      const object = path.join(dir, "object");
      await writeFile(object, await readObject(bucket, `evidence/v1/${CHELSEA}/object`));
      const out = path.join(dir, "chelsea.jpg");
      const cli = (key, extra = []) =>
        promisify(execFile)(
          "cargo",
          ["run", "--release", "--quiet", "-p", "hashgate-cli", "--", "evidence", "get", object, "--out", out, "--sha256", CHELSEA, ...extra],
          { cwd: REPO_ROOT, env: { ...process.env, EVIDENCE_KEY: key } },
        );
      await cli(EVIDENCE_KEY, ["--key-id", EVIDENCE_KEY_ID]);
      assert.deepEqual(await readFile(out), chelsea);
      await rm(out);
      await assert.rejects(cli(Buffer.alloc(32, 9).toString("base64")), /does not decrypt/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("retention", () => {
  test("the shipped lifecycle rule deletes evidence after one year and a day, and only evidence", async () => {
    const doc = JSON.parse(await readFile(path.join(REPO_ROOT, "evidence-lifecycle.json"), "utf8"));
    assert.equal(doc.rules.length, 1);
    const [rule] = doc.rules;
    assert.equal(rule.enabled, true);
    assert.equal(rule.conditions.prefix, "evidence/v1/");
    assert.ok(`evidence/v1/${CHELSEA}/object`.startsWith(rule.conditions.prefix));
    assert.deepEqual(rule.deleteObjectsTransition.condition, { type: "Age", maxAge: 366 * 86400 });
    // wrangler.toml binds the bucket the documented command configures.
    const toml = await readFile(path.join(REPO_ROOT, "wrangler.toml"), "utf8");
    assert.match(toml, /binding = "EVIDENCE"\nbucket_name = "hashgate-evidence"/);
    assert.match(toml, /r2 bucket lifecycle set hashgate-evidence --file evidence-lifecycle.json/);
  });

  test("objects carry their key id and retain_until as metadata", async () => {
    const head = await bucket.head(`evidence/v1/${CHELSEA}/object`);
    assert.equal(head.customMetadata.key_id, EVIDENCE_KEY_ID);
    assert.equal(head.customMetadata.sha256, CHELSEA);
    const until = Date.parse(head.customMetadata.retain_until);
    assert.ok(Math.abs(until - (Date.now() + YEAR_MS)) < 120_000, head.customMetadata.retain_until);
  });
});
