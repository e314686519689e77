// Hash indexes for the tests, built by the real CLI: `hashgate index build`
// (the same command an operator runs), into target/e2e/index-<name>/.
//
//   const dir = await buildIndex("demo", { demo: DEMO_LIST });  // -> the build directory
//   await worker.loadIndex(dir);

import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { FIXTURES_DIR, REPO_ROOT } from "./origin.mjs";

const run = promisify(execFile);

export const DEMO_LIST = path.join(FIXTURES_DIR, "lists", "demo.csv");
export const E2E_DIR = path.join(REPO_ROOT, "target", "e2e");

/**
 * Build an index from named lists. A list is a path, or an array of lines
 * (`TYPE,HASH[,ID]`) written to a file first.
 * @param {string} name  output directory name under target/e2e/
 * @param {Record<string, string|string[]>} lists  list name -> path or lines
 * @param {object} [opts]
 * @param {"auto"|"resident"|"buckets"} [opts.layout] `--layout`
 * @returns {Promise<string>} the build directory (`--out`)
 */
export async function buildIndex(name, lists, { layout = "auto" } = {}) {
  const out = path.join(E2E_DIR, `index-${name}`);
  const listDir = path.join(E2E_DIR, `lists-${name}`);
  await mkdir(listDir, { recursive: true });
  const args = ["run", "--release", "--quiet", "-p", "hashgate-cli", "--", "index", "build", "--out", out, "--layout", layout];
  for (const [list, source] of Object.entries(lists)) {
    let file = source;
    if (Array.isArray(source)) {
      file = path.join(listDir, `${list}.csv`);
      await writeFile(file, source.join("\n") + "\n");
    }
    args.push("--list", `${list}=${file}`);
  }
  const { stdout } = await run("cargo", args, { cwd: REPO_ROOT, maxBuffer: 16 << 20 });
  // What the build printed (counts, upload commands), for benchmarks.
  await writeFile(path.join(listDir, "build.txt"), stdout);
  return out;
}

/** `hashgate hash FILE` (one JSON line: pdq, quality, md5, sha1, sha256, ...). */
export async function hashFile(file) {
  const { stdout } = await run("cargo", ["run", "--release", "--quiet", "-p", "hashgate-cli", "--", "hash", file], {
    cwd: REPO_ROOT,
  });
  return JSON.parse(stdout);
}
