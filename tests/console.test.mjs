// The console, in a real browser: Debian's Chromium driven by
// playwright-core (the system browser; nothing downloaded), against the
// worker in workerd over real HTTP.
//
// One story, in order: an image is blocked (a real 451, twice: once through
// a URL carrying a script tag); a reviewer signs in with the development
// token, sees the sighting, marks it a false positive with the keyboard;
// the same image passes afterwards; the audit log shows the action. Along
// the way: attacker text is shown as text and never runs, every control
// has a label, a Tab walk reaches the actions, the reviewer reveals a
// blurred greyscale rendering of the preserved evidence (logged; a
// sighting without evidence, or whose evidence is no image, says so),
// forms without the CSRF token or from another origin are refused, a
// viewer cannot act. Screenshots of
// each page go to docs/console/, the bytes of each page to
// target/e2e/console-pages.json.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { FIXTURES_DIR, REPO_ROOT, sha256, startOrigin } from "./support/origin.mjs";
import { EVIDENCE_KEY, EVIDENCE_KEY_ID, startWorker } from "./support/worker.mjs";
import { sealEvidence, waitForEvidence } from "./support/evidence.mjs";
import { buildIndex, DEMO_LIST, E2E_DIR } from "./support/index.mjs";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = path.join(REPO_ROOT, "docs", "console");
const BASE = "/_hashgate/console/";
const DEV_TOKEN = "e2e-dev-token";
const REVIEWER = "rev@example.com";
const VIEWER = "someone@example.com";
const SCRIPT_URL_PATH = "/photos/chelsea.jpg?name=<script>window.__xss=1</script>";
const STORED_URL = "r2://uploads/<script>window.__xss=2</script><img src=x onerror=window.__xss=3>.jpg";
const chelsea = await readFile(path.join(FIXTURES_DIR, "photos/chelsea.jpg"));
const CHELSEA_SHA = sha256(chelsea);

let origin, worker, context, userDataDir;
const pageBytes = {};

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} missing: run scripts/setup.sh (apt-get install chromium)`);
  origin = await startOrigin();
  worker = await startWorker({
    origin: origin.url,
    http: true,
    logs: true,
    policy: {
      routes: [{ pattern: "*/*", action: "block", lists: ["demo"] }],
      index: { refresh_seconds: 1 },
      console: {
        dev_login: true,
        roles: { admin: ["lead@example.com"], reviewer: [REVIEWER], viewer: ["*@example.com"] },
      },
    },
    bindings: { CONSOLE_SECRET: "e2e-console-secret", CONSOLE_DEV_TOKEN: DEV_TOKEN },
  });
  await worker.loadIndex(await buildIndex("console", { demo: DEMO_LIST }));
  userDataDir = await mkdtemp(path.join(tmpdir(), "hashgate-chromium-"));
  // An empty profile of its own (playwright passes it as --user-data-dir).
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await context?.close();
  await worker?.dispose();
  await origin?.close();
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
  if (Object.keys(pageBytes).length) {
    await mkdir(E2E_DIR, { recursive: true });
    await writeFile(path.join(E2E_DIR, "console-pages.json"), JSON.stringify(pageBytes, null, 1) + "\n");
  }
});

const url = (p) => new URL(p, worker.url).href;

/** Opens a page, failing on any script error or CSP violation it reports. */
async function openPage() {
  const page = await context.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") page.problems.push(`console: ${m.text()}`);
  });
  return page;
}

/** Goes to a console page, records its bytes, takes its screenshot. */
async function visit(page, sub, shot) {
  const res = await page.goto(url(BASE + sub));
  assert.equal(res.status(), 200, `${sub}: ${res.status()}`);
  const headers = res.headers();
  assert.match(headers["content-security-policy"], /default-src 'none'/);
  assert.doesNotMatch(headers["content-security-policy"], /script-src/);
  assert.equal(headers["x-frame-options"], "DENY");
  assert.equal(headers["cache-control"], "no-store");
  assert.match(headers["content-security-policy"], /img-src 'none'/, "images only on a reveal's page");
  const body = await res.body();
  if (shot) {
    pageBytes[shot] = body.length;
    await mkdir(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, `${shot}.png`), fullPage: true });
  }
  return body.toString();
}

async function signIn(page, email) {
  await page.goto(url(BASE));
  assert.ok(page.url().endsWith(`${BASE}login`), `not sent to sign-in: ${page.url()}`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Development token").fill(DEV_TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(url(BASE));
}

/** Every visible form control has a label. */
async function assertLabelled(page) {
  const unlabelled = await page.$$eval("input:not([type=hidden]), select, textarea, button", (els) =>
    els
      .filter((el) => (el.tagName === "BUTTON" ? !el.textContent.trim() : el.labels.length === 0))
      .map((el) => el.outerHTML),
  );
  assert.deepEqual(unlabelled, []);
}

describe("the console in a browser", () => {
  let page, recordKey, recordUrls;

  test("a real 451 (twice, once with a script tag in the URL) becomes a sighting", async () => {
    for (const p of [SCRIPT_URL_PATH, "/photos/chelsea.jpg"]) {
      const res = await worker.http(p);
      assert.equal(res.status, 451, p);
      await res.arrayBuffer();
    }
    const records = await worker.waitForReports(
      (rs) => rs.some((r) => r.key.startsWith(`report/v1/${CHELSEA_SHA}/`) && r.value.count === 2),
      { prefix: "report/" },
    );
    const record = records.find((r) => r.key.startsWith(`report/v1/${CHELSEA_SHA}/`));
    recordKey = record.key;
    recordUrls = record.value.urls;
    assert.ok(recordUrls.some((u) => u.includes("window.__xss=1")), JSON.stringify(recordUrls));
    // A record from a stored object whose key an uploader chose: raw markup in the URL.
    const stored = {
      ...record.value,
      key: `report/v1/${"e".repeat(64)}/${recordKey.split("/").pop()}`,
      sha256: "e".repeat(64),
      urls: [STORED_URL],
      count: 1,
      event_ids: ["stored-1"],
    };
    await (await worker.kv("REPORTS")).put(stored.key, JSON.stringify(stored));
  });

  test("without signing in there is nothing to see", async () => {
    const res = await fetch(url(BASE + "sightings"), { redirect: "manual" });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), `${BASE}login`);
    const wrong = await fetch(url(BASE + "login"), {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: new URL(worker.url).origin },
      body: new URLSearchParams({ email: REVIEWER, token: "not-the-token" }),
      redirect: "manual",
    });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get("set-cookie"), null);
  });

  test("sign in with the development token; the overview shows the sighting", async () => {
    page = await openPage();
    await page.goto(url(BASE + "login"));
    await mkdir(SHOTS, { recursive: true });
    pageBytes["sign-in"] = (await (await fetch(url(BASE + "login"))).arrayBuffer()).byteLength;
    await page.screenshot({ path: path.join(SHOTS, "sign-in.png"), fullPage: true });
    await assertLabelled(page);
    await signIn(page, REVIEWER);
    const html = await visit(page, "", "overview");
    assert.match(html, /<svg role="img"/);
    assert.ok(await page.getByText(`${REVIEWER} (reviewer)`).isVisible());
    const blocked = await page.locator("table >> nth=0").innerText();
    assert.match(blocked, /\b3\b/, "two sightings of chelsea plus the stored one, blocked");
    assert.match(await page.locator("body").innerText(), /Generation [0-9a-f]{16}/);
  });

  test("the sightings page shows attacker text as text, and it never runs", async () => {
    const html = await visit(page, "sightings", "sightings");
    assert.ok(!html.includes("<script>window.__xss"), "markup from a URL reached the page unescaped");
    const cells = await page.locator("td.url").allInnerTexts();
    assert.ok(cells.includes(STORED_URL), `stored URL not shown as text: ${JSON.stringify(cells)}`);
    assert.ok(
      cells.some((c) => c.includes("window.__xss=1")),
      `the script-tag URL is not listed: ${JSON.stringify(cells)}`,
    );
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    assert.equal(await page.locator("script").count(), 0);
    assert.equal(await page.locator("main img").count(), 0, "no image is shown by default");
    await assertLabelled(page);
    // The filter narrows by status.
    await page.getByLabel("Status").selectOption("false-positive");
    await page.getByRole("button", { name: "Filter" }).click();
    assert.equal(await page.locator("td.url").count(), 0);
    await page.getByLabel("Status").selectOption("blocked");
    await page.getByLabel("List").selectOption("demo");
    await page.getByRole("button", { name: "Filter" }).click();
    assert.equal(await page.locator("td.url").count(), 2);
  });

  test("a Tab walk reaches the actions; mark the false positive with the keyboard", async () => {
    await visit(page, `sighting?key=${encodeURIComponent(recordKey)}`, "sighting");
    // Every URL shown exactly as recorded (the browser sent the tag percent-encoded).
    assert.deepEqual(await page.locator("td.url").allInnerTexts(), recordUrls);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    await assertLabelled(page);
    const reached = [];
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press("Tab");
      const focused = await page.evaluate(() => {
        const el = document.activeElement;
        return { tag: el.tagName, label: el.labels?.[0]?.textContent ?? el.textContent.trim() };
      });
      reached.push(focused);
      if (focused.tag === "TEXTAREA" && focused.label === "Why is it a false positive") break;
    }
    const at = reached.at(-1);
    assert.deepEqual(at, { tag: "TEXTAREA", label: "Why is it a false positive" }, JSON.stringify(reached));
    assert.ok(reached.some((r) => r.tag === "A" && r.label === "Skip to content"));
    assert.ok(reached.some((r) => r.tag === "BUTTON" && r.label === "Confirm (report)"));
    await page.keyboard.type("A photo of a cat: the PDQ entry is too broad.");
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.textContent), "Mark false positive");
    // The form posts and is redirected back to the same URL: wait for the
    // answer to the POST and the page it leads to, not for the URL (which
    // already matches before the post).
    await Promise.all([
      page.waitForResponse((r) => r.request().method() === "POST"),
      page.keyboard.press("Enter"),
    ]);
    await page.waitForLoadState("load");
    await page.waitForFunction(() => document.body.innerText.includes("review: false-positive"), null, { timeout: 10_000 }).catch(() => {});
    assert.match(await page.locator("table >> nth=0").innerText(), /review: false-positive/);
    assert.match(await page.locator("body").innerText(), /\[false-positive\] A photo of a cat/);
  });

  test("the same image passes afterwards (within the refresh bound)", async () => {
    const overrides = JSON.parse(await (await worker.kv("HASH_INDEX")).get("hg2/overrides"));
    assert.equal(overrides.v, 1);
    assert.deepEqual(
      overrides.allowed.map((a) => [a.list, a.sha256, a.by]),
      [["demo", CHELSEA_SHA, REVIEWER]],
    );
    await new Promise((r) => setTimeout(r, 1100)); // index.refresh_seconds: 1
    const res = await worker.http("/photos/chelsea.jpg");
    assert.equal(res.status, 200);
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), CHELSEA_SHA);
    // rocket (another entry of the same list) is still blocked.
    const rocket = await worker.http("/photos/rocket.jpg");
    assert.equal(rocket.status, 451);
    await rocket.arrayBuffer();
  });

  test("the audit log shows the action", async () => {
    await visit(page, "audit", "audit");
    const row = await page.locator("tbody tr").first().innerText();
    assert.match(row, new RegExp(REVIEWER.replace(".", "\\.")));
    assert.match(row, /false-positive/);
    assert.match(row, /A photo of a cat/);
    assert.match(row, /reviewer/);
    const entries = await (await worker.kv("REPORTS")).list({ prefix: "audit/v1/" });
    assert.equal(entries.keys.length, 1);
    const expiration = entries.keys[0].expiration;
    assert.ok(Math.abs(expiration - (Date.now() / 1000 + 365 * 86400)) < 120, "kept one year");
  });

  test("list health and the stored sighting page render", async () => {
    await visit(page, "health", "health");
    await visit(page, `sighting?key=${encodeURIComponent(`report/v1/${"e".repeat(64)}/${recordKey.split("/").pop()}`)}`);
    assert.equal(await page.locator("td.url").first().innerText(), STORED_URL);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    assert.deepEqual(page.problems, []);
  });

  /** Every audit entry as stored (the value: the listing's metadata leaves out the detail). */
  async function auditEntries() {
    const kv = await worker.kv("REPORTS");
    const { keys } = await kv.list({ prefix: "audit/v1/" });
    return Promise.all(keys.map(async (k) => JSON.parse(await kv.get(k.name))));
  }

  /** Reveals the sighting `key` from its page (optionally with a reason): the POST's response. */
  async function reveal(key, why) {
    await visit(page, `sighting?key=${encodeURIComponent(key)}`);
    if (why) await page.getByLabel("Why reveal (optional)").fill(why);
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === "POST"),
      page.getByRole("button", { name: "Reveal blurred image" }).click(),
    ]);
    await page.waitForLoadState("load");
    return res;
  }

  test("a reviewer reveals a blurred greyscale rendering of the evidence; it is logged", async () => {
    await waitForEvidence(await worker.r2(), `evidence/v1/${CHELSEA_SHA}/`, (keys) => keys.includes(`evidence/v1/${CHELSEA_SHA}/object`));
    const res = await reveal(recordKey, "Checking the false positive");
    assert.equal(res.status(), 200);
    const headers = res.headers();
    assert.match(headers["content-security-policy"], /img-src data:;/);
    assert.match(headers["content-security-policy"], /default-src 'none'/);
    assert.doesNotMatch(headers["content-security-policy"], /script-src/);
    assert.equal(headers["cache-control"], "no-store");
    const img = page.locator("img.reveal");
    assert.equal(await img.count(), 1);
    assert.equal(await img.getAttribute("alt"), "Blurred greyscale rendering of the image");
    assert.match(await img.getAttribute("src"), /^data:image\/png;base64,/);
    // Decoded by the browser: within the bound, the photo's aspect (chelsea is 451 x 300), grey.
    const shown = await img.evaluate(async (el) => {
      await el.decode();
      const canvas = document.createElement("canvas");
      canvas.width = el.naturalWidth;
      canvas.height = el.naturalHeight;
      const cx = canvas.getContext("2d");
      cx.drawImage(el, 0, 0);
      const px = cx.getImageData(0, 0, canvas.width, canvas.height).data;
      let colour = 0;
      let min = 255;
      let max = 0;
      for (let i = 0; i < px.length; i += 4) {
        if (px[i] !== px[i + 1] || px[i + 1] !== px[i + 2]) colour++;
        min = Math.min(min, px[i]);
        max = Math.max(max, px[i]);
      }
      return { w: el.naturalWidth, h: el.naturalHeight, colour, min, max };
    });
    assert.ok(shown.w > 80 && shown.w <= 160 && shown.h <= 160, JSON.stringify(shown));
    assert.ok(Math.abs(shown.h - (shown.w * 300) / 451) <= 1.5, JSON.stringify(shown));
    assert.equal(shown.colour, 0, "every pixel grey");
    assert.ok(shown.max - shown.min > 40, `shapes remain: ${JSON.stringify(shown)}`);
    await assertLabelled(page);
    assert.deepEqual(page.problems, [], "no CSP violation or script error");
    const body = await res.body();
    pageBytes.reveal = body.length;
    await page.screenshot({ path: path.join(SHOTS, "reveal.png"), fullPage: true });
    // The audit log lists the reveal (who, what, which sighting, why).
    await visit(page, "audit");
    const row = await page.locator("tbody tr").first().innerText();
    assert.match(row, /reveal/);
    assert.match(row, new RegExp(REVIEWER.replace(".", "\\.")));
    assert.match(row, /Checking the false positive/);
    const kv = await worker.kv("REPORTS");
    const entries = await auditEntries();
    const logged = entries.find((e) => e.action === "reveal");
    assert.ok(logged, JSON.stringify(entries));
    assert.equal(logged.who, REVIEWER);
    assert.equal(logged.target, recordKey);
    assert.match(logged.detail, /blurred greyscale rendering \(\d+x\d+\)/);
    // Nothing of the rendering is stored anywhere.
    const keys = (await kv.list()).keys.map((k) => k.name);
    assert.deepEqual(keys.filter((k) => /reveal|render/.test(k)), []);
  });

  test("no evidence, or evidence that is no image: the page says so, and it is logged", async () => {
    const kv = await worker.kv("REPORTS");
    // The stored sighting has no evidence object.
    const storedKey = `report/v1/${"e".repeat(64)}/${recordKey.split("/").pop()}`;
    let res = await reveal(storedKey);
    assert.equal(res.status(), 200);
    assert.doesNotMatch(res.headers()["content-security-policy"], /data:/);
    assert.equal(await page.locator("img").count(), 0);
    assert.match(await page.locator("p.err").innerText(), /No preserved evidence for this image/);
    // Evidence that decrypts but is not an image (an HTML page answered 200 as image/jpeg).
    const html = Buffer.from("<html><body>not an image</body></html>");
    const digest = sha256(html);
    const sealed = sealEvidence(html, EVIDENCE_KEY_ID, EVIDENCE_KEY, "image/jpeg");
    await (await worker.r2()).put(`evidence/v1/${digest}/object`, new Uint8Array(sealed).buffer);
    const record = JSON.parse(await kv.get(recordKey));
    const bogusKey = `report/v1/${digest}/${recordKey.split("/").pop()}`;
    await kv.put(bogusKey, JSON.stringify({ ...record, key: bogusKey, sha256: digest, urls: ["https://x/not-an-image.jpg"] }));
    res = await reveal(bogusKey);
    assert.equal(res.status(), 200);
    assert.equal(await page.locator("img").count(), 0);
    assert.match(await page.locator("p.err").innerText(), /could not be decoded as an image/);
    const entries = await auditEntries();
    const details = entries.filter((e) => e.action === "reveal").map((e) => [e.target, e.detail]);
    assert.ok(details.some(([t, d]) => t === storedKey && /^no rendering: No preserved evidence/.test(d)), JSON.stringify(details));
    assert.ok(details.some(([t, d]) => t === bogusKey && /could not be decoded/.test(d)), JSON.stringify(details));
    const warned = worker
      .logs()
      .split("\n")
      .filter((line) => line.includes('"event":"console-reveal-failed"') && line.includes(bogusKey));
    assert.equal(warned.length, 1, worker.logs().slice(-3000));
    assert.match(warned[0], /"level":"warn"/);
  });

  test("actions need the CSRF token, the console's origin and a role that may act", async () => {
    const own = new URL(worker.url).origin;
    const post = (fields, origin = own) =>
      page.request.post(url(BASE + "action"), {
        headers: { origin },
        form: { key: recordKey, action: "note", why: "x", ...fields },
        maxRedirects: 0,
      });
    const csrf = await page.locator("input[name=csrf]").first().getAttribute("value");
    assert.equal((await post({})).status(), 403, "no token");
    assert.equal((await post({ csrf: "0".repeat(64) })).status(), 403, "a wrong token");
    assert.equal((await post({ csrf }, "http://evil.example")).status(), 403, "another origin");
    assert.equal((await post({ csrf })).status(), 303, "the real form");
    assert.equal((await post({ csrf, action: "release", why: "x" })).status(), 403, "release is for admins");

    await context.clearCookies();
    await signIn(page, VIEWER);
    await visit(page, `sighting?key=${encodeURIComponent(recordKey)}`);
    assert.equal(await page.locator("form[method=post]").count(), 0);
    assert.match(await page.locator("body").innerText(), /can look, not act/);
    // No reveal button, and a reveal posted anyway is refused and not shown.
    assert.equal(await page.getByRole("button", { name: "Reveal blurred image" }).count(), 0);
    const refused = await post({ csrf, action: "reveal", why: "" });
    assert.equal(refused.status(), 403);
    assert.doesNotMatch(await refused.text(), /<img/);
    const reveals = (await auditEntries()).filter((e) => e.action === "reveal");
    assert.ok(reveals.every((e) => e.who === REVIEWER), JSON.stringify(reveals));
  });
});
