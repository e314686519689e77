// Smoke test of the toolchain: the built worker, in workerd, proxies to a real
// origin and hands its responses back unchanged.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { FIXTURES_DIR, startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";

let origin;
let worker;

before(async () => {
  origin = await startOrigin();
  worker = await startWorker({ origin: origin.url });
});

after(async () => {
  await worker?.dispose();
  await origin?.close();
});

describe("proxy to the origin", () => {
  for (const [file, type] of [
    ["web/hello.txt", "text/plain; charset=utf-8"],
    ["web/bytes.bin", "application/octet-stream"],
  ]) {
    test(`${file} comes back byte-identical with status and content-type`, async () => {
      const expected = await readFile(path.join(FIXTURES_DIR, file));
      const direct = await fetch(`${origin.url}/${file}`);
      await direct.arrayBuffer();
      origin.reset();

      const res = await worker.fetch(`/${file}?v=1`);
      const body = Buffer.from(await res.arrayBuffer());

      assert.equal(res.status, direct.status);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), direct.headers.get("content-type"));
      assert.equal(res.headers.get("content-type"), type);
      assert.ok(body.equals(expected), `body differs from fixtures/${file}`);
      // Exactly one trip to the origin, with path and query preserved.
      assert.equal(origin.count(), 1);
      assert.equal(origin.requests[0].url, `/${file}?v=1`);
    });
  }

  test("a 404 from the origin stays 404", async () => {
    origin.reset();
    const res = await worker.fetch("/web/no-such-file.png");
    assert.equal(res.status, 404);
    assert.equal(await res.text(), "not found\n");
    assert.equal(origin.count("/web/no-such-file.png"), 1);
  });
});
