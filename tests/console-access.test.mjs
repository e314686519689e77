// The console behind Cloudflare Access: the worker verifies the
// Cf-Access-Jwt-Assertion token (RS256, Web Crypto) against the team's
// published keys, here served by a local stand-in of
// https://<team>.cloudflareaccess.com/cdn-cgi/access/certs with a key pair
// made for the test, and maps the email to a role.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createSign, generateKeyPairSync } from "node:crypto";
import http from "node:http";
import { startWorker } from "./support/worker.mjs";

const TEAM = "hashgate-test.cloudflareaccess.com";
const AUD = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";
const BASE = "/_hashgate/console/";

const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const other = generateKeyPairSync("rsa", { modulusLength: 2048 });
const b64url = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

function token(claims, { kid = "k1", key = privateKey, alg = "RS256" } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url({ alg, kid, typ: "JWT" });
  const body = b64url({ iss: `https://${TEAM}`, aud: [AUD], iat: now, nbf: now, exp: now + 600, ...claims });
  const sig = createSign("RSA-SHA256").update(`${head}.${body}`).sign(key).toString("base64url");
  return `${head}.${body}.${sig}`;
}

let certs, certsHits = 0, worker;

before(async () => {
  const jwk = { ...publicKey.export({ format: "jwk" }), kid: "k1", alg: "RS256", use: "sig" };
  certs = http.createServer((req, res) => {
    certsHits++;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ keys: [jwk], public_cert: { kid: "k1", cert: "" } }));
  });
  await new Promise((r) => certs.listen(0, "127.0.0.1", r));
  worker = await startWorker({
    policy: {
      routes: [{ pattern: "*/*", action: "block", lists: ["*"] }],
      console: {
        access: { team_domain: TEAM, aud: AUD, certs_url: `http://127.0.0.1:${certs.address().port}/cdn-cgi/access/certs` },
        roles: { reviewer: ["group:trust-and-safety"], viewer: ["*@example.com"] },
      },
    },
    bindings: { CONSOLE_SECRET: "e2e-console-secret", CONSOLE_DEV_TOKEN: "never-used" },
  });
});

after(async () => {
  await worker?.dispose();
  await new Promise((r) => certs?.close(r));
});

const get = (jwt) =>
  worker.fetch(BASE, { headers: jwt ? { "cf-access-jwt-assertion": jwt } : {}, redirect: "manual" });

describe("Cloudflare Access sign-in", () => {
  test("a valid token signs in, with the role its email or groups give", async () => {
    const res = await get(token({ email: "ops@example.com" }));
    assert.equal(res.status, 200);
    assert.match(await res.text(), /ops@example\.com \(viewer\)/);
    const rev = await get(token({ email: "rev@elsewhere.org", groups: ["trust-and-safety"] }));
    assert.equal(rev.status, 200);
    assert.match(await rev.text(), /rev@elsewhere\.org \(reviewer\)/);
    assert.equal(certsHits, 1, "the keys are fetched once and kept");
  });

  test("anything else is refused", async () => {
    const cases = {
      "no token": undefined,
      "another key": token({ email: "ops@example.com" }, { key: other.privateKey }),
      "a tampered payload": (() => {
        const [h, , s] = token({ email: "ops@example.com" }).split(".");
        return `${h}.${b64url({ iss: `https://${TEAM}`, aud: [AUD], exp: 9e9, email: "boss@example.com" })}.${s}`;
      })(),
      "another application": token({ email: "ops@example.com", aud: ["other"] }),
      "another team": token({ email: "ops@example.com", iss: "https://evil.cloudflareaccess.com" }),
      expired: token({ email: "ops@example.com", exp: Math.floor(Date.now() / 1000) - 3600 }),
      "alg none": `${b64url({ alg: "none", kid: "k1" })}.${b64url({ iss: `https://${TEAM}`, aud: [AUD], exp: 9e9, email: "ops@example.com" })}.`,
      "an unknown key id": token({ email: "ops@example.com" }, { kid: "k9" }),
    };
    for (const [what, jwt] of Object.entries(cases)) {
      const res = await get(jwt);
      assert.equal(res.status, 401, what);
      const body = await res.text();
      assert.doesNotMatch(body, /Overview/, what);
    }
    // Without dev_login the development sign-in does not exist, secret or not.
    const login = await worker.fetch(`${BASE}login`);
    assert.equal(login.status, 404);
    await login.arrayBuffer();
  });

  test("a signed-in email without a role is refused", async () => {
    const res = await get(token({ email: "someone@other.org" }));
    assert.equal(res.status, 403);
    await res.arrayBuffer();
  });
});
