// Comparing what the worker returned with what the origin returns directly.

import assert from "node:assert/strict";

// Hop-by-hop and per-response headers that any HTTP hop may rewrite.
const VOLATILE = new Set(["date", "connection", "keep-alive", "transfer-encoding"]);

export function headerMap(headers) {
  const out = {};
  for (const [name, value] of headers) {
    if (!VOLATILE.has(name)) out[name] = value;
  }
  return out;
}

/**
 * Fetches `path` from the origin directly and through the worker and
 * asserts the same status, status text, headers and bytes.
 *
 * Sends `Accept-Encoding: identity` unless `init` says otherwise: for a
 * client that accepts gzip, workerd (like Cloudflare's edge) compresses
 * text responses on the way out, whatever the worker does, which changes
 * Content-Length/Content-Encoding on every route, scanning or not.
 * @returns {Promise<{status: number, body: Buffer, headers: object}>}
 */
export async function assertPassesUntouched(worker, origin, path, init = {}) {
  init = { ...init, headers: { "accept-encoding": "identity", ...(init.headers ?? {}) } };
  const direct = await fetch(`${origin.url}${path}`, init);
  const directBody = Buffer.from(await direct.arrayBuffer());
  const res = await worker.fetch(path, init);
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, direct.status, `status of ${path}`);
  assert.equal(res.statusText, direct.statusText, `status text of ${path}`);
  assert.deepEqual(headerMap(res.headers), headerMap(direct.headers), `headers of ${path}`);
  assert.ok(body.equals(directBody), `body of ${path} differs (${body.length} vs ${directBody.length} bytes)`);
  return { status: res.status, body, headers: headerMap(res.headers) };
}

/** Asserts an RFC 7725 451 answer. */
export async function assertBlocked(res, what = "") {
  const text = await res.text();
  assert.equal(res.status, 451, `${what}: expected 451, got ${res.status}: ${text.slice(0, 200)}`);
  assert.equal(res.statusText, "Unavailable For Legal Reasons");
  assert.match(res.headers.get("link") ?? "", /^<[^>]+>; rel="blocked-by"$/, `${what}: Link header`);
  assert.equal(res.headers.get("cache-control"), "no-store");
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain/);
  assert.match(text, /451 Unavailable For Legal Reasons/);
  assert.match(text, /request id [\w-]+/);
  return text;
}
