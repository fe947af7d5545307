// Host side of a benchmark run: one VM boot running the whole ladder (so every arm shares one
// boot and ratios stay comparable), then results.json, report.md and the charts on the host.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  DEFAULT_CPU_MODEL,
  DEFAULT_KERNEL_ARGS,
  findKernel,
  newRunDir,
  PROJECT_ROOT,
  runInVm,
  type VmResult,
} from "../vm/harness.js";
import type { HostPriority } from "../vm/host-priority.js";
import { renderChart } from "./chart.js";
import { renderReport } from "./report.js";
import type { ResultsFile } from "./results.js";
import { summarize, workloadsOf } from "./summary.js";
import { validateResults } from "./validate.js";
import { findPgBin } from "./workloads/pgbench.js";

export interface BenchPlan {
  arms: string[];
  steps: number[];
  reps: number;
  durationS: number;
  workloads: string[];
  /** More ladder options, e.g. ["--http-rate", "50"]. */
  ladderArgs?: string[];
  /** How QEMU's threads are prioritised on the host (vm/host-priority.ts); default timers-first. */
  hostPriority?: HostPriority;
}

export const QUICK: BenchPlan = {
  arms: ["fair", "scx_slo"],
  steps: [0, 2, 8],
  reps: 1,
  durationS: 6,
  workloads: ["cyclictest", "http"],
};

export const FULL: BenchPlan = {
  arms: ["fair", "fair-weight", "fair-idle", "scx_slo"],
  steps: [0, 1, 2, 4, 8],
  reps: 3,
  durationS: 10,
  workloads: ["cyclictest", "http", "pgbench"],
};

export const VM_CPUS = 2;
export const VM_MEMORY_MIB = 2048;

/** Seconds one cell costs beyond its duration under the emulated CPU (setup, start-up, hogs). */
const CELL_OVERHEAD_S = 8;

export function cellCount(plan: BenchPlan): number {
  return plan.arms.length * plan.steps.length * plan.reps * plan.workloads.length;
}

/** A generous limit: twice the expected time plus boot, so only a hung run is killed. */
export function vmTimeoutMs(plan: BenchPlan): number {
  return (cellCount(plan) * (plan.durationS + CELL_OVERHEAD_S) * 2 + 120) * 1000;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function ladderCommand(plan: BenchPlan, machine: string): string {
  const args = [
    ...["--arms", plan.arms.join(","), "--steps", plan.steps.join(",")],
    ...["--reps", String(plan.reps), "--duration", String(plan.durationS)],
    ...["--workloads", plan.workloads.join(","), "--machine", machine],
    ...(plan.ladderArgs ?? []),
  ];
  return `node dist/bench/ladder.js ${args.map(shellQuote).join(" ")} --out "$SCXVM_OUT"`;
}

export function describeMachine(hostPriority: HostPriority = "timers-first"): string {
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  let kernel = "unknown";
  try {
    kernel = findKernel().version;
  } catch {
    // reported by runInVm itself
  }
  return `host ${cpu} (${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB); guest QEMU TCG -cpu ${DEFAULT_CPU_MODEL}, ${VM_CPUS} vCPUs, ${VM_MEMORY_MIB} MiB, kernel ${kernel} ${DEFAULT_KERNEL_ARGS.join(" ")}, host priority ${hostPriority}`;
}

/** What the guest will run from the host's root: a clear message beats a failure mid-ladder. */
export function missingBuildOutputs(plan: BenchPlan): string[] {
  const need = [path.join(PROJECT_ROOT, "dist", "bench", "ladder.js")];
  if (plan.arms.some((a) => a.startsWith("scx_slo"))) {
    need.push(path.join(PROJECT_ROOT, "build", "scx-slo-loader"));
    need.push(path.join(PROJECT_ROOT, "build", "scx_slo.bpf.o"));
  }
  const missing = need.filter((f) => !existsSync(f));
  if (plan.workloads.includes("pgbench")) {
    try {
      findPgBin();
    } catch {
      missing.push("a PostgreSQL server (apt-get install postgresql-15; or leave out pgbench)");
    }
  }
  return missing;
}

export interface VmBenchRun {
  vm: VmResult;
  /** Null when the guest wrote none (the ladder failed before its first record). */
  results: ResultsFile | null;
  resultsPath: string | null;
}

export async function runLadderInVm(
  plan: BenchPlan,
  opts: { onOutput?: (chunk: string) => void; machine?: string } = {},
): Promise<VmBenchRun> {
  const vm = await runInVm({
    command: ladderCommand(plan, opts.machine ?? describeMachine(plan.hostPriority)),
    cpus: VM_CPUS,
    memoryMiB: VM_MEMORY_MIB,
    timeoutMs: vmTimeoutMs(plan),
    outDir: newRunDir("bench"),
    onOutput: opts.onOutput,
    hostPriority: plan.hostPriority,
  });
  const file = path.join(vm.outDir, "results.json");
  if (!existsSync(file)) return { vm, results: null, resultsPath: null };
  return { vm, results: JSON.parse(readFileSync(file, "utf8")) as ResultsFile, resultsPath: file };
}

/** bench/results/<date>[-label], with -2, -3... so a second run that day keeps the first. */
export function resultsDir(base: string, date: Date, label?: string): string {
  const day = date.toISOString().slice(0, 10);
  const name = label ? `${day}-${label.replace(/[^A-Za-z0-9._-]/g, "_")}` : day;
  let dir = path.join(base, name);
  for (let n = 2; existsSync(path.join(dir, "results.json")); n++) {
    dir = path.join(base, `${name}-${n}`);
  }
  return dir;
}

export interface WrittenOutputs {
  results: string;
  report: string;
  charts: string[];
}

export function writeOutputs(
  results: ResultsFile,
  dir: string,
  sourceFile?: string,
): WrittenOutputs {
  const errors = validateResults(results);
  if (errors.length) throw new Error(`results do not match the schema: ${errors.join("; ")}`);
  mkdirSync(dir, { recursive: true });
  const resultsPath = path.join(dir, "results.json");
  // The guest's own bytes when there are some: the raw record is what gets archived.
  if (sourceFile) copyFileSync(sourceFile, resultsPath);
  else writeFileSync(resultsPath, JSON.stringify(results, null, 1));
  const chartName = (w: string) => `chart-${w.replace(/[^A-Za-z0-9._-]/g, "_")}.svg`;
  const cells = summarize(results);
  const charts = workloadsOf(results).map((w) => {
    const file = path.join(dir, chartName(w));
    writeFileSync(file, renderChart(cells, w));
    return file;
  });
  const report = path.join(dir, "report.md");
  writeFileSync(report, renderReport(results, { chartFile: chartName }));
  return { results: resultsPath, report, charts };
}
