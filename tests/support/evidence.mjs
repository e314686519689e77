// Reading hashgate evidence objects in tests, written from the format in
// hasher/src/evidence.rs with Node's own AES-256-GCM: a header line
// "HGEV1 AES-256-GCM <key id> <nonce b64> <sha256> <size> <content type>\n"
// (also the additional authenticated data), then ciphertext and tag.

import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

/** Parses an object into its header fields, header line and sealed bytes. */
export function parseEvidence(bytes) {
  const buf = Buffer.from(bytes);
  const end = buf.indexOf(0x0a);
  if (end < 0) throw new Error("no header line");
  const line = buf.subarray(0, end + 1);
  const [magic, alg, keyId, nonce, sha256, size, contentType] = line.toString("utf8").trimEnd().split(" ");
  if (magic !== "HGEV1" || alg !== "AES-256-GCM") throw new Error(`not an evidence object: ${line}`);
  return {
    keyId,
    nonce: Buffer.from(nonce, "base64"),
    sha256,
    size: Number(size),
    contentType,
    aad: line,
    sealed: buf.subarray(end + 1),
  };
}

/** Decrypts an object with `keys[keyId]` (base64); checks the tag. */
export function openEvidence(bytes, keys) {
  const e = parseEvidence(bytes);
  const key = keys[e.keyId];
  if (!key) throw new Error(`no key ${e.keyId}`);
  const decipher = createDecipheriv("aes-256-gcm", Buffer.from(key, "base64"), e.nonce);
  decipher.setAAD(e.aad);
  decipher.setAuthTag(e.sealed.subarray(e.sealed.length - 16));
  const plain = Buffer.concat([decipher.update(e.sealed.subarray(0, e.sealed.length - 16)), decipher.final()]);
  return { header: e, plain, digest: createHash("sha256").update(plain).digest("hex") };
}

/** Every evidence key in the bucket under a prefix, in order. */
export async function listKeys(bucket, prefix) {
  const keys = [];
  let cursor;
  do {
    const page = await bucket.list({ prefix, cursor });
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys;
}

/** Polls until `predicate(keys)` holds for the keys under `prefix`. */
export async function waitForEvidence(bucket, prefix, predicate, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let keys = [];
  while (Date.now() < deadline) {
    keys = await listKeys(bucket, prefix);
    if (predicate(keys)) return keys;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for evidence under ${prefix}; have ${JSON.stringify(keys)}`);
}

/** An object's bytes. */
export async function readObject(bucket, key) {
  const object = await bucket.get(key);
  if (!object) return null;
  return Buffer.from(await object.arrayBuffer());
}

/** Seals `plain` into an evidence object under `keyId` (key base64), as the worker writes one. */
export function sealEvidence(plain, keyId, key, contentType = "application/octet-stream") {
  const nonce = randomBytes(12);
  const digest = createHash("sha256").update(plain).digest("hex");
  const line = Buffer.from(`HGEV1 AES-256-GCM ${keyId} ${nonce.toString("base64")} ${digest} ${plain.length} ${contentType}\n`);
  const cipher = createCipheriv("aes-256-gcm", Buffer.from(key, "base64"), nonce);
  cipher.setAAD(line);
  const sealed = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  return Buffer.concat([line, sealed]);
}
