// Ranges on a scanning route: no byte of an image reaches the client
// before the whole image was checked. A 206 from the origin makes the
// worker fetch the whole object without Range, check it, and answer the
// range itself from the checked bytes; a non-image 206 (video) comes back
// as the origin sent it.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { FIXTURES_DIR, LAST_MODIFIED, startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST, E2E_DIR } from "./support/index.mjs";
import { assertBlocked, assertPassesUntouched } from "./support/compare.mjs";

const POLICY = {
  routes: [
    { pattern: "*/*", action: "block", lists: ["demo"], fail: "open" },
    // Every image here is over the cap: it cannot be checked.
    { pattern: "hashgate.test/closed/*", action: "block", lists: ["demo"], fail: "closed", max_bytes: 10000 },
  ],
};
const MEDIA = path.join(E2E_DIR, "ranges-media");
const CHELSEA = await readFile(path.join(FIXTURES_DIR, "photos/chelsea.jpg"));
const COFFEE = await readFile(path.join(FIXTURES_DIR, "photos/coffee.jpg"));
const identity = { "accept-encoding": "identity" };

let origin, worker;

before(async () => {
  await mkdir(MEDIA, { recursive: true });
  await writeFile(path.join(MEDIA, "clip.bin"), randomBytes(3 << 20));
  origin = await startOrigin({ mounts: { "/media": MEDIA, "/closed": FIXTURES_DIR } });
  worker = await startWorker({ origin: origin.url, policy: POLICY });
  await worker.loadIndex(await buildIndex("ranges", { demo: DEMO_LIST }));
});

after(async () => {
  await worker?.dispose();
  await origin?.close();
});

/** Splits a multipart/byteranges body into [{ range, type, body }]. */
function byteranges(res, body) {
  const boundary = res.headers.get("content-type").match(/boundary=([^;]+)/)[1];
  const parts = [];
  let at = body.indexOf(`--${boundary}\r\n`);
  while (at >= 0) {
    const headEnd = body.indexOf("\r\n\r\n", at);
    const head = body.subarray(at, headEnd).toString("latin1");
    const [, start, end] = head.match(/content-range: bytes (\d+)-(\d+)\/\d+/i);
    const data = body.subarray(headEnd + 4, headEnd + 4 + Number(end) - Number(start) + 1);
    parts.push({ start: Number(start), end: Number(end), type: head.match(/content-type: ([^\r]+)/i)?.[1], body: data });
    at = body.indexOf(`--${boundary}\r\n`, headEnd + 4 + data.length);
  }
  return parts;
}

describe("ranges of a listed image answer 451", () => {
  for (const range of ["bytes=0-9999", "bytes=10000-", "bytes=-5000", "bytes=0-0", "bytes=0-", "bytes=0-99,200-299", "bytes=0-9999, 10000-"]) {
    test(`Range: ${range}`, async () => {
      await assertBlocked(await worker.fetch("/photos/chelsea.jpg", { headers: { range, ...identity } }), range);
    });
  }

  test("If-Range with the current ETag or date", async () => {
    const etag = (await fetch(`${origin.url}/photos/chelsea.jpg`, { method: "HEAD" })).headers.get("etag");
    for (const ifRange of [etag, LAST_MODIFIED]) {
      await assertBlocked(
        await worker.fetch("/photos/chelsea.jpg", { headers: { range: "bytes=100-", "if-range": ifRange, ...identity } }),
        `If-Range ${ifRange}`,
      );
    }
  });

  test("a 200 answered to a Range request (If-Range no longer holds) is checked whole", async () => {
    const headers = { range: "bytes=0-99", "if-range": '"stale"', ...identity };
    assert.equal((await fetch(`${origin.url}/photos/chelsea.jpg`, { headers })).status, 200);
    await assertBlocked(await worker.fetch("/photos/chelsea.jpg", { headers }), "200 for a Range");
  });

  test("served untyped, or typed as something else", async () => {
    await assertBlocked(await worker.fetch("/__untyped/photos/chelsea.jpg", { headers: { range: "bytes=5000-" } }), "untyped");
    await assertBlocked(await worker.fetch("/__typed/video%2Fmp4/photos/chelsea.jpg", { headers: { range: "bytes=5000-" } }), "video/mp4");
  });

  test("an origin whose 206 holds more than its Content-Range says", async () => {
    // The body is the whole listed file; the header claims bytes 100-199.
    const direct = await fetch(`${origin.url}/__whole206/photos/chelsea.jpg`, { headers: { range: "bytes=100-199" } });
    assert.equal(direct.status, 206);
    assert.ok(Buffer.from(await direct.arrayBuffer()).equals(CHELSEA));
    await assertBlocked(await worker.fetch("/__whole206/photos/chelsea.jpg", { headers: { range: "bytes=100-199" } }), "lying 206");
  });

  test("nothing of the image was sent in pieces: concatenating the answers gives no image", async () => {
    const a = await worker.fetch("/photos/chelsea.jpg", { headers: { range: "bytes=0-9999" } });
    const b = await worker.fetch("/photos/chelsea.jpg", { headers: { range: "bytes=10000-" } });
    const joined = Buffer.concat([Buffer.from(await a.arrayBuffer()), Buffer.from(await b.arrayBuffer())]);
    assert.equal(joined.indexOf(CHELSEA.subarray(0, 64)), -1);
  });
});

describe("ranges of a clean image are answered from the checked bytes", () => {
  const get = async (headers) => {
    const res = await worker.fetch("/photos/coffee.jpg", { headers: { ...identity, ...headers } });
    return { res, body: Buffer.from(await res.arrayBuffer()) };
  };

  test("one range: 206 with Content-Range and the bytes", async () => {
    const cases = [
      ["bytes=0-99", 0, 99],
      ["bytes=1000-", 1000, COFFEE.length - 1],
      ["bytes=-500", COFFEE.length - 500, COFFEE.length - 1],
      ["bytes=10-999999999", 10, COFFEE.length - 1],
    ];
    for (const [range, start, end] of cases) {
      const { res, body } = await get({ range });
      assert.equal(res.status, 206, range);
      assert.equal(res.headers.get("content-range"), `bytes ${start}-${end}/${COFFEE.length}`, range);
      assert.equal(res.headers.get("content-type"), "image/jpeg");
      assert.equal(Number(res.headers.get("content-length")), end - start + 1);
      assert.ok(body.equals(COFFEE.subarray(start, end + 1)), range);
    }
  });

  test("two ranges: 206 multipart/byteranges", async () => {
    const { res, body } = await get({ range: "bytes=0-99,-100" });
    assert.equal(res.status, 206);
    assert.match(res.headers.get("content-type"), /^multipart\/byteranges; boundary=/);
    const parts = byteranges(res, body);
    assert.deepEqual(parts.map((p) => [p.start, p.end, p.type]), [[0, 99, "image/jpeg"], [COFFEE.length - 100, COFFEE.length - 1, "image/jpeg"]]);
    assert.ok(parts[0].body.equals(COFFEE.subarray(0, 100)));
    assert.ok(parts[1].body.equals(COFFEE.subarray(COFFEE.length - 100)));
  });

  test("If-Range: a matching ETag or date gives the range, another the whole image", async () => {
    const etag = (await fetch(`${origin.url}/photos/coffee.jpg`, { method: "HEAD" })).headers.get("etag");
    for (const ifRange of [etag, LAST_MODIFIED]) {
      const { res, body } = await get({ range: "bytes=0-99", "if-range": ifRange });
      assert.equal(res.status, 206, ifRange);
      assert.ok(body.equals(COFFEE.subarray(0, 100)));
    }
    for (const ifRange of ['"stale"', "Thu, 01 Jan 2015 00:00:00 GMT", `W/${etag}`]) {
      const { res, body } = await get({ range: "bytes=0-99", "if-range": ifRange });
      assert.equal(res.status, 200, ifRange);
      assert.equal(res.headers.get("content-range"), null);
      assert.ok(body.equals(COFFEE));
    }
  });

  test("unsatisfiable: 416 with bytes */length; overlapping ranges: the whole image", async () => {
    const { res } = await get({ range: `bytes=${COFFEE.length}-` });
    assert.equal(res.status, 416);
    assert.equal(res.headers.get("content-range"), `bytes */${COFFEE.length}`);
    // The origin answers these with a 206; the worker answers from the
    // checked bytes and ignores ranges that overlap (RFC 9110 allows it).
    const whole = await get({ range: "bytes=0-99,50-149" });
    assert.equal(whole.res.status, 200);
    assert.equal(whole.res.headers.get("content-range"), null);
    assert.ok(whole.body.equals(COFFEE));
  });

  test("the pieces join into the image", async () => {
    const a = await get({ range: "bytes=0-9999" });
    const b = await get({ range: "bytes=10000-" });
    assert.ok(Buffer.concat([a.body, b.body]).equals(COFFEE));
  });
});

describe("what stays as the origin sent it", () => {
  test("a range of a non-image (video, large) streams through untouched", async () => {
    const { status, body } = await assertPassesUntouched(worker, origin, "/media/__typed/video%2Fmp4/clip.bin", {
      headers: { range: "bytes=1000-2999" },
    });
    assert.equal(status, 206);
    assert.equal(body.length, 2000);
    const multi = await assertPassesUntouched(worker, origin, "/media/clip.bin", { headers: { range: "bytes=0-9,20-29" } });
    assert.equal(multi.status, 206);
  });

  test("HEAD with a Range has no body to check", async () => {
    const { body } = await assertPassesUntouched(worker, origin, "/photos/chelsea.jpg", { method: "HEAD", headers: { range: "bytes=0-99" } });
    assert.equal(body.length, 0);
  });

});

describe("an image that cannot be checked takes the fail mode", () => {
  test("fail closed: a range of an image over the cap is withheld (503)", async () => {
    const res = await worker.fetch("/closed/photos/coffee.jpg", { headers: { range: "bytes=0-99", ...identity } });
    assert.equal(res.status, 503, await res.text());
  });
});
