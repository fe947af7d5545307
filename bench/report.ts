// Pure: a results.json -> the Markdown report (and the plain-text p99 table run.ts prints).
import { RT_ARM } from "./arms.js";
import type { ResultsFile } from "./results.js";
import {
  armsOf,
  batchVsFair,
  checkTargets,
  CPU_MAX_TOLERANCE,
  cpuMaxByArm,
  findCell,
  floorReference,
  hogKindsOf,
  isPeer,
  p99Growth,
  pointByPoint,
  rivalsOf,
  stepsOf,
  summarize,
  workloadsOf,
  type Cell,
  type TargetCheck,
} from "./summary.js";
import { DEFAULT_HOG_KIND, hogArgs, isHogKind } from "./workloads/stress.js";

export interface ReportOptions {
  /** When the report was written (ISO); defaults to now. */
  generated?: string;
  /** Chart file per workload and hog kind, linked from the report when given. */
  chartFile?: (workload: string, kind: string) => string;
}

/** How each arm treats the cgroup controls, from its source and documentation. */
const CONTROLS: Readonly<Record<string, [string, string]>> = {
  fair: ["honoured", "enforced"],
  "fair-weight": ["honoured (critical 10000, batch 1)", "enforced"],
  "fair-idle": ["honoured", "enforced"],
  scx_slo: ["honoured (hierarchical shares)", "enforced by scx_slo"],
  "scx_slo-loader": ["honoured (hierarchical shares)", "enforced by scx_slo"],
  lavd: ["ignored", "ignored"],
  "lavd-bw": ["ignored", "enforced (--enable-cpu-bw, experimental)"],
  bpfland: ["ignored", "ignored"],
  flash: ["honoured, own cgroup only (critical 10000, batch 1)", "ignored"],
  layered: ["ignored (layer weights instead)", "ignored"],
};

const fmtUs = (x: number) => (Number.isFinite(x) ? String(Math.round(x)) : "-");
const fmtRatio = (x: number | null) => (x === null ? "-" : x.toFixed(2));
const fmtOps = (x: number | null) => (x === null ? "-" : x.toFixed(1));
const fmtCores = (x: number | null) => (x === null ? "-" : x.toFixed(3));

function mdTable(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

function cellRows(cells: readonly Cell[], workload: string, kind: string): string[][] {
  const rows: string[][] = [];
  for (const bg of stepsOf(cells, workload, kind)) {
    for (const arm of armsOf(cells, workload, kind)) {
      const c = findCell(cells, workload, arm, bg, kind);
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
export function p99Grid(
  cells: readonly Cell[],
  workload: string,
  kind: string = DEFAULT_HOG_KIND,
): string[][] {
  const arms = armsOf(cells, workload, kind);
  return [
    ["bg", ...arms],
    ...stepsOf(cells, workload, kind).map((bg) => [
      String(bg),
      ...arms.map((arm) => {
        const c = findCell(cells, workload, arm, bg, kind);
        return c ? fmtUs(c.p99_us) : "-";
      }),
    ]),
  ];
}

/** "cyclictest" for the default kind when it is the only one, else "cyclictest, mix hogs". */
function ladderName(workload: string, kind: string, kinds: readonly string[]): string {
  return kinds.length === 1 && kind === DEFAULT_HOG_KIND ? workload : `${workload}, ${kind} hogs`;
}

/** The p99 grid as aligned plain text, for the terminal. */
export function p99Text(results: ResultsFile): string {
  const cells = summarize(results);
  const out: string[] = [];
  for (const w of workloadsOf(results)) {
    const kinds = hogKindsOf(cells, w);
    for (const kind of kinds) {
      const grid = p99Grid(cells, w, kind);
      const widths = grid[0]!.map((_, i) => Math.max(...grid.map((row) => row[i]!.length)));
      out.push(`${ladderName(w, kind, kinds)}: p99 us (median over reps)`);
      for (const row of grid) out.push("  " + row.map((x, i) => x.padStart(widths[i]!)).join("  "));
      for (const t of checkTargets(cells, w, kind)) {
        out.push(`  ${t.verdict.padEnd(4)} ${t.name}: ${fmtRatio(t.ratio)} (${t.detail})`);
      }
    }
  }
  return out.join("\n");
}

/** scx_slo against each rival arm, steps down: "p99 ratio / batch ratio" per arm. */
function pointRows(cells: readonly Cell[], workload: string, kind: string): string[][] {
  const rivals = rivalsOf(cells, workload, kind);
  const points = pointByPoint(cells, workload, kind);
  return [
    ["bg", ...rivals],
    ...stepsOf(cells, workload, kind)
      .filter((bg) => points.some((p) => p.bg === bg))
      .map((bg) => [
        String(bg),
        ...rivals.map((arm) => {
          const p = points.find((x) => x.bg === bg && x.arm === arm);
          if (!p) return "-";
          const mark = p.p99 !== null && p.p99 <= 1 ? "" : " (worse)";
          return `${fmtRatio(p.p99)}${mark} / ${fmtRatio(p.batch)}`;
        }),
      ]),
  ];
}

function growthRows(cells: readonly Cell[], workload: string, kind: string): string[][] {
  return p99Growth(cells, workload, kind).map((g) => [
    g.arm,
    g.idleP99 === null ? "-" : fmtUs(g.idleP99),
    g.topP99 === null ? "-" : fmtUs(g.topP99),
    g.growth === null ? "-" : `${g.growth.toFixed(2)}x`,
  ]);
}

function cpuMaxRows(cells: readonly Cell[], workload: string): string[][] {
  return cpuMaxByArm(cells, workload).map((u) => [
    u.arm,
    (CONTROLS[u.arm] ?? ["?", "?"])[1],
    fmtCores(u.limit),
    u.worst === null ? "-" : fmtCores(u.worst * u.limit),
    fmtRatio(u.worst),
    u.at ? `bg=${u.at.bg} ${u.at.hog_kind}` : "-",
    u.held === null ? "-" : u.held ? "**held**" : "**not held**",
  ]);
}

/** Every target of every workload and hog kind in one table. */
function targetSummaryRows(cells: readonly Cell[], workloads: readonly string[]): string[][] {
  const rows: string[][] = [];
  for (const w of workloads) {
    for (const kind of hogKindsOf(cells, w)) {
      for (const t of checkTargets(cells, w, kind)) {
        rows.push([w, kind, t.name, fmtRatio(t.ratio), `${t.cmp} ${t.limit}`, `**${t.verdict}**`]);
      }
    }
  }
  return rows;
}

function peerSection(results: ResultsFile, arms: readonly string[]): string[] {
  const lines: string[] = [];
  const ran = arms.filter((a) => CONTROLS[a]);
  if (!arms.some(isPeer)) return lines;
  lines.push(
    "",
    "## The arms",
    "",
    "The peers are the sched-ext/scx project's production schedulers, built from crates.io at",
    "pinned versions (`bench/peers/versions.env`) and started as an operator would start them, with",
    "their documented defaults (`bench/peers/README.md`): each is attached once per repetition and",
    "workload and kept across that arm's hog steps. How each treats the cgroup controls the",
    "benchmark's cgroups carry (from its source; what held is measured below, per workload):",
    "",
    mdTable(
      ["arm", "command", "cpu.weight", "cpu.max"],
      ran.map((a) => [
        a,
        results.peers?.[a]?.command ? `\`${results.peers[a]!.command}\`` : "-",
        CONTROLS[a]![0],
        CONTROLS[a]![1],
      ]),
    ),
  );
  const layered = results.peers?.layered?.config;
  if (layered !== undefined) {
    lines.push(
      "",
      "scx_layered needs a layer config; this one gives the critical cgroup (and the load",
      "generator, which stands in for remote clients and gets the critical treatment in every arm)",
      "a layer of its own that preempts, as the commercial peer's Critical tier does: a waking",
      "critical task takes a CPU from a task of the other layer when none is idle, with 1 ms",
      "slices (the budget scx_slo is given) and the highest layer weight. Everything else shares",
      "an Open layer with scx_layered's defaults. Open rather than Confined: a crowded node has no",
      "CPUs to fence off, and on 2 CPUs a confined batch layer would be a CPU reservation, a",
      "different experiment.",
      "",
      "```json",
      JSON.stringify(layered, null, 2),
      "```",
    );
  }
  return lines;
}

function repsOf(results: ResultsFile): number {
  return new Set(results.records.map((r) => r.rep)).size;
}

export function renderReport(results: ResultsFile, opts: ReportOptions = {}): string {
  const cells = summarize(results);
  const workloads = workloadsOf(results);
  const arms = [...new Set(cells.map((c) => c.arm))];
  const allKinds = [...new Set(workloads.flatMap((w) => hogKindsOf(cells, w)))];
  const lines: string[] = [
    "# scx-slo noisy-neighbour benchmark",
    "",
    `- Machine: ${results.machine}`,
    `- Started: ${results.started}`,
    `- Report written: ${opts.generated ?? new Date().toISOString()}`,
    `- ${results.records.length} records; workloads ${workloads.join(", ")}; arms ${arms.join(", ")}; ${repsOf(results)} rep(s), arms interleaved`,
  ];
  if (allKinds.length > 1 || allKinds[0] !== DEFAULT_HOG_KIND) {
    lines.push(
      `- Hog kinds: ${allKinds.map((k) => (isHogKind(k) ? `${k} (\`stress-ng ${hogArgs(k, "N").args.join(" ")}\`)` : k)).join(", ")}; bg=0 ran once and serves every kind`,
    );
  }
  if (results.boots?.length) {
    lines.push(
      `- ${results.boots.length} VM boots: ${results.boots.map((b) => `${b.boot}: ${b.workloads.join(", ")}`).join("; ")} (every arm of a workload in one boot; compare arms within a workload only)`,
    );
  }
  lines.push(
    "",
    "Every figure is the median over repetitions. Latencies in microseconds. `batch` is the hogs'",
    "throughput (stress-ng bogo ops/s), `vs fair` that throughput over the untouched fair arm's at",
    "the same step, `critical CPU` the cores the critical cgroup used (its cpu.max after the slash,",
    "where one was set). Timing in the VM runs on an emulated CPU: compare arms within this run",
    "only, never against another run's figures.",
  );
  if (results.failures?.length) {
    lines.push(
      "",
      "## Failed arm runs",
      "",
      "These arm runs recorded nothing (or only their cells before the failure):",
      "",
      mdTable(
        ["rep", "workload", "arm", "error"],
        results.failures.map((f) => [
          String(f.rep),
          f.workload,
          f.arm,
          f.error.split("\n")[0]!.replace(/\|/g, "/").slice(0, 300),
        ]),
      ),
    );
  }
  const lost = results.records.filter((r) => r.sched_lost);
  if (lost.length) {
    lines.push(
      "",
      `**${lost.length} cell(s) lost their arm's scheduler during the window** (recorded, and in`,
      "the medians): " +
        lost.map((r) => `${r.workload}/${r.arm}/bg=${r.bg}/${r.hog_kind}/rep ${r.rep}`).join(", "),
    );
  }
  lines.push(...peerSection(results, arms));
  for (const w of workloads) {
    lines.push("", `## ${w}`);
    const kinds = hogKindsOf(cells, w);
    for (const kind of kinds) {
      const sub = kinds.length === 1 && kind === DEFAULT_HOG_KIND ? "" : ` (${kind} hogs)`;
      lines.push("", `### p99 by step (rows) and arm (columns)${sub}`, "");
      const grid = p99Grid(cells, w, kind);
      lines.push(mdTable(grid[0]!, grid.slice(1)));
      lines.push("", `### All figures${sub}`, "");
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
          cellRows(cells, w, kind),
        ),
      );
      const points = pointRows(cells, w, kind);
      if (points[0]!.length > 1 && points.length > 1) {
        lines.push(
          "",
          `### scx_slo against each arm, point by point${sub}`,
          "",
          "scx_slo's p99 over the arm's / scx_slo's batch throughput over the arm's, at each step:",
          "a p99 ratio below 1 is a shorter tail for scx_slo, a batch ratio below 1 less work done",
          "by its hogs.",
          "",
          mdTable(points[0]!, points.slice(1)),
        );
      }
      const growth = growthRows(cells, w, kind);
      if (growth.length && w === "chain") {
        const top = p99Growth(cells, w, kind)[0]!.top;
        lines.push(
          "",
          `### End-to-end p99 growth, bg=0 to bg=${top}${sub}`,
          "",
          "A request crosses every hop, so each hop's scheduling tail adds up end to end.",
          "",
          mdTable(["arm", "p99 bg=0", `p99 bg=${top}`, "growth"], growth),
        );
      }
      const checks = checkTargets(cells, w, kind);
      if (checks.length) {
        lines.push("", `### Targets${sub}`, "");
        lines.push(mdTable(["target", "ratio", "limit", "result", "detail"], targetRows(checks)));
      }
      const floor = floorReference(cells, w, kind);
      if (floor) {
        lines.push(
          "",
          `### Reference: the kernel's fastest wake-up${sub}`,
          "",
          `${RT_ARM} runs the critical workload as a SCHED_FIFO task under the fair class. The`,
          "real-time class runs before every other class and preempts at once, with the least work on",
          "the way, so its p99 is close to the floor this machine (and its emulator) puts under any arm.",
          `At bg=${floor.bg}: ${fmtUs(floor.rtP99)} us, ${fmtRatio(floor.rtVsFair)}x fair's p99; scx_slo's p99 is ${fmtRatio(floor.scxVsRt)}x it.`,
          "Not a target, and no way to run a pod: a FIFO task that spins keeps its CPU from everything",
          "else but the 5% real-time throttle.",
        );
      }
      if (opts.chartFile) {
        const title = kinds.length === 1 && kind === DEFAULT_HOG_KIND ? w : `${w}, ${kind} hogs`;
        lines.push("", `![p99 against background hogs, ${title}](${opts.chartFile(w, kind)})`);
      }
    }
    const cpuMax = cpuMaxRows(cells, w);
    if (cpuMax.length) {
      lines.push(
        "",
        "### Who honoured cpu.max",
        "",
        "The critical cgroup's CPU over the measured run against its cpu.max, at the step and hog",
        "kind where it used the most. With a sched_ext scheduler attached the kernel leaves cpu.max",
        `to the scheduler. Held: within ${Math.round((CPU_MAX_TOLERANCE - 1) * 100)}% of the limit (a window's edges can hold part of a period more).`,
        "",
        mdTable(
          ["arm", "cpu.max by design", "limit (cores)", "most used", "of limit", "at", "result"],
          cpuMax,
        ),
      );
    }
  }
  const summary = targetSummaryRows(cells, workloads);
  if (summary.length && workloads.length + allKinds.length > 2) {
    lines.push(
      "",
      "## Targets, every workload and hog kind",
      "",
      mdTable(["workload", "hogs", "target", "ratio", "limit", "result"], summary),
    );
  }
  return lines.join("\n") + "\n";
}
