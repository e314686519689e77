// WebSocket upgrades on a scanning route are passed through to the origin:
// the 101 and the socket are the origin's, messages flow both ways.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startOrigin } from "./support/origin.mjs";
import { startWorker } from "./support/worker.mjs";

let origin, worker;

before(async () => {
  origin = await startOrigin();
  worker = await startWorker({
    origin: origin.url,
    policy: { routes: [{ pattern: "*/*", action: "block", lists: ["*"], scan: ["responses", "uploads"], fail: "closed" }] },
  });
});

after(async () => {
  await worker?.dispose();
  await origin?.close();
});

test("a websocket upgrade reaches the origin and messages flow both ways", async () => {
  const res = await worker.fetch("/socket", { headers: { upgrade: "websocket" } });
  assert.equal(res.status, 101);
  const ws = res.webSocket;
  assert.ok(ws, "a WebSocket");
  const received = [];
  const next = () =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no message; have ${JSON.stringify(received)}`)), 5000);
      ws.addEventListener("message", (e) => {
        clearTimeout(timer);
        received.push(e.data);
        resolve(e.data);
      }, { once: true });
    });
  const hello = next();
  ws.accept();
  assert.equal(await hello, "hello from origin");
  const echo = next();
  ws.send("ping");
  assert.equal(await echo, "echo: ping");
  ws.close();
  assert.equal(origin.requests.filter((r) => r.upgrade && r.path === "/socket").length, 1);
});
