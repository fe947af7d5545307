// What the ladder needs from a workload. Start-up (servers, connections, JIT warm-up) happens in
// prepare(), under the arm's scheduler but before the hogs start and before the cgroups' CPU
// counters are read, so only the measured window is charged to the cell.
import type { BenchCgroups } from "./arms.js";
import type { Percentiles } from "./stats.js";

export type WorkloadResult = Percentiles & Record<string, unknown>;

export interface CellContext {
  cg: BenchCgroups;
  durationS: number;
  /** SCHED_FIFO priority for the critical workload (the fair-rt arm); absent: SCHED_OTHER. */
  realtimePriority?: number;
}

export interface RunningWorkload {
  measure(): Promise<WorkloadResult>;
  /** Stops whatever prepare() started; safe to call after a failed measure(). */
  close(): Promise<void>;
}

export interface Workload {
  name: string;
  /** Needs the generator cgroup (a client standing in for the network). */
  needsLoadgen: boolean;
  /** Seconds the hogs must outlast the measured duration after the settle second. */
  hogMarginS: number;
  /** Whether prepare() honours CellContext.realtimePriority (the fair-rt arm). */
  supportsRealtime: boolean;
  /**
   * The critical cgroup's cpu.max while this workload runs (absent: none). The ladder writes it
   * before the first arm's scheduler attaches and lifts it after the last one has detached, with
   * the cgroup empty both times: a limit changed under an attached sched_ext scheduler can crash
   * Linux 7.3 when the scheduler is unloaded (docs/kernel-issues.md).
   */
  criticalCpuMax?: string;
  /** Once per ladder, before any cell (calibration, a database to create). */
  init?(): Promise<void>;
  /**
   * Once per arm run, under the arm's scheduler and before its first cell: long-lived services
   * its cells share (the chain's), started and warmed up so that a cell measures scheduling, not
   * start-up. Resolves with what stops them, which the ladder calls after the arm's last cell.
   */
  startArm?(ctx: CellContext): Promise<() => Promise<void>>;
  prepare(ctx: CellContext): Promise<RunningWorkload>;
  /** Once per ladder, after the last cell. */
  cleanup?(): Promise<void>;
}
