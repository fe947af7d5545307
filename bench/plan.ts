// Pure: which cells a ladder runs and in what order, and what that costs in time. Shared by the
// ladder in the guest (its loop) and the host (cell counts, time estimates, splitting a run that
// does not fit one boot).
//
// Order: rep -> workload -> arm -> step (-> hog kind). An arm's scheduler is started once for
// its run of cells and kept across the steps: the peers spend minutes in the BPF verifier under
// emulation, and a node's scheduler outlives any one load level too. Every arm of a workload
// runs in each rep before the next rep starts, so rep 0 of every arm ran before rep 1 of any.
import { DEFAULT_HOG_KIND, NO_HOGS } from "./workloads/stress.js";

export interface LadderPlan {
  arms: readonly string[];
  workloads: readonly string[];
  steps: readonly number[];
  reps: number;
  /** Hog kinds (bench/workloads/stress.ts); absent: int64 only. */
  hogKinds?: readonly string[];
}

/** The arm that enforces cpu.max among the peers, run only where a workload sets one. */
export const CPU_BW_ARMS: readonly string[] = ["lavd-bw"];
/** Workloads that put a cpu.max on the critical cgroup. */
export const CPU_MAX_WORKLOADS: readonly string[] = ["pgbench"];

export interface CellSpec {
  bg: number;
  /** NO_HOGS at bg=0: that cell has no hogs, and serves every kind's ladder. */
  hogKind: string;
}

export interface ArmRun {
  rep: number;
  workload: string;
  arm: string;
  cells: CellSpec[];
}

export function armRunsOn(
  arm: string,
  workload: string,
  hasCpuMax: (w: string) => boolean = (w) => CPU_MAX_WORKLOADS.includes(w),
): boolean {
  return !CPU_BW_ARMS.includes(arm) || hasCpuMax(workload);
}

/** One arm's cells: steps in order; a step with hogs once per kind, bg=0 once. */
export function cellsOfArm(steps: readonly number[], kinds: readonly string[]): CellSpec[] {
  return steps.flatMap((bg) =>
    bg === 0 ? [{ bg, hogKind: NO_HOGS }] : kinds.map((hogKind) => ({ bg, hogKind })),
  );
}

export function armRuns(plan: LadderPlan, hasCpuMax?: (w: string) => boolean): ArmRun[] {
  const kinds = plan.hogKinds?.length ? plan.hogKinds : [DEFAULT_HOG_KIND];
  const cells = cellsOfArm(plan.steps, kinds);
  const out: ArmRun[] = [];
  for (let rep = 0; rep < plan.reps; rep++) {
    for (const workload of plan.workloads) {
      for (const arm of plan.arms) {
        if (armRunsOn(arm, workload, hasCpuMax)) out.push({ rep, workload, arm, cells });
      }
    }
  }
  return out;
}

export function cellCount(plan: LadderPlan): number {
  return armRuns(plan).reduce((n, r) => n + r.cells.length, 0);
}

/**
 * Seconds from start to attached, for estimates: scx_lavd and scx_layered spend minutes in the
 * BPF verifier under emulation (bench/peers/README.md), the others seconds.
 */
export const ATTACH_ESTIMATE_S: Readonly<Record<string, number>> = {
  lavd: 150,
  "lavd-bw": 150,
  layered: 80,
  bpfland: 10,
  flash: 10,
  scx_slo: 5,
  "scx_slo-loader": 3,
};

/**
 * Seconds a cell costs beyond its duration under the emulated CPU: the settle second, the hogs'
 * margin, and starting the workload's processes (node start-up is slow there).
 */
export const CELL_OVERHEAD_S: Readonly<Record<string, number>> = {
  cyclictest: 4,
  http: 8,
  pgbench: 9,
  chain: 9,
};
const DEFAULT_OVERHEAD_S = 8;

/** Seconds per arm run for services kept across its cells: the chain's start-up and warm-up. */
export const ARM_OVERHEAD_S: Readonly<Record<string, number>> = { chain: 30 };

export function estimateSeconds(plan: LadderPlan, durationS: number): number {
  let s = 0;
  for (const run of armRuns(plan)) {
    s += (ATTACH_ESTIMATE_S[run.arm] ?? 0) + (ARM_OVERHEAD_S[run.workload] ?? 0);
    s += run.cells.length * (durationS + (CELL_OVERHEAD_S[run.workload] ?? DEFAULT_OVERHEAD_S));
  }
  return s;
}
