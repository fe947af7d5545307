// Runs inside the sched_ext VM (driven by test/vm/watchdog.test.ts). A test build of scx_slo that
// never dispatches one cgroup must be ejected by the kernel's runnable-task watchdog, every task
// must keep running on the fair class, and the reason must be readable afterwards. Then the normal
// build runs 8 hogs per CPU plus SLO cgroups burning CPU nonstop, and must not be ejected.
import { createCgroup, readCpuStat, writeCgroupFile } from "../../../src/cgroup/cgroupfs.js";
import {
  defaultLoaderPaths,
  loadScheduler,
  schedulerStatus,
  unloadScheduler,
} from "../../../src/sched/loader.js";
import { LoaderSession } from "../../../src/sched/session.js";
import { spawnInCgroup } from "../../../src/cgroup/spawn.js";
import { sleep } from "../../../src/util/process.js";
import { hogs, scenarioRecorder, sysfs } from "./scenario.js";
import { execFileSync } from "node:child_process";

const { out, save } = scenarioRecorder();
const state = () => sysfs("state");
const paths = defaultLoaderPaths();
const soakS = Number(process.env.SOAK_S ?? "20");
/** cpu.max quota of /w/limited per 100 ms period: 0.3 CPU. */
const LIMITED_QUOTA_US = 30_000;

// 1. The stalling test build.
const stuckId = createCgroup("/w/stuck");
execFileSync(paths.binary, [
  "load",
  "--obj",
  paths.object.replace(/scx_slo\.bpf\.o$/, "scx_slo_test.bpf.o"),
  "--test-stall-cgroup",
  String(stuckId),
  "--pin-dir",
  paths.pinDir,
]);
const session = new LoaderSession(paths);
await session.set([{ cgroupId: stuckId, budgetNs: 5_000_000, importance: 50 }]);
await session.close();
const stuckBefore = readCpuStat("/w/stuck").usage_usec!;
const t0 = Date.now();
const victim = spawnInCgroup("/w/stuck", ["sh", "-c", "while :; do :; done"]);
while (state() !== "disabled" && Date.now() - t0 < 30_000) await sleep(50);
out.ejectedAfterMs = Date.now() - t0;
out.stateAfterStall = state();
out.exit = (await schedulerStatus(paths)).exit ?? null;
await sleep(1000);
out.stuckRanAfterFallbackUsec = readCpuStat("/w/stuck").usage_usec! - stuckBefore;
victim.kill("SIGKILL");
await unloadScheduler(paths, true);
save();

// 2. The normal build under abuse: 16 hogs on 2 CPUs with no SLO, 2 SLO cgroups burning CPU,
// and a third SLO cgroup that wants more than its CPU limit (cpu.max 0.3 CPU), held to it by
// scx_slo the whole time.
await loadScheduler(paths);
const burnA = createCgroup("/w/burn-a");
const burnB = createCgroup("/w/burn-b");
const limited = createCgroup("/w/limited");
writeCgroupFile("/w/limited", "cpu.max", `${LIMITED_QUOTA_US} 100000`);
createCgroup("/w/batch");
const s2 = new LoaderSession(paths);
await s2.set([
  { cgroupId: burnA, budgetNs: 1_000_000, importance: 100 },
  { cgroupId: burnB, budgetNs: 2_000_000, importance: 90 },
  { cgroupId: limited, budgetNs: 2_000_000, importance: 90 },
]);
const batchBefore = readCpuStat("/w/batch").usage_usec!;
const running = [
  hogs("/w/batch", 16, soakS),
  hogs("/w/burn-a", 2, soakS),
  hogs("/w/burn-b", 2, soakS),
  hogs("/w/limited", 2, soakS),
];
// Every 10 s: still the same attachment, and how much CPU each group got in the interval.
const samples: Record<string, unknown>[] = [];
const usage = (cg: string) => readCpuStat(cg).usage_usec!;
let finished = false;
const all = Promise.all(running).finally(() => (finished = true));
const seq0 = sysfs("enable_seq");
const usages = () => ({
  batch: usage("/w/batch"),
  a: usage("/w/burn-a"),
  b: usage("/w/burn-b"),
  limited: usage("/w/limited"),
  at: Date.now(),
});
let last = usages();
const soakStart = Date.now();
while (!finished) {
  await Promise.race([all, sleep(10_000)]);
  if (finished) break;
  const now = usages();
  samples.push({
    interval_ms: now.at - last.at,
    t_s: Math.round((Date.now() - soakStart) / 1000),
    state: state(),
    ops: sysfs("root/ops"),
    enable_seq: sysfs("enable_seq"),
    batch_usec: now.batch - last.batch,
    burn_a_usec: now.a - last.a,
    burn_b_usec: now.b - last.b,
    limited_usec: now.limited - last.limited,
  });
  last = now;
  save();
}
out.soakSamples = samples;
out.enableSeqBeforeSoak = seq0;
const codes = (await all).map((r) => r.code);
out.soakSeconds = soakS;
out.limitedQuotaUs = LIMITED_QUOTA_US;
out.soakExitCodes = codes;
out.stateAfterSoak = state();
out.batchCpuUsecDuringSoak = readCpuStat("/w/batch").usage_usec! - batchBefore;
out.exitAfterSoak = (await schedulerStatus(paths)).exit ?? null;
await s2.close();
await unloadScheduler(paths, true);
save();
console.log("watchdog scenario complete");
