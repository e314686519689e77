// An origin that misbehaves on purpose, written on raw `net` sockets so it
// can break HTTP in ways node:http refuses to: a body cut short by a
// connection reset or a clean close, more bytes than Content-Length, a
// chunked body that never ends, a body trickled slowly, headers sent late.
//
// It serves files under fixtures/ (and mounts), ignoring the first path
// segment, so one origin can sit behind several routes of one worker:
// /open/photos/x.jpg, /closed/photos/x.jpg and /plain/photos/x.jpg are all
// fixtures/photos/x.jpg. What it does with a file is set per "file?query"
// (the query only tells URLs apart, so each case gets fresh cache keys):
//
//   const raw = await startRawOrigin({ mounts: { "/variants": dir } });
//   raw.fault("photos/chelsea.jpg?a", "reset");   // half the body, then a TCP reset
//   raw.fault("photos/chelsea.jpg?a", "ok");      // whole file again, same ETag
//   raw.count("photos/chelsea.jpg?a")             // requests seen for it
//
// Modes:
//   ok            200, Content-Length, strong ETag, Content-Type by extension
//   reset         the whole file's Content-Length, half the body, then RST
//   short         the whole file's Content-Length, half the body, then FIN
//   long          Content-Length of the file, the file, then 1,000 more bytes
//   chunked-cut   Transfer-Encoding: chunked, half the body, then FIN (no last chunk)
//   slow          the whole body in 20 pieces, 25 ms apart (about 0.5 s)
//   slow-headers  waits 1 s before answering, then as ok
// Every response says Connection: close; the origin reads one request per connection.

import { createServer } from "node:net";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { CONTENT_TYPES, FIXTURES_DIR, sha256 } from "./origin.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function startRawOrigin({ root = FIXTURES_DIR, mounts = {} } = {}) {
  const faults = new Map();
  const seen = new Map();
  const sockets = new Set();

  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let head = "";
    const onData = (data) => {
      head += data.toString("latin1");
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onData);
      const [method, target] = head.slice(0, head.indexOf("\r\n")).split(" ");
      respond(socket, method, target).catch(() => socket.destroy());
    };
    socket.on("data", onData);
  });

  async function respond(socket, method, target) {
    const url = new URL(target, "http://raw.invalid");
    // Drop the route segment: /open/photos/x.jpg -> photos/x.jpg
    const rel = url.pathname.split("/").slice(2).join("/");
    const key = rel + url.search;
    seen.set(key, (seen.get(key) ?? 0) + 1);
    let file = path.join(root, decodeURIComponent(rel));
    for (const [prefix, dir] of Object.entries(mounts)) {
      if (("/" + rel).startsWith(prefix + "/")) file = path.join(dir, decodeURIComponent(("/" + rel).slice(prefix.length)));
    }
    let data;
    try {
      if (!(await stat(file)).isFile()) throw new Error("not a file");
      data = await readFile(file);
    } catch {
      socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: close\r\n\r\nnot found\n");
      return;
    }
    const mode = faults.get(key) ?? "ok";
    const type = CONTENT_TYPES[path.extname(file).toLowerCase()] ?? "application/octet-stream";
    const headers = (extra) =>
      `HTTP/1.1 200 OK\r\nContent-Type: ${type}\r\nETag: "${sha256(data).slice(0, 16)}"\r\n${extra}Connection: close\r\n\r\n`;
    const length = `Content-Length: ${data.length}\r\n`;
    const half = data.subarray(0, data.length >> 1);
    if (method === "HEAD") return void socket.end(headers(length));

    switch (mode) {
      case "reset":
        socket.write(headers(length));
        socket.write(half);
        await sleep(50);
        socket.resetAndDestroy();
        return;
      case "short":
        socket.write(headers(length));
        socket.write(half);
        await sleep(50);
        socket.end();
        return;
      case "long":
        socket.write(headers(length));
        socket.write(data);
        socket.end(Buffer.alloc(1000, 0x41));
        return;
      case "chunked-cut":
        socket.write(headers("Transfer-Encoding: chunked\r\n"));
        socket.write(`${half.length.toString(16)}\r\n`);
        socket.write(half);
        socket.write("\r\n");
        await sleep(50);
        socket.end();
        return;
      case "slow": {
        socket.write(headers(length));
        const piece = Math.ceil(data.length / 20);
        for (let i = 0; i < data.length; i += piece) {
          if (socket.destroyed) return;
          socket.write(data.subarray(i, i + piece));
          await sleep(25);
        }
        socket.end();
        return;
      }
      case "slow-headers":
        await sleep(1000);
        socket.end(Buffer.concat([Buffer.from(headers(length), "latin1"), data]));
        return;
      default:
        socket.end(Buffer.concat([Buffer.from(headers(length), "latin1"), data]));
    }
  }

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    fault: (key, mode) => faults.set(key, mode),
    count: (key) => seen.get(key) ?? 0,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
