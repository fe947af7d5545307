// What the agent costs a node: its CPU (user+sys, the agent and the loader children in its cgroup)
// and RSS at rest and under cgroup churn, with 1, 100 and 1000 SLO cgroups among 3000 cgroups, and
// how soon a new cgroup's SLO is in the scheduler's map. Runs wherever it is started: natively on a
// kernel without sched_ext (the agent then only resolves and serves; there is no map to time), or
// inside the sched_ext VM (`vm/cli.js -- node dist/bench/agent-cost.js ...`).
//   node dist/bench/agent-cost.js --out DIR [--cgroup-root /sys/fs/cgroup] [--slos 1,100,1000]
//        [--rest-s 300] [--churn-s 30] [--creations 500] [--label native]
// The rest window is one safety-pass interval of the agent (5 minutes), so that it holds one pass.
import { existsSync, mkdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { AgentStatusSchema } from "../src/api/status.js";
import { cgroupDir, createCgroup, readCpuStat, removeCgroup } from "../src/cgroup/cgroupfs.js";
import { spawnInCgroup } from "../src/cgroup/spawn.js";
import { defaultLoaderPaths, unloadScheduler } from "../src/sched/loader.js";
import { readScxSysfs } from "../src/sched/scx-sysfs.js";
import { LoaderSession } from "../src/sched/session.js";
import { sleep } from "../src/util/process.js";
import { findProjectRoot } from "../src/util/project-root.js";
import { quantile } from "./stats.js";

const { values } = parseArgs({
  options: {
    out: { type: "string", default: process.env.SCXVM_OUT ?? "/tmp" },
    "cgroup-root": { type: "string", default: "/sys/fs/cgroup" },
    slos: { type: "string", default: "1,100,1000" },
    "rest-s": { type: "string", default: "300" },
    "churn-s": { type: "string", default: "30" },
    creations: { type: "string", default: "500" },
    label: { type: "string", default: "" },
  },
});

const ROOT = values["cgroup-root"];
const TREE = "/scx-cost";
const AGENT_CG = "/scx-cost-agent";
const PODS = 1000;
const CONTAINERS = 2;
const PORT = 19617;
const URL = `http://127.0.0.1:${PORT}`;
const restS = Number(values["rest-s"]);
const churnS = Number(values["churn-s"]);
const creations = Number(values.creations);
const supported = readScxSysfs().supported;

const pod = (i: number) => `${TREE}/pods/p${String(i).padStart(3, "0")}`;

/** The rule that makes n of the 1000 pods SLO cgroups. */
function config(n: number): string {
  // Each size also covers new/, where the churn and the creations happen (empty at rest).
  if (n === 1) return `${pod(0)} 10 50\n${TREE}/new/* 10 50\n`;
  if (n === 100) return `${TREE}/pods/p0[0-9][0-9] 10 50\n${TREE}/new/* 10 50\n`;
  if (n === 1000) return `${TREE}/pods/p* 10 50\n${TREE}/new/* 10 50\n`;
  throw new Error(`--slos takes 1, 100 or 1000, got ${n}`);
}

function buildTree(): void {
  for (let i = 0; i < PODS; i++) {
    for (let c = 0; c < CONTAINERS; c++) {
      mkdirSync(path.join(ROOT, pod(i), `c${c}`), { recursive: true });
    }
  }
  mkdirSync(path.join(ROOT, TREE, "new"), { recursive: true });
}

function cpuUsec(): number {
  return readCpuStat(AGENT_CG, ROOT).usage_usec ?? NaN;
}

function rssKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
}

async function status() {
  const res = await fetch(`${URL}/status`, { signal: AbortSignal.timeout(10_000) });
  return AgentStatusSchema.parse(await res.json());
}

interface Window {
  cpu_percent: number;
  rss_kib_end: number;
  seconds: number;
}

async function window(pid: number, seconds: number, during?: () => Promise<void>): Promise<Window> {
  const cpu0 = cpuUsec();
  const t0 = performance.now();
  if (during) await during();
  else await sleep(seconds * 1000);
  const elapsed = (performance.now() - t0) / 1000;
  return {
    cpu_percent: ((cpuUsec() - cpu0) / 1e6 / elapsed) * 100,
    rss_kib_end: rssKiB(pid),
    seconds: elapsed,
  };
}

/** Cgroups created and removed in the SLO folder, one pair every 100 ms. */
async function churn(seconds: number): Promise<void> {
  const end = performance.now() + seconds * 1000;
  let i = 0;
  while (performance.now() < end) {
    const dir = path.join(ROOT, TREE, "new", `churn-${i++}`);
    mkdirSync(dir);
    if (i > 5) rmdirSync(path.join(ROOT, TREE, "new", `churn-${i - 6}`));
    await sleep(100);
  }
  for (let k = Math.max(0, i - 6); k < i; k++) {
    const dir = path.join(ROOT, TREE, "new", `churn-${k}`);
    if (existsSync(dir)) rmdirSync(dir);
  }
}

/** Creation -> SLO in the map, per cgroup, polling the map through the loader's serve verb. */
async function creationLatency(n: number): Promise<number[]> {
  const session = new LoaderSession(defaultLoaderPaths());
  const out: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const dir = path.join(ROOT, TREE, "new", `created-${i}`);
      const t0 = performance.now();
      mkdirSync(dir);
      const id = statSync(dir, { bigint: true }).ino;
      for (;;) {
        if ((await session.get(id)) !== null) break;
        if (performance.now() - t0 > 10_000) throw new Error(`${dir}: not in the map after 10 s`);
      }
      out.push(performance.now() - t0);
      rmdirSync(dir);
      await sleep(20);
    }
  } finally {
    await session.close();
  }
  return out;
}

const results: Record<string, unknown>[] = [];
const cli = path.join(findProjectRoot(), "dist", "src", "cli", "main.js");
const workdir = path.join(os.tmpdir(), "scx-cost");
mkdirSync(workdir, { recursive: true });

try {
  buildTree();
  createCgroup(AGENT_CG, ROOT);
  for (const n of values.slos.split(",").map(Number)) {
    const conf = path.join(workdir, "config");
    writeFileSync(conf, config(n));
    const agent = spawnInCgroup(
      AGENT_CG,
      [
        process.execPath,
        cli,
        "run",
        "--config",
        conf,
        "--listen",
        `127.0.0.1:${PORT}`,
        "--cgroup-root",
        ROOT,
        "--safe-mode-file",
        path.join(workdir, "safe-mode"),
      ],
      { root: ROOT },
    );
    agent.stdout?.resume();
    let log = "";
    agent.stderr?.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    const exited = new Promise<void>((r) => agent.on("close", () => r()));
    try {
      const deadline = Date.now() + 180_000;
      for (;;) {
        const st = await status().catch(() => null);
        const attachedOrNot = !supported || st?.scheduler.state === "attached";
        if (st && attachedOrNot && st.slos.desired >= n && (!supported || st.slos.applied >= n))
          break;
        if (Date.now() > deadline) throw new Error(`agent not ready with ${n} SLOs:\n${log}`);
        await sleep(200);
      }
      await sleep(5000); // warm-up: the standby copy, the first renders
      const rest = await window(agent.pid!, restS);
      const churned = await window(agent.pid!, churnS, () => churn(churnS));
      const rest2 = await window(agent.pid!, Math.min(restS, 30));
      const latencies = supported ? await creationLatency(creations) : [];
      const record = {
        slos: n,
        cgroups_in_tree: PODS * (CONTAINERS + 1),
        rest,
        churn: churned,
        rest_after_churn: rest2,
        ...(latencies.length
          ? {
              creation_to_map_ms: {
                n: latencies.length,
                p50: quantile(latencies, 0.5),
                p99: quantile(latencies, 0.99),
                max: Math.max(...latencies),
              },
            }
          : {}),
      };
      results.push(record);
      console.log(JSON.stringify(record));
    } finally {
      agent.kill("SIGTERM");
      await exited;
    }
  }
} finally {
  if (supported) await unloadScheduler(defaultLoaderPaths(), true).catch(() => {});
  removeCgroup(AGENT_CG, ROOT);
  removeCgroup(TREE, ROOT);
}

writeFileSync(
  path.join(values.out, `agent-cost${values.label ? `-${values.label}` : ""}.json`),
  JSON.stringify(
    {
      machine: `${os.cpus()[0]?.model ?? "cpu"}; ${os.cpus().length} CPUs; kernel ${os.release()}; sched_ext ${supported ? "yes" : "no"}`,
      started: new Date().toISOString(),
      cgroup_root: cgroupDir("/", ROOT),
      results,
    },
    null,
    1,
  ),
);
