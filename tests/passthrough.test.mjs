// With ORIGIN empty the worker sends the request on to the host it names,
// as when it runs on a Cloudflare route in front of the site.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { FIXTURES_DIR, startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";

let origin;
let worker;

before(async () => {
  origin = await startOrigin();
  worker = await startWorker({ origin: "" });
});

after(async () => {
  await worker?.dispose();
  await origin?.close();
});

test("without ORIGIN the request passes through to the host in its URL", async () => {
  const res = await worker.fetch(`${origin.url}/web/hello.txt`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(await readFile(path.join(FIXTURES_DIR, "web/hello.txt"))));
  assert.equal(origin.count("/web/hello.txt"), 1);
});
