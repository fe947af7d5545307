// The schedulers compared: the kernel's fair class as is, as a careful operator would tune it
// today, and scx_slo as its users run it: the agent (`scx-slo run` with a config file, in a cgroup
// of its own as a systemd unit or a pod would put it) started before the window and running
// through it. scx_slo-loader is a labelled control: the same scheduler loaded and given the SLO
// once, with no agent beside it, so the agent's own cost shows as the difference. fair-rt is a
// reference rather than a contender: the critical workload as a real-time (SCHED_FIFO) task, the
// fastest wake-up the kernel has, so a report shows how close the emulator lets any scheduler get
// (it is no answer for a pod: a FIFO task that spins holds its CPU against everything but the 5%
// real-time throttle). The peers are the sched-ext/scx project's production schedulers
// (bench/peer-arms.ts, bench/peers/README.md).
//
// An arm is set up once for a run of cells (the ladder keeps it across the hog steps of a
// workload): cellStart/cellEnd bracket each cell's window, teardown ends it.
import type { ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { DEFAULT_LISTEN } from "../src/api/endpoints.js";
import { AgentStatusSchema } from "../src/api/status.js";
import { writeCgroupFile } from "../src/cgroup/cgroupfs.js";
import { createCgroup } from "../src/cgroup/cgroupfs.js";
import { spawnInCgroup } from "../src/cgroup/spawn.js";
import { findProjectRoot } from "../src/util/project-root.js";
import { sleep } from "../src/util/process.js";
import {
  defaultLoaderPaths,
  loadScheduler,
  schedulerStatus,
  unloadScheduler,
} from "../src/sched/loader.js";
import { LoaderSession } from "../src/sched/session.js";
import { histogramDelta, histogramQuantileNs } from "../src/sched/histogram.js";
import { NS_PER_MS } from "../src/slo/model.js";
import { isPeerArm, PEER_ARMS, startPeer } from "./peer-arms.js";

export const ALL_ARMS = [
  "fair",
  "fair-weight",
  "fair-idle",
  "scx_slo",
  "scx_slo-loader",
  "fair-rt",
  ...PEER_ARMS,
] as const;
export type ArmName = (typeof ALL_ARMS)[number];
/** The arm whose critical workload runs SCHED_FIFO; workloads that cannot do that refuse it. */
export const RT_ARM: ArmName = "fair-rt";
/** SCHED_FIFO priority of the critical workload in the fair-rt arm (cyclictest's -p). */
export const RT_PRIORITY = 50;

export interface BenchCgroups {
  critical: string;
  batch: string;
  criticalId: bigint;
  /**
   * A load generator's cgroup (workloads with a client). It stands in for remote clients, so each
   * arm gives it the critical cgroup's treatment: otherwise the arms would differ in how late the
   * requests are sent, not in how the service is scheduled.
   */
  loadgen?: string;
  loadgenId?: bigint;
}

export interface ArmSetup {
  /** Run the hogs under SCHED_IDLE. */
  batchIdle: boolean;
  /** A cgroup of the arm's own (the agent's) whose CPU use in the window is recorded. */
  ownCgroup?: string;
  /** Run the critical workload under SCHED_FIFO at RT_PRIORITY. */
  criticalRealtime: boolean;
  /**
   * What /sys/kernel/sched_ext/root/ops starts with while the arm's scheduler runs; null for the
   * arms on the kernel's fair class. A cell that ends without it did not run under the arm.
   */
  opsPrefix: string | null;
  /** Seconds from start to attached (sched_ext arms). */
  attachS?: number;
  /** Before a cell's window. */
  cellStart(): Promise<void>;
  /** After a cell's window: extra fields for its record (scx_slo: the in-kernel view of it). */
  cellEnd(): Promise<Record<string, unknown>>;
  /** After the arm's last cell: its scheduler stopped, the kernel back on its fair class. */
  teardown(): Promise<void>;
}

const nothing = async () => ({});
const noop = async () => {};

export const CRITICAL_BUDGET_MS = 1;
export const CRITICAL_IMPORTANCE = 90;

/** Why these arms cannot run these workloads, or null when they can. */
export function armsRefusedBy(
  arms: readonly ArmName[],
  workloads: readonly { name: string; supportsRealtime: boolean }[],
): string | null {
  const cannot = workloads.filter((w) => !w.supportsRealtime).map((w) => w.name);
  if (!arms.includes(RT_ARM) || !cannot.length) return null;
  return (
    `arm ${RT_ARM} runs the critical workload under SCHED_FIFO, which ${cannot.join(", ")} cannot do: ` +
    `drop ${RT_ARM} from --arms or run --workloads cyclictest`
  );
}

/** Where the agent of the scx_slo arm runs, as a systemd unit or a pod would place it. */
export const AGENT_CGROUP = "/bench/agent";
const AGENT_CONFIG = "/tmp/scx-slo-bench.conf";

/**
 * Arms whose operator's lever is cpu.weight: the critical (and loadgen) cgroup at 10000, batch at
 * 1. scx_flash honours cpu.weight, so it gets what the fair-weight arm gets.
 */
const WEIGHTED_ARMS: readonly string[] = ["fair-weight", "flash"];

export interface ArmOptions {
  /** Where a peer scheduler's output goes. */
  logFile?: string;
}

export async function setUpArm(
  arm: ArmName,
  cg: BenchCgroups,
  opts: ArmOptions = {},
): Promise<ArmSetup> {
  const paths = defaultLoaderPaths();
  const status = await schedulerStatus(paths);
  if (status.attached) await unloadScheduler(paths);
  const weighted = WEIGHTED_ARMS.includes(arm);
  writeCgroupFile(cg.critical, "cpu.weight", weighted ? "10000" : "100");
  writeCgroupFile(cg.batch, "cpu.weight", weighted ? "1" : "100");
  if (cg.loadgen) writeCgroupFile(cg.loadgen, "cpu.weight", weighted ? "10000" : "100");
  if (arm === "scx_slo") return startAgentArm(cg);
  if (arm === "scx_slo-loader") return loaderOnlyArm(cg);
  if (isPeerArm(arm)) {
    const peer = await startPeer(arm, opts.logFile ?? `/tmp/scx-peer-${arm}.log`);
    return {
      batchIdle: false,
      criticalRealtime: false,
      opsPrefix: peer.opsPrefix,
      attachS: peer.attachS,
      cellStart: noop,
      cellEnd: nothing,
      teardown: async () => {
        const { exitCode, detachS } = await peer.stop();
        console.log(`  ${arm}: detached in ${detachS.toFixed(1)} s, exit ${exitCode}`);
      },
    };
  }
  return {
    batchIdle: arm === "fair-idle",
    criticalRealtime: arm === RT_ARM,
    opsPrefix: null,
    cellStart: noop,
    cellEnd: nothing,
    teardown: noop,
  };
}

interface CgroupWaits {
  cgroupId: bigint;
  hist: number[];
  waitMaxNs: number;
  runs: number;
  misses: number;
}

/**
 * One cell's share of cumulative in-kernel figures (the arm's scheduler outlives the cell). The
 * worst wait is the cell's own when it set a new high; otherwise the upper edge of the highest
 * histogram bucket the cell reached.
 */
export function cellWaits(after: CgroupWaits[], before: CgroupWaits[]): CgroupWaits[] {
  return after.map((a) => {
    const b = before.find((x) => x.cgroupId === a.cgroupId);
    if (!b) return a;
    const hist = histogramDelta(a.hist, b.hist);
    return {
      cgroupId: a.cgroupId,
      hist,
      waitMaxNs: a.waitMaxNs > b.waitMaxNs ? a.waitMaxNs : histogramQuantileNs(hist, 1) || 0,
      runs: a.runs - b.runs,
      misses: a.misses - b.misses,
    };
  });
}

function countersDelta(
  after: Readonly<Record<string, number>>,
  before: Readonly<Record<string, number>>,
): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));
}

/** After a failed arm run: scx_slo unloaded if it is still attached (the agent pins it). */
export async function detachScxSlo(): Promise<void> {
  const paths = defaultLoaderPaths();
  if ((await schedulerStatus(paths)).attached) await unloadScheduler(paths, true);
}

/** The in-kernel view of the critical (and load generator's) cgroup, for the record. */
function kernelView(
  stats: CgroupWaits[],
  counters: Readonly<Record<string, number>> | null,
  cg: BenchCgroups,
): Record<string, unknown> {
  const crit = stats.find((c) => c.cgroupId === cg.criticalId);
  const gen = stats.find((c) => c.cgroupId === cg.loadgenId);
  return {
    ...(gen ? { loadgen_sched_wait_p99_us: histogramQuantileNs(gen.hist, 0.99) / 1000 } : {}),
    sched_wait_p99_us: crit ? histogramQuantileNs(crit.hist, 0.99) / 1000 : null,
    sched_wait_max_us: crit ? crit.waitMaxNs / 1000 : null,
    sched_runs: crit?.runs ?? 0,
    sched_misses: crit?.misses ?? 0,
    preempt_kicks: counters?.preempt_kicks ?? null,
  };
}

/** The control: the scheduler loaded and given the SLO once, with no agent beside it. */
async function loaderOnlyArm(cg: BenchCgroups): Promise<ArmSetup> {
  const paths = defaultLoaderPaths();
  await loadScheduler(paths);
  const session = new LoaderSession(paths);
  const slo = { budgetNs: CRITICAL_BUDGET_MS * NS_PER_MS, importance: CRITICAL_IMPORTANCE };
  await session.set([
    { cgroupId: cg.criticalId, ...slo },
    ...(cg.loadgenId !== undefined ? [{ cgroupId: cg.loadgenId, ...slo }] : []),
  ]);
  const after = await schedulerStatus(paths);
  if (!after.attached) throw new Error(`scx_slo did not attach: state ${after.state}`);
  let before = await session.stats();
  return {
    batchIdle: false,
    criticalRealtime: false,
    opsPrefix: "scx_slo",
    cellStart: async () => {
      before = await session.stats();
    },
    cellEnd: async () => {
      const now = await session.stats();
      return kernelView(
        cellWaits(now.cgroups, before.cgroups),
        countersDelta(now.counters, before.counters),
        cg,
      );
    },
    teardown: async () => {
      await session.close();
      // Purged, so the next arm starts from empty maps and its in-kernel figures are its own.
      await unloadScheduler(paths, true);
    },
  };
}

async function agentStatus() {
  const res = await fetch(`http://${DEFAULT_LISTEN}/status`, { signal: AbortSignal.timeout(5000) });
  return AgentStatusSchema.parse(await res.json());
}

/**
 * scx_slo as its users run it: `scx-slo run` with a config file naming the critical cgroup, in a
 * cgroup of its own; the cell's window starts once the agent has attached the scheduler and the
 * SLO is in the map, and the agent keeps running through it.
 */
async function startAgentArm(cg: BenchCgroups): Promise<ArmSetup> {
  const lines = [`${cg.critical} ${CRITICAL_BUDGET_MS} ${CRITICAL_IMPORTANCE}`];
  if (cg.loadgen) lines.push(`${cg.loadgen} ${CRITICAL_BUDGET_MS} ${CRITICAL_IMPORTANCE}`);
  writeFileSync(AGENT_CONFIG, lines.join("\n") + "\n");
  createCgroup(AGENT_CGROUP);
  const cli = path.join(findProjectRoot(), "dist", "src", "cli", "main.js");
  const agent: ChildProcess = spawnInCgroup(AGENT_CGROUP, [
    process.execPath,
    cli,
    "run",
    "--config",
    AGENT_CONFIG,
    "--listen",
    DEFAULT_LISTEN,
  ]);
  let log = "";
  agent.stderr?.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  agent.stdout?.resume();
  const exited = new Promise<void>((r) => agent.once("close", () => r()));
  const deadline = Date.now() + 120_000;
  for (;;) {
    const st = await agentStatus().catch(() => null);
    if (
      st?.scheduler.state === "attached" &&
      // The agent adds an SLO for its own cgroup beside the config's.
      st.slos.desired >= lines.length &&
      st.slos.applied >= st.slos.desired
    ) {
      break;
    }
    if (Date.now() > deadline || agent.exitCode !== null) {
      agent.kill("SIGKILL");
      throw new Error(`the agent did not attach scx_slo and apply the SLO in time:\n${log}`);
    }
    await sleep(100);
  }
  // Its standby copy goes through the verifier once, in the agent's cgroup: a one-off that the
  // arm's first window would otherwise be charged with (its cells measure the steady state).
  const standbyBy = Date.now() + 120_000;
  while (Date.now() < standbyBy && agent.exitCode === null) {
    const st = await agentStatus().catch(() => null);
    if (st?.scheduler.standby === "ready") break;
    await sleep(200);
  }
  const waits = async (): Promise<CgroupWaits[]> =>
    (await agentStatus()).cgroups.map((c) => ({
      cgroupId: BigInt(c.cgroup_id),
      hist: c.hist,
      waitMaxNs: c.wait_max_ns,
      runs: c.runs,
      misses: c.misses,
    }));
  let before: CgroupWaits[] = [];
  return {
    batchIdle: false,
    criticalRealtime: false,
    ownCgroup: AGENT_CGROUP,
    opsPrefix: "scx_slo",
    cellStart: async () => {
      before = await waits();
    },
    cellEnd: async () => {
      const stats = cellWaits(await waits(), before);
      const proc = readFileSync(`/proc/${agent.pid}/status`, "utf8");
      const rssKiB = Number(/^VmRSS:\s+(\d+)/m.exec(proc)?.[1] ?? NaN);
      return { ...kernelView(stats, null, cg), agent_rss_kib: rssKiB };
    },
    teardown: async () => {
      agent.kill("SIGTERM");
      await exited;
      await unloadScheduler(defaultLoaderPaths(), true);
    },
  };
}
