// The benchmark record format (shared/notes/bench-results.md): fields may be added, none renamed.
export interface BenchRecord {
  arm: string;
  workload: string;
  bg: number;
  rep: number;
  /**
   * The hogs' kind (bench/workloads/stress.ts): "int64", "mix", "cache", "vm"; "none" at bg=0.
   * Records from before hog kinds were a dimension have none and ran int64 hogs.
   */
  hog_kind?: string;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  samples: number;
  batch_ops_per_s: number | null;
  /** CPU the critical / batch cgroup used during the window (cpu.stat usage_usec delta). */
  critical_cpu_usec?: number;
  batch_cpu_usec?: number;
  [extra: string]: unknown;
}

export interface ResultsFile {
  schema: 1;
  machine: string;
  started: string;
  records: BenchRecord[];
  /** Arm runs that failed (a scheduler that did not attach, a workload that broke). */
  failures?: { rep: number; workload: string; arm: string; error: string }[];
  /** How each peer arm was started; scx_layered's layer config with it. */
  peers?: Record<string, { command: string; config?: unknown }>;
  /** A run split over several VM boots, merged: one entry per boot (records carry `boot`). */
  boots?: { boot: number; workloads: string[]; started: string; machine: string; file: string }[];
}
