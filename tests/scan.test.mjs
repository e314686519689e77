// Responses on scanning routes: listed images (and altered copies) answer
// 451, everything else comes back exactly as the origin sent it.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { FIXTURES_DIR, REPO_ROOT, startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";
import { buildIndex, DEMO_LIST, E2E_DIR } from "./support/index.mjs";
import { assertBlocked, assertPassesUntouched } from "./support/compare.mjs";

const VARIANTS = path.join(E2E_DIR, "variants");
const manifest = JSON.parse(await readFile(path.join(FIXTURES_DIR, "manifest.json"), "utf8"));
const astronaut = manifest.cases.find((c) => c.file === "photos/astronaut.jpg");

const POLICY = {
  routes: [
    { pattern: "*/*", action: "block", lists: ["demo"], fail: "open" },
    // A hole in the route above: scanning off.
    { pattern: "hashgate.test/off/*", enabled: false, action: "block", lists: ["demo"] },
    // Subscribes to another list only.
    { pattern: "hashgate.test/other/*", action: "block", lists: ["other"] },
    // Exact matches only.
    { pattern: "hashgate.test/strict/*", action: "block", lists: ["demo"], pdq_threshold: 0 },
    // Every query variant: pixel orientations and the content inside borders.
    { pattern: "hashgate.test/robust/*", action: "block", lists: ["demo"], variants: "all" },
  ],
};

let origin;
let worker;

before(async () => {
  await promisify(execFile)("python3", [path.join(REPO_ROOT, "tests/support/images.py"), "variants", VARIANTS]);
  origin = await startOrigin({
    mounts: { "/variants": VARIANTS, "/strict/variants": VARIANTS, "/robust/variants": VARIANTS, "/off": FIXTURES_DIR, "/other": FIXTURES_DIR, "/strict": FIXTURES_DIR },
  });
  worker = await startWorker({ origin: origin.url, policy: POLICY });
  const bulk = await buildIndex("scan", { demo: DEMO_LIST, other: [`pdq,${astronaut.pdq},astro-1`] });
  await worker.loadIndex(bulk);
});

after(async () => {
  await worker?.dispose();
  await origin?.close();
});

describe("listed images answer 451 (RFC 7725)", () => {
  test("the listed photo (PDQ entry)", async () => {
    origin.reset();
    await assertBlocked(await worker.fetch("/photos/chelsea.jpg"), "chelsea");
    assert.equal(origin.count("/photos/chelsea.jpg"), 1);
  });

  for (const variant of ["chelsea-q40.jpg", "chelsea-small.jpg", "chelsea-rot90.jpg", "chelsea-mirror.png"]) {
    test(`an altered copy: ${variant}`, async () => {
      await assertBlocked(await worker.fetch(`/variants/${variant}`), variant);
    });
  }

  test("an exact-digest (SHA-256) entry", async () => {
    await assertBlocked(await worker.fetch("/photos/rocket.jpg"), "rocket");
    // A re-encoding of it is a different file: the exact entry does not match it.
    await assertPassesUntouched(worker, origin, "/exact/rocket.png");
  });

  test("a listed image served without Content-Type is sniffed", async () => {
    await assertBlocked(await worker.fetch("/__untyped/photos/chelsea.jpg"), "untyped");
  });

  test("a listed image served with a wrong Content-Type is sniffed", async () => {
    await assertBlocked(await worker.fetch("/__typed/text%2Fplain/photos/chelsea.jpg"), "text/plain");
    await assertBlocked(await worker.fetch("/__typed/application%2Foctet-stream/photos/chelsea.jpg"), "octet-stream");
    await assertBlocked(await worker.fetch("/__typed/image%2Fpng/photos/chelsea.jpg"), "image/png");
  });

  test("a range covering the whole file is checked like the file", async () => {
    await assertBlocked(await worker.fetch("/photos/chelsea.jpg", { headers: { range: "bytes=0-" } }), "bytes=0-");
  });

  test("a partial range is checked as the whole image (tests/ranges.test.mjs has the rest)", async () => {
    await assertBlocked(await worker.fetch("/photos/chelsea.jpg", { headers: { range: "bytes=0-99" } }), "bytes=0-99");
  });

  test("a route subscribing to another list blocks that list only", async () => {
    await assertPassesUntouched(worker, origin, "/other/photos/chelsea.jpg");
    await assertBlocked(await worker.fetch("/other/photos/astronaut.jpg"), "astronaut on list other");
    // ...and the default route does not subscribe to "other".
    await assertPassesUntouched(worker, origin, "/photos/astronaut.jpg");
  });

  test("the route's threshold applies (0: only an identical PDQ)", async () => {
    await assertBlocked(await worker.fetch("/strict/photos/chelsea.jpg"), "strict chelsea");
    await assertPassesUntouched(worker, origin, "/strict/variants/chelsea-rot90.jpg");
  });
});

describe("query variants", () => {
  const reportFor = async (url) => {
    const records = await worker.waitForReports((rs) => rs.some((r) => r.value.urls.includes(url)), { prefix: "report/v1/" });
    return records.find((r) => r.value.urls.includes(url)).value;
  };

  test("a rotated copy is found by a derived rotation and reported as such", async () => {
    const { matches } = await reportFor("http://hashgate.test/variants/chelsea-rot90.jpg");
    assert.match(matches[0].variant, /^rot(90|270)$/);
  });

  test("a copy with an added border: found with variants \"all\", not with the default", async () => {
    await assertPassesUntouched(worker, origin, "/variants/chelsea-border.jpg");
    await assertBlocked(await worker.fetch("/robust/variants/chelsea-border.jpg"), "border, variants all");
    const { matches } = await reportFor("http://hashgate.test/robust/variants/chelsea-border.jpg");
    assert.match(matches[0].variant, /^trimmed/);
    assert.equal(matches[0].id, "demo-chelsea");
  });
});

describe("everything else comes back untouched", () => {
  for (const file of [
    "photos/coffee.jpg",
    "photos/hubble.jpg",
    "formats/coffee-progressive.jpg",
    "formats/coffee-cmyk.jpg",
    "formats/coffee-palette.png",
    "formats/coffee-grey16.png",
    "formats/coffee.gif",
    "formats/coffee-lossy.webp",
    "formats/coffee.bmp",
  ]) {
    test(`unrelated image ${file}: same status, headers and bytes`, async () => {
      await assertPassesUntouched(worker, origin, `/${file}`);
    });
  }

  test("non-images stream through byte-identical", async () => {
    await assertPassesUntouched(worker, origin, "/web/hello.txt");
    await assertPassesUntouched(worker, origin, "/web/bytes.bin");
    await assertPassesUntouched(worker, origin, "/errors/not-an-image.html");
    await assertPassesUntouched(worker, origin, "/manifest.json");
  });

  test("HEAD of a listed image is not inspected", async () => {
    const { body } = await assertPassesUntouched(worker, origin, "/photos/chelsea.jpg", { method: "HEAD" });
    assert.equal(body.length, 0);
  });

  test("redirects are passed on, not followed", async () => {
    origin.reset();
    const { status, headers } = await assertPassesUntouched(worker, origin, "/__redirect?to=/photos/chelsea.jpg", {
      redirect: "manual",
    });
    assert.equal(status, 302);
    assert.equal(headers.location, "/photos/chelsea.jpg");
    // Once directly, once through the worker; the target was never fetched.
    assert.equal(origin.count("/__redirect"), 2);
    assert.equal(origin.count("/photos/chelsea.jpg"), 0);
  });

  test("origin errors are passed on", async () => {
    assert.equal((await assertPassesUntouched(worker, origin, "/photos/no-such.jpg")).status, 404);
    assert.equal((await assertPassesUntouched(worker, origin, "/__status/500")).status, 500);
    assert.equal((await assertPassesUntouched(worker, origin, "/__status/503")).status, 503);
  });

  test("a disabled route is not scanned", async () => {
    const { body } = await assertPassesUntouched(worker, origin, "/off/photos/chelsea.jpg");
    assert.ok(body.equals(await readFile(path.join(FIXTURES_DIR, "photos/chelsea.jpg"))));
  });
});
