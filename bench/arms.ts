// The schedulers compared: the kernel's fair class as is, as a careful operator would tune it
// today, and scx_slo with the critical cgroup under an SLO.
import { writeCgroupFile } from "../src/cgroup/cgroupfs.js";
import {
  defaultLoaderPaths,
  loadScheduler,
  LoaderSession,
  schedulerStatus,
  unloadScheduler,
} from "../src/sched/loader.js";
import { histogramQuantileNs } from "../src/sched/histogram.js";
import { NS_PER_MS } from "../src/slo/model.js";

export type ArmName = "fair" | "fair-weight" | "fair-idle" | "scx_slo";
export const ALL_ARMS: readonly ArmName[] = ["fair", "fair-weight", "fair-idle", "scx_slo"];

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
  /** Extra fields for the record (scx_slo: the in-kernel view of the critical cgroup's waits). */
  teardown(): Promise<Record<string, unknown>>;
}

export const CRITICAL_BUDGET_MS = 1;
export const CRITICAL_IMPORTANCE = 90;

export async function setUpArm(arm: ArmName, cg: BenchCgroups): Promise<ArmSetup> {
  const paths = defaultLoaderPaths();
  const status = await schedulerStatus(paths);
  if (status.attached) await unloadScheduler(paths);
  writeCgroupFile(cg.critical, "cpu.weight", arm === "fair-weight" ? "10000" : "100");
  writeCgroupFile(cg.batch, "cpu.weight", arm === "fair-weight" ? "1" : "100");
  if (cg.loadgen)
    writeCgroupFile(cg.loadgen, "cpu.weight", arm === "fair-weight" ? "10000" : "100");
  if (arm !== "scx_slo") {
    return { batchIdle: arm === "fair-idle", teardown: async () => ({}) };
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
