// Runs inside the sched_ext VM (driven by test/vm/cpu-max.test.ts). While a sched_ext scheduler
// is attached the kernel leaves cpu.max to it; scx_slo must hold a cgroup to its limit the way
// the fair class does: the same CPU time per window, live limit changes, an SLO cgroup included.
import { createCgroup, readCpuStat, writeCgroupFile } from "../../../src/cgroup/cgroupfs.js";
import { defaultLoaderPaths, loadScheduler, unloadScheduler } from "../../../src/sched/loader.js";
import { LoaderSession } from "../../../src/sched/session.js";
import { spawnInCgroup } from "../../../src/cgroup/spawn.js";
import { sleep } from "../../../src/util/process.js";
import { hogs, scenarioRecorder, sysfs } from "./scenario.js";

const WINDOW_MS = 6000;
const { out, save } = scenarioRecorder();
const paths = defaultLoaderPaths();

/** CPU time the cgroup used over one window, in ms. */
async function usedMs(cgroup: string): Promise<number> {
  const before = readCpuStat(cgroup).usage_usec!;
  await sleep(WINDOW_MS);
  return (readCpuStat(cgroup).usage_usec! - before) / 1000;
}

const limId = createCgroup("/lim");
createCgroup("/batch");
writeCgroupFile("/lim", "cpu.max", "20000 100000");
// Two spinners: a limit below one CPU must hold however many threads want to run.
const spinners = [1, 2].map(() => spawnInCgroup("/lim", ["sh", "-c", "while :; do :; done"]));

out.fair20 = await usedMs("/lim");
await loadScheduler(paths);
out.ops = sysfs("root/ops");
out.scx20 = await usedMs("/lim");
writeCgroupFile("/lim", "cpu.max", "10000 100000");
await sleep(300);
out.scx10 = await usedMs("/lim");
save();

// The limited cgroup carries an SLO and competes with hogs: the SLO buys latency, not CPU
// beyond the limit, and the hogs get the rest.
writeCgroupFile("/lim", "cpu.max", "20000 100000");
const session = new LoaderSession(paths);
await session.set([{ cgroupId: limId, budgetNs: 5_000_000, importance: 90 }]);
const hogsDone = hogs("/batch", 4, Math.ceil(WINDOW_MS / 1000) + 3);
await sleep(500);
const batchBefore = readCpuStat("/batch").usage_usec!;
out.scxSlo20WithHogs = await usedMs("/lim");
out.batchMsMeanwhile = (readCpuStat("/batch").usage_usec! - batchBefore) / 1000;
await hogsDone;

writeCgroupFile("/lim", "cpu.max", "max 100000");
await sleep(300);
out.scxUnlimited = await usedMs("/lim");
out.throttled = (await session.stats()).counters.throttled;
out.stateAtEnd = sysfs("state");
out.windowMs = WINDOW_MS;
await session.close();
// Linux 7.3 bug, not scx_slo's (docs/kernel-issues.md): unloading any sched_ext scheduler after
// cpu.max changed while it ran, with tasks of that cgroup still running, can crash the kernel in
// the fair class's bandwidth code. The spinners go first.
for (const s of spinners) s.kill("SIGKILL");
await sleep(200);
await unloadScheduler(paths, true);

// A kernel without ops.cgroup_set_bandwidth (6.12-6.16), imitated: the loader drops that
// callback and the scheduler still loads. (A real 6.12-6.16 kernel also lacks the bandwidth
// fields of ops.cgroup_init, so there the limit would not be seen at all.)
writeCgroupFile("/lim", "cpu.max", "20000 100000");
const moreSpinners = [1, 2].map(() => spawnInCgroup("/lim", ["sh", "-c", "while :; do :; done"]));
process.env.SCX_SLO_TEST_DROP_OPS = "cgroup_set_bandwidth";
await loadScheduler(paths);
delete process.env.SCX_SLO_TEST_DROP_OPS;
out.withoutSetBandwidthOps = sysfs("root/ops");
out.withoutSetBandwidth20 = await usedMs("/lim");
for (const s of moreSpinners) s.kill("SIGKILL");
await sleep(200);
await unloadScheduler(paths, true);
save();
console.log("cpu.max scenario complete");
