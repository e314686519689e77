// A real origin for end-to-end tests: a Node HTTP server on 127.0.0.1 (free
// port) serving files from fixtures/. It counts the requests it sees so tests
// can tell whether the worker went to the origin (and how often).
//
//   const origin = await startOrigin();          // serves <repo>/fixtures
//   await fetch(`${origin.url}/web/hello.txt`);
//   origin.count("/web/hello.txt")   // -> 1     (origin.count() = all requests)
//   origin.requests                  // [{ method, path, url, headers }, ...]
//   origin.reset(); await origin.close();

import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const FIXTURES_DIR = path.join(REPO_ROOT, "fixtures");

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

/**
 * Start the origin.
 * @param {object} [opts]
 * @param {string} [opts.root] directory to serve (default: <repo>/fixtures)
 * @returns {Promise<{url: string, port: number, root: string, requests: object[],
 *   count: (path?: string) => number, reset: () => void, close: () => Promise<void>}>}
 */
export async function startOrigin({ root = FIXTURES_DIR } = {}) {
  root = path.resolve(root);
  const requests = [];

  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://origin.invalid");
    const entry = { method: req.method, path: url.pathname, url: req.url, headers: req.headers };
    requests.push(entry);

    const send = (status, body, headers = {}) => {
      res.writeHead(status, { "content-length": Buffer.byteLength(body), ...headers });
      res.end(req.method === "HEAD" ? undefined : body);
    };

    if (req.method !== "GET" && req.method !== "HEAD") {
      req.resume();
      return send(405, "method not allowed\n", { "content-type": "text/plain; charset=utf-8", allow: "GET, HEAD" });
    }
    let file;
    try {
      file = path.join(root, decodeURIComponent(url.pathname));
    } catch {
      return send(400, "bad path\n", { "content-type": "text/plain; charset=utf-8" });
    }
    // No escaping the served directory.
    if (file !== root && !file.startsWith(root + path.sep)) {
      return send(403, "forbidden\n", { "content-type": "text/plain; charset=utf-8" });
    }
    try {
      if (!(await stat(file)).isFile()) throw new Error("not a file");
      const body = await readFile(file);
      const type = CONTENT_TYPES[path.extname(file).toLowerCase()] ?? "application/octet-stream";
      return send(200, body, { "content-type": type });
    } catch {
      return send(404, "not found\n", { "content-type": "text/plain; charset=utf-8" });
    }
  });

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address();

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    root,
    requests,
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
