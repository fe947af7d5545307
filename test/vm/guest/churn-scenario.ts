// Runs inside the sched_ext VM (driven by test/vm/churn.test.ts): the agent, with a glob SLO over
// /churn/*, watches 1000 SLO cgroups with processes in them come and go, in waves of 50. The BPF
// map must follow each wave and return to its baseline; the agent's memory must not grow.
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createCgroup, removeCgroup } from "../../../src/cgroup/cgroupfs.js";
import { defaultLoaderPaths } from "../../../src/sched/loader.js";
import { LoaderSession } from "../../../src/sched/session.js";
import { spawnInCgroup } from "../../../src/cgroup/spawn.js";
import { sleep } from "../../../src/util/process.js";

const outDir = process.env.SCXVM_OUT ?? "/tmp";
const out: Record<string, unknown> = {};
const save = () => writeFileSync(path.join(outDir, "scenario.json"), JSON.stringify(out, null, 1));
const cycles = Number(process.env.CHURN_CYCLES ?? "1000");
const wave = 50;

const config = "/tmp/churn.yaml";
writeFileSync(
  config,
  'version: 1\nslos:\n  - match: "/churn/*"\n    budget_ms: 5\n    importance: 60\n',
);
createCgroup("/churn");
const agent = spawn("node", ["dist/src/cli/main.js", "run", "--config", config], {
  stdio: ["ignore", "ignore", "pipe"],
});
let agentLog = "";
agent.stderr.on("data", (d: Buffer) => (agentLog += d.toString()));
const rssKiB = () =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${agent.pid}/status`, "utf8"))?.[1]);

const session = new LoaderSession(defaultLoaderPaths());
const entries = async () => (await session.list().catch(() => [])).length;
async function waitForEntries(n: number, ms: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if ((await entries()) === n) return Date.now() - t0;
    await sleep(100);
  }
  return -1;
}

// The agent loads the scheduler; the map starts empty of /churn entries.
const t0 = Date.now();
while (
  Date.now() - t0 < 60_000 &&
  readFileSync("/sys/kernel/sched_ext/state", "utf8").trim() !== "enabled"
)
  await sleep(100);
await sleep(1500);
out.baselineEntries = await entries();
out.rssStartKiB = rssKiB();
const waveMs: number[] = [];
let failedWaves = 0;
for (let done = 0; done < cycles; done += wave) {
  const procs = [];
  for (let i = 0; i < wave; i++) {
    const cg = `/churn/c${done + i}`;
    createCgroup(cg);
    procs.push(spawnInCgroup(cg, ["sleep", "600"]));
  }
  const up = await waitForEntries((out.baselineEntries as number) + wave, 10_000);
  for (const p of procs) p.kill("SIGKILL");
  await sleep(50);
  for (let i = 0; i < wave; i++) removeCgroup(`/churn/c${done + i}`);
  const down = await waitForEntries(out.baselineEntries as number, 10_000);
  if (up < 0 || down < 0) failedWaves++;
  else waveMs.push(up + down);
}
out.cycles = cycles;
out.failedWaves = failedWaves;
out.waveMsMax = Math.max(...waveMs);
out.finalEntries = await entries();
await sleep(2000); // let the agent settle before the last memory reading
out.rssEndKiB = rssKiB();
save();
await session.close();
agent.kill("SIGTERM");
await new Promise((r) => agent.once("exit", r));
writeFileSync(path.join(outDir, "agent.log"), agentLog);
save();
console.log("churn scenario complete");
