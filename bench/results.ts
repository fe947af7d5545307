// The benchmark record format (shared/notes/bench-results.md): fields may be added, none renamed.
export interface BenchRecord {
  arm: string;
  workload: string;
  bg: number;
  rep: number;
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
}
