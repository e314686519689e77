// Content-Encoding on a scanning route: every coding a client can decode is
// decoded for scanning (the runtime itself decodes only a lone `gzip` or
// `br`); a coding that is unknown or does not decode, on an image-typed or
// untyped response, is a failure (fail mode), never a pass.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST } from "./support/index.mjs";
import { get as httpGet } from "node:http";
import { assertBlocked } from "./support/compare.mjs";
import { announcedCoding, FIXTURES_DIR } from "./support/origin.mjs";

const POLICY = {
  routes: [
    { pattern: "*/*", action: "block", lists: ["demo"], fail: "open" },
    { pattern: "*/closed/*", action: "block", lists: ["demo"], fail: "closed" },
  ],
};
const enc = (coding, file) => `/__encoded/${encodeURIComponent(coding)}${file}`;

/** Status, Content-Encoding and the bytes as sent (no decoding), over real HTTP. */
const rawGet = (url) =>
  new Promise((resolve, reject) => {
    httpGet(url, { headers: { "accept-encoding": "identity" } }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, coding: res.headers["content-encoding"], body: Buffer.concat(chunks) }));
    }).on("error", reject);
  });

/** The worker passes the origin's response as it was: status, coding and the encoded bytes. */
async function assertPassesEncoded(path, coding) {
  const direct = await rawGet(`${origin.url}${path}`);
  const res = await rawGet(new URL(path, worker.url).href);
  assert.equal(res.status, 200, `${path}: ${res.body.subarray(0, 200)}`);
  assert.equal(res.coding, announcedCoding(coding));
  assert.equal(direct.coding, announcedCoding(coding));
  assert.ok(res.body.equals(direct.body), `${path}: the bytes as the origin sent them`);
}

let origin, worker;

before(async () => {
  origin = await startOrigin({ mounts: { "/closed": FIXTURES_DIR } });
  // Real HTTP for the pass-through checks: the bytes exactly as sent.
  worker = await startWorker({ origin: origin.url, policy: POLICY, http: true });
  await worker.loadIndex(await buildIndex("encodings", { demo: DEMO_LIST }));
});

after(async () => {
  await worker?.dispose();
  await origin?.close();
});

const CODINGS = ["gzip", "br", "deflate", "deflate~raw", "x-gzip", "GZIP", "zstd", "deflate, gzip", "gzip, br", "br, deflate", "gzip, gzip", "identity, deflate"];

describe("a listed image in any coding answers 451", () => {
  for (const coding of CODINGS) {
    test(`Content-Encoding: ${coding}`, async () => {
      await assertBlocked(await worker.fetch(enc(coding, "/photos/chelsea.jpg"), { headers: { "accept-encoding": "identity" } }), coding);
    });
  }

  for (const coding of ["deflate", "zstd", "gzip, br"]) {
    test(`untyped, Content-Encoding: ${coding}`, async () => {
      await assertBlocked(await worker.fetch(enc(coding, "/__untyped/photos/chelsea.jpg")), coding);
    });
  }
});

describe("a clean image in any coding passes as the origin sent it", () => {
  for (const coding of ["deflate", "x-gzip", "zstd", "deflate, gzip"]) {
    test(`Content-Encoding: ${coding}`, async () => {
      await assertPassesEncoded(enc(coding, "/photos/coffee.jpg"), coding);
    });
  }
});

describe("a coding that cannot be decoded takes the fail mode", () => {
  // coffee.jpg is not listed: before, its bytes were hashed as they came and passed.
  for (const [coding, what] of [["compress", "an unknown coding"], ["deflate~corrupt", "a body that is not deflate"], ["gzip, dcb", "an unknown coding in a stack"]]) {
    test(`${what} on an image, fail closed: 503`, async () => {
      const res = await worker.fetch(`/closed${enc(coding, "/photos/coffee.jpg")}`);
      assert.equal(res.status, 503, `${coding}: ${await res.text()}`);
    });
  }

  test("an unknown coding on an untyped body, fail closed: 503", async () => {
    const res = await worker.fetch(`/closed${enc("compress", "/__untyped/photos/coffee.jpg")}`);
    assert.equal(res.status, 503, await res.text());
  });

  test("fail open: passed, and reported unscanned", async () => {
    const path = enc("compress", "/photos/coffee.jpg");
    await assertPassesEncoded(path, "compress");
    const records = await worker.waitForReports((rs) => rs.some((r) => r.value.url?.endsWith(path) || JSON.stringify(r.value).includes("undecodable-encoding")), {
      prefix: "unscanned/v1/",
    });
    assert.ok(JSON.stringify(records).includes("undecodable-encoding"));
  });

  test("a non-image type with an unknown coding passes untouched", async () => {
    await assertPassesEncoded(`/closed${enc("compress", "/web/hello.txt")}`, "compress");
  });
});
