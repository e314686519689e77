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

test("without ORIGIN, a request the worker would send to itself is answered 508, not looped", async () => {
  const self = await startWorker({ origin: "", http: true, logs: true });
  try {
    // Over real HTTP the URL is the worker's own 127.0.0.1 address, as under
    // `wrangler dev` with no ORIGIN: one hop, then 508; the fix is in the
    // log, the public body says nothing about the configuration.
    const res = await self.http("/photos/chelsea.jpg");
    const text = await res.text();
    assert.equal(res.status, 508, text);
    assert.match(text, /^508 Loop Detected\. Request id [\w-]+\.\n$/);
    assert.doesNotMatch(text, /ORIGIN|wrangler|127\.0\.0\.1/);
    await new Promise((r) => setTimeout(r, 200));
    assert.match(self.logs(), /--var ORIGIN:http:\/\/127\.0\.0\.1/);
  } finally {
    await self.dispose();
  }
});
