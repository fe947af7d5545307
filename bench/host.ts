// Host side of a benchmark run: the ladder in one VM boot (so every arm shares one boot and
// ratios stay comparable), or, when the plan is too long for one boot, one boot per workload with
// every arm of that workload in it; then results.json, report.md and the charts on the host.
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
import { isPeerArm, peerBinDir, peerCommand } from "./peer-arms.js";
import { cellCount as planCells, estimateSeconds } from "./plan.js";
import { renderReport } from "./report.js";
import type { ResultsFile } from "./results.js";
import { hogKindsOf, summarize, workloadsOf } from "./summary.js";
import { validateResults } from "./validate.js";
import { findPgBin } from "./workloads/pgbench.js";
import { DEFAULT_HOG_KIND, HOG_KINDS } from "./workloads/stress.js";

export interface BenchPlan {
  arms: string[];
  steps: number[];
  reps: number;
  durationS: number;
  workloads: string[];
  /** Hog kinds (bench/workloads/stress.ts); absent: int64 only. */
  hogKinds?: string[];
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

/**
 * What an operator would pick instead of scx_slo: the fair class as is and tuned with cpu.weight,
 * and the sched-ext/scx production schedulers (lavd-bw, scx_lavd enforcing cpu.max, runs only
 * where a workload sets one: pgbench). Every hog kind at every step with hogs.
 */
export const FULL: BenchPlan = {
  arms: ["fair", "fair-weight", "lavd", "lavd-bw", "bpfland", "flash", "layered", "scx_slo"],
  steps: [0, 1, 2, 4, 8],
  reps: 3,
  durationS: 10,
  workloads: ["cyclictest", "http", "pgbench", "chain"],
  hogKinds: [...HOG_KINDS],
};

export const VM_CPUS = 2;
export const VM_MEMORY_MIB = 2048;

/**
 * The longest one boot is planned to run. A guest that dies (an emulator or kernel fault,
 * docs/kernel-issues.md) takes the rest of its boot with it; longer plans are split by workload.
 */
export const MAX_BOOT_S = 3 * 3600;

export function cellCount(plan: BenchPlan): number {
  return planCells(plan);
}

/** Expected seconds of the ladder (cells and scheduler attaches; boot not included). */
export function planSeconds(plan: BenchPlan): number {
  return estimateSeconds(plan, plan.durationS);
}

/** A generous limit: twice the expected time plus a peer's attach timeout and boot. */
export function vmTimeoutMs(plan: BenchPlan): number {
  return (planSeconds(plan) * 2 + 600 + 120) * 1000;
}

/** The plan as boots: one when it fits MAX_BOOT_S, else one per workload (all its arms). */
export function splitPlan(plan: BenchPlan, maxS = MAX_BOOT_S): BenchPlan[] {
  if (planSeconds(plan) <= maxS || plan.workloads.length < 2) return [plan];
  return plan.workloads.map((w) => ({ ...plan, workloads: [w] }));
}

/**
 * One results file from several boots: records in boot order, each tagged with its boot, and a
 * `boots` list naming each boot's workloads and raw file. Rep order holds within a boot.
 */
export function mergeBoots(parts: { results: ResultsFile; file: string }[]): ResultsFile {
  const first = parts[0]!.results;
  const merged: ResultsFile = {
    schema: 1,
    machine: first.machine,
    started: first.started,
    records: [],
    failures: [],
    peers: {},
    boots: [],
  };
  parts.forEach(({ results, file }, boot) => {
    merged.records.push(...results.records.map((r) => ({ ...r, boot })));
    merged.failures!.push(...(results.failures ?? []));
    Object.assign(merged.peers!, results.peers ?? {});
    merged.boots!.push({
      boot,
      workloads: [...new Set(results.records.map((r) => r.workload))],
      started: results.started,
      machine: results.machine,
      file: path.basename(file),
    });
  });
  return merged;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function ladderCommand(plan: BenchPlan, machine: string): string {
  const args = [
    ...["--arms", plan.arms.join(","), "--steps", plan.steps.join(",")],
    ...["--reps", String(plan.reps), "--duration", String(plan.durationS)],
    ...["--workloads", plan.workloads.join(","), "--machine", machine],
    ...(plan.hogKinds?.length ? ["--hog-kinds", plan.hogKinds.join(",")] : []),
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
  for (const arm of plan.arms.filter(isPeerArm)) {
    const bin = peerCommand(arm, PROJECT_ROOT).argv[0]!;
    if (!need.includes(bin)) need.push(bin);
  }
  const missing = need
    .filter((f) => !existsSync(f))
    .map((f) => (f.startsWith(peerBinDir()) ? `${f} (make peers)` : f));
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
  const chartName = (w: string, kind: string) =>
    `chart-${(kind === DEFAULT_HOG_KIND ? w : `${w}-${kind}`).replace(/[^A-Za-z0-9._-]/g, "_")}.svg`;
  const cells = summarize(results);
  const charts = workloadsOf(results).flatMap((w) =>
    hogKindsOf(cells, w).map((kind) => {
      const file = path.join(dir, chartName(w, kind));
      writeFileSync(file, renderChart(cells, w, kind));
      return file;
    }),
  );
  const report = path.join(dir, "report.md");
  writeFileSync(report, renderReport(results, { chartFile: chartName }));
  return { results: resultsPath, report, charts };
}
