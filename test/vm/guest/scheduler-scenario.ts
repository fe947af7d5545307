// Runs inside the sched_ext VM (driven by test/vm/scheduler.test.ts): loads scx_slo, exercises it
// with real processes in real cgroups, and writes what it observed to $SCXVM_OUT/scenario.json.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import {
  cgroupDir,
  createCgroup,
  readCpuStat,
  removeCgroup,
  writeCgroupFile,
} from "../../../src/cgroup/cgroupfs.js";
import {
  defaultLoaderPaths,
  loadScheduler,
  LoaderError,
  schedulerStatus,
  unloadScheduler,
  type MissEvent,
} from "../../../src/sched/loader.js";
import { LoaderSession } from "../../../src/sched/session.js";
import { StandbyScheduler } from "../../../src/sched/standby.js";
import { spawnInCgroup } from "../../../src/cgroup/spawn.js";
import { sleep, waitFor } from "../../../src/util/process.js";
import {
  cpuOver2s,
  cpuOverWindow,
  hogs,
  scenarioRecorder,
  sysfs,
  type HogGroup,
} from "./scenario.js";

const { out, save } = scenarioRecorder();
const paths = defaultLoaderPaths();

async function errorOf(p: Promise<unknown>): Promise<string | null> {
  try {
    await p;
    return null;
  } catch (err) {
    return err instanceof LoaderError ? err.message : String(err);
  }
}

function runFor(cgroup: string, argv: string[]) {
  return waitFor(spawnInCgroup(cgroup, argv));
}

// cpu.weight, which Kubernetes sets from CPU requests: 2 hogs in a cgroup of weight 300, 4 in one
// of 100 and 1 in one of weight 1 (what a BestEffort pod gets). CPU is counted over 2 s under the
// kernel's fair class, as the reference; then scx_slo is loaded while they run (tasks already
// runnable at attach must count in their cgroups too) and the same is counted under it.
const weightGroups: (HogGroup & { weight: string })[] = [
  { cgroup: "/t/heavy", hogs: 2, weight: "300" },
  { cgroup: "/t/light", hogs: 4, weight: "100" },
  { cgroup: "/t/besteffort", hogs: 1, weight: "1" },
];
for (const g of weightGroups) {
  createCgroup(g.cgroup);
  writeCgroupFile(g.cgroup, "cpu.weight", g.weight);
}
const hogsStarted = Date.now();
const weightRuns = Promise.all(weightGroups.map((g) => hogs(g.cgroup, g.hogs, 12)));
await sleep(1000);
out.cgroupWeightsFair = { cpuUsec: await cpuOver2s(weightGroups) };

out.stateBefore = sysfs("state");
await loadScheduler(paths);
await sleep(1000);
out.cgroupWeights = {
  cpuUsec: await cpuOver2s(weightGroups),
  windowInsideRun: Date.now() - hogsStarted < 11_500,
  exits: (await weightRuns).map((r) => r.code),
};
out.stateLoaded = sysfs("state");
out.opsLoaded = sysfs("root/ops");
const enableSeq = sysfs("enable_seq");
out.enableSeqLoaded = enableSeq;
out.secondLoadError = await errorOf(loadScheduler(paths));
save();

const sloId = createCgroup("/t/slo");
createCgroup("/t/batch");
const session = new LoaderSession(paths);
const misses: MissEvent[] = [];
session.on("miss", (ev: MissEvent) => misses.push(ev));
await session.set([{ cgroupId: sloId, budgetNs: 1_000_000, importance: 90 }]);
out.sloCgroupId = String(sloId);

// Both cgroups burn CPU at once: 3 hogs under a 1 ms budget (misses are certain with 2 CPUs),
// 4 hogs with no SLO. Every process must get CPU time.
const before = {
  slo: readCpuStat("/t/slo").usage_usec!,
  batch: readCpuStat("/t/batch").usage_usec!,
};
const slo = hogs("/t/slo", 3, 4);
const batch = hogs("/t/batch", 4, 4);
const [sloRun, batchRun] = await Promise.all([slo, batch]);
out.hogExit = { slo: sloRun.code, batch: batchRun.code };
out.cpuUsec = {
  slo: readCpuStat("/t/slo").usage_usec! - before.slo,
  batch: readCpuStat("/t/batch").usage_usec! - before.batch,
};
await sleep(300);

// No SLO anywhere here: the kernel's task weight (nice, SCHED_IDLE) must set the shares. Two hogs
// each at nice 0, at nice 19 and under SCHED_IDLE, on 2 CPUs. They sit in child cgroups of /t/mix
// without the cpu controller (mkdir, not createCgroup), so to the kernel they are one cpu.weight
// entity, as processes of one container are; that only lets cpu.stat count each kind apart.
createCgroup("/t/mix");
const weighted = ["nice0", "nice19", "idle"] as const;
for (const name of weighted) mkdirSync(cgroupDir(`/t/mix/${name}`), { recursive: true });
const weightedRun = await cpuOverWindow([
  { cgroup: "/t/mix/nice0", hogs: 2 },
  { cgroup: "/t/mix/nice19", hogs: 2, wrapper: ["nice", "-n", "19"] },
  { cgroup: "/t/mix/idle", hogs: 2, wrapper: ["chrt", "--idle", "0"] },
]);
out.weightedExit = weightedRun.exits;
out.weightedCpuUsec = Object.fromEntries(weighted.map((name, i) => [name, weightedRun.cpuUsec[i]]));
out.stateAfterWeighted = sysfs("state");
save();

// A live change of weight (heavy down to light's 100) must even out the two cgroups' CPU.
writeCgroupFile("/t/heavy", "cpu.weight", "100");
out.cgroupWeightsChanged = await cpuOverWindow(weightGroups.slice(0, 2));
out.stateAfterCgroupWeights = sysfs("state");
save();

// The longest budget allowed (10 s) on a hog beside 4 hogs with the default budget, for 7 s: its
// turn must come before the kernel's 5 s runnable-task watchdog gives up on the scheduler.
const longId = createCgroup("/t/long");
createCgroup("/t/busy");
await session.set([{ cgroupId: longId, budgetNs: 10_000_000_000, importance: 50 }]);
const longBefore = readCpuStat("/t/long").usage_usec!;
const longRuns = await Promise.all([hogs("/t/long", 1, 7), hogs("/t/busy", 4, 7)]);
out.longBudget = {
  exit: longRuns.map((r) => r.code),
  cpuUsec: readCpuStat("/t/long").usage_usec! - longBefore,
  state: sysfs("state"),
};
await session.del([longId]);
save();
const stats = await session.stats();
const mine = stats.cgroups.find((c) => c.cgroupId === sloId);
out.stats = mine
  ? {
      runs: mine.runs,
      misses: mine.misses,
      waitSumNs: mine.waitSumNs,
      budgetNs: mine.budgetNs,
      importance: mine.importance,
      histTotal: mine.hist.reduce((a, b) => a + b, 0),
    }
  : null;
out.counters = stats.counters;
out.missEvents = misses.filter((m) => m.cgroupId === sloId).length;
out.missEventSample = misses[0] ? { ...misses[0], cgroupId: String(misses[0].cgroupId) } : null;
out.stateAfterLoad = sysfs("state");
save();

// An SLO change applies live: new budget visible in the kernel's stats, no re-attach.
await session.set([{ cgroupId: sloId, budgetNs: 7_000_000, importance: 40 }]);
await runFor("/t/slo", ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.01; done"]);
const changed = (await session.stats()).cgroups.find((c) => c.cgroupId === sloId);
out.changed = changed ? { budgetNs: changed.budgetNs, importance: changed.importance } : null;
out.enableSeqAfterChange = sysfs("enable_seq");

// User space bypassed: out-of-range values written straight into the pinned map are clamped by
// the BPF side (1 ms..10 s, importance 1..100).
const rawId = createCgroup("/t/raw");
const u64le = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return [...b].map(String);
};
const u32le = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return [...b].map(String);
};
execFileSync("bpftool", [
  "map",
  "update",
  "pinned",
  `${paths.pinDir}/slo_map`,
  "key",
  ...u64le(rawId),
  "value",
  ...u64le(5n),
  ...u32le(1000),
  ...u32le(0),
]);
await session.set([{ cgroupId: sloId, budgetNs: 7_000_000, importance: 40 }]); // bumps the generation
await runFor("/t/raw", ["sh", "-c", "for i in 1 2 3 4 5; do sleep 0.01; done"]);
const raw = (await session.stats()).cgroups.find((c) => c.cgroupId === rawId);
out.bypassed = raw ? { budgetNs: raw.budgetNs, importance: raw.importance } : null;
save();

// A cgroup with an SLO is removed: the kernel side drops its entries by itself.
const doomedId = createCgroup("/t/doomed");
await session.set([{ cgroupId: doomedId, budgetNs: 3_000_000, importance: 10 }]);
await runFor("/t/doomed", ["sh", "-c", "sleep 0.05"]);
const listedBefore = (await session.list()).some((e) => e.cgroupId === doomedId);
removeCgroup("/t/doomed");
await sleep(200);
out.doomed = {
  listedBefore,
  listedAfter: (await session.list()).some((e) => e.cgroupId === doomedId),
  statsAfter: (await session.stats()).cgroups.some((c) => c.cgroupId === doomedId),
};

// The loader process is long gone and the session dies too: the pinned scheduler stays.
await session.close();
await sleep(300);
out.stateAfterLoaderExit = sysfs("state");
out.opsAfterLoaderExit = sysfs("root/ops");

// A detach (and the re-attach after it) keeps the SLO map and counters.
const keptBefore = (await schedulerStatus(paths)).nr_attach;
execFileSync(paths.binary, ["unload", "--pin-dir", paths.pinDir]);
await loadScheduler(paths);
const reSession = new LoaderSession(paths);
out.keptAcrossReattach = {
  sloListed: (await reSession.list()).some((e) => e.cgroupId === sloId),
  runsKept: ((await reSession.stats()).cgroups.find((c) => c.cgroupId === sloId)?.runs ?? 0) > 0,
  nrAttachGrew: ((await schedulerStatus(paths)).nr_attach ?? 0) > (keptBefore ?? 0),
};
await reSession.close();

// A standby copy: verified while scx_slo runs, attached in one step after it goes, refused once
// the pinned maps it shares have been replaced, and dropped unattached on end of input.
async function waitDisabled(): Promise<void> {
  const t = Date.now();
  while (sysfs("state") !== "disabled" && Date.now() - t < 5000) await sleep(10);
}
const seqBeforeStandby = Number(sysfs("enable_seq"));
let standby = new StandbyScheduler(paths);
const standbyPrepared = await standby.prepared;
const seqWhilePrepared = Number(sysfs("enable_seq"));
await unloadScheduler(paths);
await waitDisabled();
const t1 = Date.now();
const standbyError = await errorOf(standby.attach());
const standbyOut: Record<string, unknown> = {
  prepared: standbyPrepared,
  attachedDuringPrepare: seqWhilePrepared === seqBeforeStandby,
  error: standbyError,
  attachMs: Date.now() - t1,
  state: sysfs("state"),
  ops: sysfs("root/ops"),
  seqGrew: Number(sysfs("enable_seq")) > seqBeforeStandby,
};
out.standby = standbyOut;
const afterStandby = new LoaderSession(paths);
standbyOut.sloKept = (await afterStandby.list()).some((e) => e.cgroupId === sloId);
await afterStandby.close();
standby = new StandbyScheduler(paths);
await standby.prepared;
await unloadScheduler(paths, true);
await waitDisabled();
await loadScheduler(paths);
await unloadScheduler(paths);
await waitDisabled();
standbyOut.staleError = await errorOf(standby.attach());
standbyOut.stateAfterStale = sysfs("state");
await loadScheduler(paths);
standby = new StandbyScheduler(paths);
await standby.prepared;
const seqBeforeClose = Number(sysfs("enable_seq"));
standby.close();
await sleep(300);
standbyOut.closedLeavesRunning =
  sysfs("state") === "enabled" && Number(sysfs("enable_seq")) === seqBeforeClose;

// Not root: one clear line.
const asNobody = spawnSync(
  "setpriv",
  ["--reuid=65534", "--regid=65534", "--clear-groups", paths.binary, "load"],
  { encoding: "utf8" },
);
out.notRootError = asNobody.stderr.trim();

// Unpinning the link: the kernel takes every task back to the fair class, tasks keep running.
const survivor = spawnInCgroup("/t/slo", ["sleep", "30"]);
await unloadScheduler(paths);
const t0 = Date.now();
while (sysfs("state") !== "disabled" && Date.now() - t0 < 5000) await sleep(20);
out.stateAfterUnload = sysfs("state");
out.unloadToDisabledMs = Date.now() - t0;
out.survivorAlive = survivor.exitCode === null && survivor.signalCode === null;
out.exitAfterUnload = (await schedulerStatus(paths)).exit ?? null;
survivor.kill();
await unloadScheduler(paths, true);
out.pinDirAfterPurge = existsSync(paths.pinDir);
// A standby with nothing pinned refuses, and pins nothing (it never re-creates purged maps).
const orphan = new StandbyScheduler(paths);
out.standbyWithoutPins = {
  prepared: await orphan.prepared,
  error: orphan.error,
  pinDirAfter: existsSync(paths.pinDir),
};
save();
console.log("scenario complete");
