// The schedulers compared: the kernel's fair class as is, as a careful operator would tune it
// today, and scx_slo with the critical cgroup under an SLO. fair-rt is a reference rather than a
// contender: the critical workload as a real-time (SCHED_FIFO) task, the fastest wake-up the kernel
// has, so a report shows how close the emulator lets any scheduler get (it is no answer for a pod:
// a FIFO task that spins holds its CPU against everything but the 5% real-time throttle).
import { writeCgroupFile } from "../src/cgroup/cgroupfs.js";
import {
  defaultLoaderPaths,
  loadScheduler,
  schedulerStatus,
  unloadScheduler,
} from "../src/sched/loader.js";
import { LoaderSession } from "../src/sched/session.js";
import { histogramQuantileNs } from "../src/sched/histogram.js";
import { NS_PER_MS } from "../src/slo/model.js";

export const ALL_ARMS = ["fair", "fair-weight", "fair-idle", "scx_slo", "fair-rt"] as const;
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
  /** Run the critical workload under SCHED_FIFO at RT_PRIORITY. */
  criticalRealtime: boolean;
  /** Extra fields for the record (scx_slo: the in-kernel view of the critical cgroup's waits). */
  teardown(): Promise<Record<string, unknown>>;
}

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

export async function setUpArm(arm: ArmName, cg: BenchCgroups): Promise<ArmSetup> {
  const paths = defaultLoaderPaths();
  const status = await schedulerStatus(paths);
  if (status.attached) await unloadScheduler(paths);
  writeCgroupFile(cg.critical, "cpu.weight", arm === "fair-weight" ? "10000" : "100");
  writeCgroupFile(cg.batch, "cpu.weight", arm === "fair-weight" ? "1" : "100");
  if (cg.loadgen)
    writeCgroupFile(cg.loadgen, "cpu.weight", arm === "fair-weight" ? "10000" : "100");
  if (arm !== "scx_slo") {
    return {
      batchIdle: arm === "fair-idle",
      criticalRealtime: arm === RT_ARM,
      teardown: async () => ({}),
    };
  }
  await loadScheduler(paths);
  const session = new LoaderSession(paths);
  const slo = { budgetNs: CRITICAL_BUDGET_MS * NS_PER_MS, importance: CRITICAL_IMPORTANCE };
  await session.set([
    { cgroupId: cg.criticalId, ...slo },
    ...(cg.loadgenId !== undefined ? [{ cgroupId: cg.loadgenId, ...slo }] : []),
  ]);
  const after = await schedulerStatus(paths);
  if (!after.attached) throw new Error(`scx_slo did not attach: state ${after.state}`);
  return {
    batchIdle: false,
    criticalRealtime: false,
    teardown: async () => {
      const stats = await session.stats();
      await session.close();
      // Purged, so every cell starts from empty maps and its in-kernel figures are its own.
      await unloadScheduler(paths, true);
      const crit = stats.cgroups.find((c) => c.cgroupId === cg.criticalId);
      const gen = stats.cgroups.find((c) => c.cgroupId === cg.loadgenId);
      return {
        ...(gen ? { loadgen_sched_wait_p99_us: histogramQuantileNs(gen.hist, 0.99) / 1000 } : {}),
        sched_wait_p99_us: crit ? histogramQuantileNs(crit.hist, 0.99) / 1000 : null,
        sched_wait_max_us: crit ? crit.waitMaxNs / 1000 : null,
        sched_runs: crit?.runs ?? 0,
        sched_misses: crit?.misses ?? 0,
        preempt_kicks: stats.counters.preempt_kicks,
      };
    },
  };
}
