// A real webhook receiver: a Node HTTP server on 127.0.0.1 that records
// every POST and verifies its X-Hashgate-Signature (HMAC-SHA256 of the raw
// body, computed here with node:crypto, independently of the worker).
//
//   const hook = await startWebhook({ secret, failFirst: 2 });  // answer 500 twice, then 204
//   hook.url                          // http://127.0.0.1:PORT/hook
//   hook.deliveries                   // [{ headers, raw, json, signatureValid, status }]
//   await hook.waitFor((ds) => ds.some((d) => d.status === 204));
//   await hook.close();

import { createServer } from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";

export function verifySignature(secret, raw, header) {
  const match = /^sha256=([0-9a-f]{64})$/.exec(header ?? "");
  if (!match) return false;
  const expected = createHmac("sha256", secret).update(raw).digest();
  return timingSafeEqual(expected, Buffer.from(match[1], "hex"));
}

/**
 * @param {object} opts
 * @param {string} opts.secret       the HMAC key
 * @param {number} [opts.failFirst]  answer 500 to this many deliveries first
 * @param {boolean} [opts.alwaysFail] answer 500 to every delivery
 * @param {number} [opts.port]      listen on this port (default: any free one); a receiver
 *   that was closed can come back on its old port, as a webhook endpoint that was down
 */
export async function startWebhook({ secret, failFirst = 0, alwaysFail = false, port: listenPort = 0 }) {
  const deliveries = [];
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const raw = Buffer.concat(chunks);
    let json = null;
    try {
      json = JSON.parse(raw.toString("utf8"));
    } catch {}
    const fail = alwaysFail || deliveries.length < failFirst;
    const status = fail ? 500 : 204;
    deliveries.push({
      method: req.method,
      path: req.url,
      headers: req.headers,
      raw,
      json,
      signatureValid: verifySignature(secret, raw, req.headers["x-hashgate-signature"]),
      status,
    });
    res.writeHead(status);
    res.end();
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(listenPort, "127.0.0.1", resolve);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    deliveries,
    async waitFor(predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (predicate(deliveries)) return deliveries;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`timed out waiting for webhook deliveries; have ${deliveries.length}`);
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
