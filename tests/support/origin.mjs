// A real origin for end-to-end tests and the demo: a Node HTTP server on
// 127.0.0.1 serving files from fixtures/ (and any extra mounted
// directories). It counts the requests it sees so tests can tell whether
// the worker went to the origin, and keeps a digest of every upload so
// tests can tell whether an upload reached it and with which bytes.
//
// Like a typical static server it sends a strong ETag and Last-Modified,
// answers `Range` requests with 206 (one range: Content-Range; several:
// multipart/byteranges), honours `If-Range`, and accepts PUT/POST uploads
// (answering 201 with the SHA-256 of what it received).
//
//   const origin = await startOrigin({ mounts: { "/variants": dir } });
//   await fetch(`${origin.url}/web/hello.txt`);
//   origin.count("/web/hello.txt")   // -> 1     (origin.count() = all requests)
//   origin.requests                  // [{ method, path, url, headers, bodySha256, bodyLength }, ...]
//   origin.uploads                   // the subset with a body (PUT/POST)
//   origin.reset(); await origin.close();
//
// Special paths for tests: /__redirect?to=PATH (302), /__status/NNN (that
// status), /__untyped/FILE (a fixture without Content-Type), /__typed/TYPE/FILE
// (a fixture with Content-Type TYPE, e.g. /__typed/text%2Fplain/photos/x.jpg),
// /__chunked/FILE (no Content-Length: sent chunked, in pieces),
// /__whole206/FILE (a lying origin: any Range is answered 206 with the
// Content-Range asked for but the whole file as the body),
// /__encoded/CODING/FILE (the file encoded and sent with
// `Content-Encoding: CODING` as written, e.g. deflate, x-gzip, GZIP,
// "deflate, gzip", br, zstd; "deflate~raw" sends raw deflate as deflate,
// "deflate~corrupt" sends the file unencoded as deflate; unknown codings
// such as "compress" send the file unencoded); /__encoded/ comes first and
// the others also work under a mount (/closed/__typed/...).
//
// WebSocket upgrades on any path are accepted: the origin sends one text
// message ("hello from origin") and echoes small text messages back.
//
// Standalone (the demo): node tests/support/origin.mjs [--port N] [--root DIR]

import { createServer } from "node:http";
import { spawnSync } from "node:child_process";
import zlib from "node:zlib";
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const FIXTURES_DIR = path.join(REPO_ROOT, "fixtures");

/** The Last-Modified every file is served with. */
export const LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT";

export const CONTENT_TYPES = {
  ".txt": "text/plain; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".json": "application/json",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".png": "image/png",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".bmp": "image/bmp",
  ".svg": "image/svg+xml",
};

export const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

/** Encodes `data` as `Content-Encoding: coding` says (codings applied left to right). */
export function encodeBody(data, coding) {
  let out = data;
  for (const token of coding.split(",").map((t) => t.trim().toLowerCase())) {
    if (token === "gzip" || token === "x-gzip") out = zlib.gzipSync(out);
    else if (token === "deflate") out = zlib.deflateSync(out);
    else if (token === "deflate~raw") out = zlib.deflateRawSync(out);
    else if (token === "br") out = zlib.brotliCompressSync(out);
    else if (token === "zstd") out = spawnSync("zstd", ["-q", "-c"], { input: out, maxBuffer: 64 << 20 }).stdout;
  }
  return out;
}

/** The `Content-Encoding` header for a coding name of /__encoded/. */
export const announcedCoding = (coding) => coding.replace(/~(raw|corrupt)/g, "");

/**
 * Start the origin.
 * @param {object} [opts]
 * @param {string} [opts.root] directory to serve (default: <repo>/fixtures)
 * @param {Record<string,string>} [opts.mounts] URL prefix -> directory, served besides root
 * @param {number} [opts.port] port (default: any free port)
 */
export async function startOrigin({ root = FIXTURES_DIR, mounts = {}, port = 0 } = {}) {
  root = path.resolve(root);
  const requests = [];

  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://origin.invalid");
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const entry = {
      method: req.method,
      path: url.pathname,
      url: req.url,
      headers: req.headers,
      bodyLength: body.length,
      bodySha256: body.length ? sha256(body) : null,
    };
    requests.push(entry);

    const send = (status, data, headers = {}) => {
      res.writeHead(status, { "content-length": Buffer.byteLength(data), ...headers });
      res.end(req.method === "HEAD" ? undefined : data);
    };
    const text = { "content-type": "text/plain; charset=utf-8" };

    if (req.method === "PUT" || req.method === "POST") {
      const reply = JSON.stringify({ received: body.length, sha256: sha256(body) }) + "\n";
      return send(201, reply, { "content-type": "application/json" });
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      return send(405, "method not allowed\n", { ...text, allow: "GET, HEAD, PUT, POST" });
    }

    if (url.pathname === "/__redirect") {
      const to = url.searchParams.get("to") ?? "/";
      return send(302, `see ${to}\n`, { ...text, location: to });
    }
    const status = url.pathname.match(/^\/__status\/(\d{3})$/);
    if (status) {
      return send(Number(status[1]), `status ${status[1]}\n`, text);
    }

    // Which directory (a mount, or the root), then which file, and which
    // Content-Type to claim.
    let base = root;
    let rel = url.pathname;
    for (const [prefix, dir] of Object.entries(mounts)) {
      if (rel.startsWith(prefix + "/")) {
        base = path.resolve(dir);
        rel = rel.slice(prefix.length);
        break;
      }
    }
    let forcedType;
    let chunked = false;
    let coding = null;
    const encoded = rel.match(/^\/__encoded\/([^/]+)(\/.*)$/);
    if (encoded) {
      coding = decodeURIComponent(encoded[1]);
      rel = encoded[2];
    }
    let lyingRanges = false;
    if (rel.startsWith("/__whole206/")) {
      rel = rel.slice("/__whole206".length);
      lyingRanges = true;
    }
    if (rel.startsWith("/__chunked/")) {
      rel = rel.slice("/__chunked".length);
      chunked = true;
    }
    if (rel.startsWith("/__untyped/")) {
      rel = rel.slice("/__untyped".length);
      forcedType = null;
    } else {
      const typed = rel.match(/^\/__typed\/([^/]+)(\/.*)$/);
      if (typed) {
        forcedType = decodeURIComponent(typed[1]);
        rel = typed[2];
      }
    }
    let file;
    try {
      file = path.join(base, decodeURIComponent(rel));
    } catch {
      return send(400, "bad path\n", text);
    }
    // No escaping the served directory.
    if (file !== base && !file.startsWith(base + path.sep)) {
      return send(403, "forbidden\n", text);
    }
    let data;
    try {
      if (!(await stat(file)).isFile()) throw new Error("not a file");
      data = await readFile(file);
    } catch {
      return send(404, "not found\n", text);
    }
    const headers = {
      etag: `"${sha256(data).slice(0, 16)}"`,
      "last-modified": LAST_MODIFIED,
      "accept-ranges": "bytes",
    };
    const type = forcedType === undefined ? CONTENT_TYPES[path.extname(file).toLowerCase()] ?? "application/octet-stream" : forcedType;
    if (type !== null) headers["content-type"] = type;
    if (coding !== null) {
      data = encodeBody(data, coding);
      headers["content-encoding"] = announcedCoding(coding);
      headers.etag = `"${sha256(data).slice(0, 16)}"`;
    }

    const ifRange = req.headers["if-range"];
    const rangeHolds = ifRange === undefined || ifRange === headers.etag || ifRange === headers["last-modified"];
    if (lyingRanges && req.headers.range) {
      const asked = req.headers.range.match(/^bytes=(\d+)-(\d+)/) ?? [null, "100", "199"];
      return send(206, data, { ...headers, "content-range": `bytes ${asked[1]}-${asked[2]}/${data.length}` });
    }
    const specs = rangeHolds ? req.headers.range?.match(/^bytes=(\d*-\d*(?:, ?\d*-\d*)+)$/) : null;
    if (specs) {
      // Several ranges: multipart/byteranges (each clamped; none unsatisfiable here).
      const boundary = "origin-boundary-1234";
      const parts = [];
      for (const spec of specs[1].split(/, ?/)) {
        const [a, b] = spec.split("-");
        const start = a === "" ? Math.max(0, data.length - Number(b)) : Number(a);
        const end = a === "" || b === "" ? data.length - 1 : Math.min(Number(b), data.length - 1);
        parts.push(Buffer.from(`--${boundary}\r\ncontent-type: ${type}\r\ncontent-range: bytes ${start}-${end}/${data.length}\r\n\r\n`));
        parts.push(data.subarray(start, end + 1), Buffer.from("\r\n"));
      }
      parts.push(Buffer.from(`--${boundary}--\r\n`));
      const { "content-type": _, ...rest } = headers;
      return send(206, Buffer.concat(parts), { ...rest, "content-type": `multipart/byteranges; boundary=${boundary}` });
    }
    const range = rangeHolds ? req.headers.range?.match(/^bytes=(\d*)-(\d*)$/) : null;
    if (range && (range[1] !== "" || range[2] !== "")) {
      let start = range[1] === "" ? data.length - Number(range[2]) : Number(range[1]);
      let end = range[1] === "" || range[2] === "" ? data.length - 1 : Math.min(Number(range[2]), data.length - 1);
      start = Math.max(0, start);
      if (start > end || start >= data.length) {
        return send(416, "", { "content-range": `bytes */${data.length}` });
      }
      return send(206, data.subarray(start, end + 1), { ...headers, "content-range": `bytes ${start}-${end}/${data.length}` });
    }
    if (chunked) {
      res.writeHead(200, headers);
      if (req.method === "HEAD") return res.end();
      const piece = Math.ceil(data.length / 4) || 1;
      for (let i = 0; i < data.length; i += piece) {
        res.write(data.subarray(i, i + piece));
        await new Promise((r) => setTimeout(r, 5));
      }
      return res.end();
    }
    return send(200, data, headers);
  });

  server.on("upgrade", (req, socket) => {
    requests.push({ method: req.method, path: new URL(req.url, "http://o").pathname, url: req.url, headers: req.headers, upgrade: true });
    const key = req.headers["sec-websocket-key"];
    if (!key || req.headers.upgrade?.toLowerCase() !== "websocket") {
      socket.end("HTTP/1.1 400 Bad Request\r\n\r\n");
      return;
    }
    const accept = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    const textFrame = (text) => {
      const payload = Buffer.from(text);
      return Buffer.concat([Buffer.from([0x81, payload.length]), payload]); // < 126 bytes
    };
    socket.write(textFrame("hello from origin"));
    // Echo small masked text frames from the client.
    socket.on("data", (data) => {
      if (data.length < 6 || (data[0] & 0x0f) !== 1) return;
      const len = data[1] & 0x7f;
      const mask = data.subarray(2, 6);
      const payload = Buffer.from(data.subarray(6, 6 + len).map((b, i) => b ^ mask[i % 4]));
      socket.write(textFrame(`echo: ${payload.toString()}`));
    });
    socket.on("error", () => {});
  });

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  const actualPort = server.address().port;

  return {
    url: `http://127.0.0.1:${actualPort}`,
    port: actualPort,
    root,
    requests,
    get uploads() {
      return requests.filter((r) => r.method === "PUT" || r.method === "POST");
    },
    count: (p) => (p === undefined ? requests.length : requests.filter((r) => r.path === p).length),
    reset: () => {
      requests.length = 0;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

// Standalone: serve until killed.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const arg = (name) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const origin = await startOrigin({ port: Number(arg("--port") ?? 0), root: arg("--root") ?? FIXTURES_DIR });
  console.log(`origin serving ${origin.root} on ${origin.url}`);
  const stop = async () => {
    await origin.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
