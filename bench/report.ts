// Pure: a results.json -> the Markdown report (and the plain-text p99 table run.ts prints).
import { RT_ARM } from "./arms.js";
import type { ResultsFile } from "./results.js";
import {
  armsOf,
  batchVsFair,
  checkTargets,
  findCell,
  floorReference,
  stepsOf,
  summarize,
  workloadsOf,
  type Cell,
  type TargetCheck,
} from "./summary.js";

export interface ReportOptions {
  /** When the report was written (ISO); defaults to now. */
  generated?: string;
  /** Chart file per workload, linked from the report when given. */
  chartFile?: (workload: string) => string;
}

const fmtUs = (x: number) => (Number.isFinite(x) ? String(Math.round(x)) : "-");
const fmtRatio = (x: number | null) => (x === null ? "-" : x.toFixed(2));
const fmtOps = (x: number | null) => (x === null ? "-" : x.toFixed(1));
const fmtCores = (x: number | null) => (x === null ? "-" : x.toFixed(3));

function mdTable(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

function cellRows(cells: readonly Cell[], workload: string): string[][] {
  const rows: string[][] = [];
  for (const bg of stepsOf(cells, workload)) {
    for (const arm of armsOf(cells, workload)) {
      const c = findCell(cells, workload, arm, bg);
      if (!c) continue;
      const limit = c.critical_limit_cores === null ? "" : ` / ${fmtCores(c.critical_limit_cores)}`;
      rows.push([
        String(bg),
        arm,
        String(c.reps),
        fmtUs(c.p50_us),
        fmtUs(c.p99_us),
        fmtUs(c.p999_us),
        fmtOps(c.batch_ops_per_s),
        fmtRatio(batchVsFair(cells, c)),
        fmtCores(c.critical_cores) + limit,
      ]);
    }
  }
  return rows;
}

export function targetRows(checks: readonly TargetCheck[]): string[][] {
  return checks.map((t) => [
    t.name,
    fmtRatio(t.ratio),
    `${t.cmp} ${t.limit}`,
    `**${t.verdict}**`,
    t.detail,
  ]);
}

/** Steps down, arms across, p99 in microseconds: the figure the lead compares first. */
export function p99Grid(cells: readonly Cell[], workload: string): string[][] {
  const arms = armsOf(cells, workload);
  return [
    ["bg", ...arms],
    ...stepsOf(cells, workload).map((bg) => [
      String(bg),
      ...arms.map((arm) => {
        const c = findCell(cells, workload, arm, bg);
        return c ? fmtUs(c.p99_us) : "-";
      }),
    ]),
  ];
}

/** The p99 grid as aligned plain text, for the terminal. */
export function p99Text(results: ResultsFile): string {
  const cells = summarize(results);
  const out: string[] = [];
  for (const w of workloadsOf(results)) {
    const grid = p99Grid(cells, w);
    const widths = grid[0]!.map((_, i) => Math.max(...grid.map((row) => row[i]!.length)));
    out.push(`${w}: p99 us (median over reps)`);
    for (const row of grid) out.push("  " + row.map((x, i) => x.padStart(widths[i]!)).join("  "));
    for (const t of checkTargets(cells, w)) {
      out.push(`  ${t.verdict.padEnd(4)} ${t.name}: ${fmtRatio(t.ratio)} (${t.detail})`);
    }
  }
  return out.join("\n");
}

function repsOf(results: ResultsFile): number {
  return new Set(results.records.map((r) => r.rep)).size;
}

export function renderReport(results: ResultsFile, opts: ReportOptions = {}): string {
  const cells = summarize(results);
  const workloads = workloadsOf(results);
  const arms = [...new Set(cells.map((c) => c.arm))];
  const lines: string[] = [
    "# scx-slo noisy-neighbour benchmark",
    "",
    `- Machine: ${results.machine}`,
    `- Started: ${results.started}`,
    `- Report written: ${opts.generated ?? new Date().toISOString()}`,
    `- ${results.records.length} records; workloads ${workloads.join(", ")}; arms ${arms.join(", ")}; ${repsOf(results)} rep(s), arms interleaved`,
    "",
    "Every figure is the median over repetitions. Latencies in microseconds. `batch` is the hogs'",
    "throughput (stress-ng bogo ops/s), `vs fair` that throughput over the untouched fair arm's at",
    "the same step, `critical CPU` the cores the critical cgroup used (its cpu.max after the slash,",
    "where one was set). Timing in the VM runs on an emulated CPU: compare arms within this run",
    "only, never against another run's figures.",
  ];
  for (const w of workloads) {
    lines.push("", `## ${w}`, "", "### p99 by step (rows) and arm (columns)", "");
    const grid = p99Grid(cells, w);
    lines.push(mdTable(grid[0]!, grid.slice(1)));
    lines.push("", "### All figures", "");
    lines.push(
      mdTable(
        [
          "bg",
          "arm",
          "reps",
          "p50",
          "p99",
          "p999",
          "batch ops/s",
          "vs fair",
          "critical CPU (cores)",
        ],
        cellRows(cells, w),
      ),
    );
    const checks = checkTargets(cells, w);
    if (checks.length) {
      lines.push("", "### Targets", "");
      lines.push(mdTable(["target", "ratio", "limit", "result", "detail"], targetRows(checks)));
    }
    const floor = floorReference(cells, w);
    if (floor) {
      lines.push(
        "",
        "### Reference: the kernel's fastest wake-up",
        "",
        `${RT_ARM} runs the critical workload as a SCHED_FIFO task under the fair class. The`,
        "real-time class runs before every other class and preempts at once, with the least work on",
        "the way, so its p99 is close to the floor this machine (and its emulator) puts under any arm.",
        `At bg=${floor.bg}: ${fmtUs(floor.rtP99)} us, ${fmtRatio(floor.rtVsFair)}x fair's p99; scx_slo's p99 is ${fmtRatio(floor.scxVsRt)}x it.`,
        "Not a target, and no way to run a pod: a FIFO task that spins keeps its CPU from everything",
        "else but the 5% real-time throttle.",
      );
    }
    if (opts.chartFile)
      lines.push("", `![p99 against background hogs, ${w}](${opts.chartFile(w)})`);
  }
  return lines.join("\n") + "\n";
}
