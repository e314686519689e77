// The Werkzeug origin (tests/support/werkzeug_origin.py) as a child process:
// a real Python origin that parses uploads as Flask applications do and
// answers with the SHA-256 of every image it could extract.
//
//   const origin = await startWerkzeugOrigin();
//   const report = await origin.upload(path, { method, headers, body });  // { images, files, error }
//   await origin.count();   // uploads received so far
//   await origin.close();

import { spawn } from "node:child_process";
import path from "node:path";
import { REPO_ROOT } from "./origin.mjs";

const SCRIPT = path.join(REPO_ROOT, "tests", "support", "werkzeug_origin.py");

export async function startWerkzeugOrigin() {
  const child = spawn("python3", [SCRIPT], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const port = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`werkzeug origin did not start: ${stderr}`)), 15_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`werkzeug origin exited with ${code}: ${stderr}`));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    /** Sends an upload straight to the origin; returns its report. */
    async upload(urlPath, init) {
      const res = await fetch(new URL(urlPath, url), init);
      return res.json();
    },
    async count() {
      const res = await fetch(new URL("/__count", url));
      return (await res.json()).uploads;
    },
    close: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", resolve);
        child.kill("SIGTERM");
      }),
  };
}
