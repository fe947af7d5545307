// What the agent's memory does with its SLO cgroups, natively (no sched_ext needed: the agent then
// resolves, keeps its per-SLO state and serves /metrics and /status, with no stats to read). For
// each count: N empty cgroup folders under a temporary --cgroup-root, config `/pods/* 50 50`, the
// built CLI in --mode enforce; its RSS once ready, after a first /metrics, after a first /status,
// and after ROUNDS rounds of /metrics plus /status 1.1 s apart (past the 1 s the renders are
// shared for), and its VmHWM at the end. docs/agent-memory.md has the figures.
//   node dist/bench/agent-memory.js [--slos 0,500,4096] [--rounds 10] [-- NODE_FLAG...]
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { sleep } from "../src/util/process.js";
import { findProjectRoot } from "../src/util/project-root.js";

const { values, positionals } = parseArgs({
  options: {
    slos: { type: "string", default: "0,500,4096" },
    rounds: { type: "string", default: "10" },
  },
  allowPositionals: true,
});
const CLI = path.join(findProjectRoot(), "dist", "src", "cli", "main.js");

function memMiB(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(status)?.[1]);
  return { rss: kib("VmRSS") / 1024, hwm: kib("VmHWM") / 1024 };
}

async function get(url: string): Promise<string> {
  const r = await fetch(url);
  if (r.status !== 200) throw new Error(`${url}: ${r.status}`);
  return r.text();
}

async function measure(n: number, rounds: number): Promise<Record<string, number>> {
  const dir = mkdtempSync(path.join(tmpdir(), "scx-agent-memory-"));
  const cg = path.join(dir, "cgroup");
  mkdirSync(path.join(cg, "pods"), { recursive: true });
  for (let i = 0; i < n; i++) mkdirSync(path.join(cg, "pods", `pod-${i}`));
  writeFileSync(path.join(dir, "config"), n > 0 ? "/pods/* 50 50\n" : "none\n");
  const port = 20000 + ((process.pid + n) % 20000);
  const url = `http://127.0.0.1:${port}`;
  const agent = spawn(
    process.execPath,
    [
      ...positionals,
      CLI,
      "run",
      ...["--config", path.join(dir, "config"), "--listen", `127.0.0.1:${port}`],
      ...["--cgroup-root", cg, "--mode", "enforce"],
      ...["--safe-mode-file", path.join(dir, "safe-mode")],
    ],
    { stdio: "ignore", env: { ...process.env, SCX_SLO_PIN_DIR: path.join(dir, "pins") } },
  );
  try {
    const end = Date.now() + 60_000;
    for (;;) {
      const ready = await fetch(`${url}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready) break;
      if (Date.now() > end) throw new Error(`the agent with ${n} SLO cgroups did not get ready`);
      await sleep(100);
    }
    await sleep(2000);
    const ready = memMiB(agent.pid!).rss;
    const exposition = (await get(`${url}/metrics`)).length;
    await sleep(3000);
    const firstMetrics = memMiB(agent.pid!).rss;
    const status = JSON.parse(await get(`${url}/status`)) as { slos: { desired: number } };
    if (status.slos.desired !== n) throw new Error(`${status.slos.desired} SLO cgroups, not ${n}`);
    await sleep(3000);
    const firstStatus = memMiB(agent.pid!).rss;
    for (let i = 0; i < rounds; i++) {
      await get(`${url}/metrics`);
      await get(`${url}/status`);
      await sleep(1100);
    }
    await sleep(2000);
    const last = memMiB(agent.pid!);
    return {
      slos: n,
      exposition_mib: exposition / 2 ** 20,
      rss_ready: ready,
      rss_first_metrics: firstMetrics,
      rss_first_status: firstStatus,
      rss_rounds: last.rss,
      hwm: last.hwm,
    };
  } finally {
    agent.kill("SIGTERM");
    await new Promise((r) => agent.on("close", r));
    rmSync(dir, { recursive: true });
  }
}

const rows = [];
for (const n of values.slos.split(",").map(Number))
  rows.push(await measure(n, Number(values.rounds)));
console.log(`MiB; node flags: ${positionals.join(" ") || "none"}; ${values.rounds} rounds`);
console.table(
  rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, +v.toFixed(1)]))),
);
