// Measuring the worker from outside workerd: CPU time of the workerd
// processes a Miniflare instance started (sum over their threads of
// /proc/<pid>/task/*/schedstat), read before and after each request, since
// Date.now() does not advance inside a Worker during computation.
// Shared by scripts/bench-worker.mjs and scripts/bench-index.mjs.

import { readdirSync, readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { startWorker } from "../../tests/support/worker.mjs";

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
export const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");

function childPids(ppid) {
  const out = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === ppid) out.push(Number(entry));
    } catch {}
  }
  return out;
}

function descendants(pid) {
  const all = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift();
    for (const c of childPids(p)) {
      all.push(c);
      queue.push(c);
    }
  }
  return all;
}

/** CPU nanoseconds used so far by every thread of `pids`. */
export function cpuNs(pids) {
  let total = 0;
  for (const pid of pids) {
    let tasks = [];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      try {
        total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      } catch {}
    }
  }
  return total;
}

/** Starts a worker and finds the workerd processes it started. */
export async function startMeasuredWorker(opts) {
  const before = new Set(descendants(process.pid));
  const worker = await startWorker(opts);
  const pids = descendants(process.pid).filter((p) => !before.has(p));
  const workerd = pids.filter((p) => {
    try {
      return readFileSync(`/proc/${p}/comm`, "utf8").trim() === "workerd";
    } catch {
      return false;
    }
  });
  if (workerd.length === 0) throw new Error("could not find the workerd process");
  return { worker, pids: workerd };
}

/** One request: wall ms and workerd CPU ms, body fully read. */
export async function measure(worker, pids, urlPath) {
  const cpu0 = cpuNs(pids);
  const t0 = performance.now();
  const res = await worker.fetch(urlPath, { headers: { "accept-encoding": "identity" } });
  const body = await res.arrayBuffer();
  const wall = performance.now() - t0;
  // Let workerd finish any work after the response (waitUntil, stream close).
  await new Promise((r) => setTimeout(r, 2));
  const cpu = (cpuNs(pids) - cpu0) / 1e6;
  return { status: res.status, bytes: body.byteLength, wall, cpu };
}

export async function series(worker, pids, urlPath, runs, expectStatus) {
  for (let i = 0; i < 3; i++) await measure(worker, pids, urlPath); // warm-up
  const walls = [];
  const cpus = [];
  for (let i = 0; i < runs; i++) {
    const m = await measure(worker, pids, urlPath);
    if (m.status !== expectStatus) throw new Error(`${urlPath}: status ${m.status}, expected ${expectStatus}`);
    walls.push(m.wall);
    cpus.push(m.cpu);
  }
  return { wall: median(walls), cpu: median(cpus) };
}

