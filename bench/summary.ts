// Pure: raw records -> one median-over-reps cell per (workload, hog kind, arm, step), and the
// issues' targets checked on those cells. Used by the report, the chart and run.ts's terminal
// table. A ladder of one hog kind is its bg=0 cells (no hogs, shared by every kind) and that
// kind's cells; functions that take a kind default to int64, what records without one ran.
import { ALL_ARMS, RT_ARM } from "./arms.js";
import { PEER_ARMS } from "./peer-arms.js";
import type { BenchRecord, ResultsFile } from "./results.js";
import { median } from "./stats.js";
import { DEFAULT_HOG_KIND, HOG_KINDS, NO_HOGS } from "./workloads/stress.js";

export interface Cell {
  workload: string;
  arm: string;
  bg: number;
  /** NO_HOGS at bg=0. */
  hog_kind: string;
  reps: number;
  p50_us: number;
  p99_us: number;
  p999_us: number;
  batch_ops_per_s: number | null;
  /** CPU the critical cgroup used, in cores (usage over the measured run); null when unknown. */
  critical_cores: number | null;
  /** The critical cgroup's cpu.max as cores (pgbench), null when unlimited or unknown. */
  critical_limit_cores: number | null;
}

export const SCX_ARM = "scx_slo";
/** The control arm: the same scheduler with no agent beside it. */
export const LOADER_ONLY_ARM = "scx_slo-loader";
export const BASE_ARM = "fair";
export const TUNED_ARMS = ["fair-weight", "fair-idle"];
/** The tuned fair arm the peers' comparison includes beside them. */
export const WEIGHT_ARM = "fair-weight";
/** Use of cpu.max counted as within it: the window's edges can hold part of a period more. */
export const CPU_MAX_TOLERANCE = 1.05;
/** scx_slo's p99 growth from bg=0 to the top step, per workload (the chain's is stricter). */
export const GROWTH_LIMIT: Readonly<Record<string, number>> = { chain: 1.2 };
const DEFAULT_GROWTH_LIMIT = 1.5;

/** The hog kind a record's cell belongs to: none at bg=0, int64 for records without one. */
export function kindOf(r: { bg: number; hog_kind?: unknown }): string {
  if (r.bg === 0) return NO_HOGS;
  return typeof r.hog_kind === "string" && r.hog_kind !== NO_HOGS ? r.hog_kind : DEFAULT_HOG_KIND;
}

/** A cell of the ladder of `kind`: its own kind's, or bg=0's. */
function inLadder(c: Cell, workload: string, kind: string): boolean {
  return c.workload === workload && (c.hog_kind === NO_HOGS || c.hog_kind === kind);
}

/** The hog kinds a workload ran, in HOG_KINDS order (unknown after); int64 when only bg=0 ran. */
export function hogKindsOf(cells: readonly Cell[], workload: string): string[] {
  const kinds = new Set(
    cells.filter((c) => c.workload === workload && c.hog_kind !== NO_HOGS).map((c) => c.hog_kind),
  );
  if (!kinds.size) return [DEFAULT_HOG_KIND];
  const rank = (k: string) => {
    const i = (HOG_KINDS as readonly string[]).indexOf(k);
    return i < 0 ? HOG_KINDS.length : i;
  };
  return [...kinds].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

export function isPeer(arm: string): boolean {
  return (PEER_ARMS as readonly string[]).includes(arm);
}

/** Arms in the order the project lists them, unknown ones after, alphabetically. */
export function armOrder(arms: Iterable<string>): string[] {
  const rank = (a: string) => {
    const i = (ALL_ARMS as readonly string[]).indexOf(a);
    return i < 0 ? ALL_ARMS.length : i;
  };
  return [...new Set(arms)].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

export function workloadsOf(results: ResultsFile): string[] {
  return [...new Set(results.records.map((r) => r.workload))];
}

export function stepsOf(
  cells: readonly Cell[],
  workload: string,
  kind: string = DEFAULT_HOG_KIND,
): number[] {
  return [...new Set(cells.filter((c) => inLadder(c, workload, kind)).map((c) => c.bg))].sort(
    (a, b) => a - b,
  );
}

export function armsOf(
  cells: readonly Cell[],
  workload: string,
  kind: string = DEFAULT_HOG_KIND,
): string[] {
  return armOrder(cells.filter((c) => inLadder(c, workload, kind)).map((c) => c.arm));
}

/** "50000 100000" -> 0.5 cores; "max ..." or anything else -> null. */
export function cpuMaxCores(value: unknown): number | null {
  if (typeof value !== "string") return null;
  const m = /^(\d+)\s+(\d+)$/.exec(value.trim());
  return m ? Number(m[1]) / Number(m[2]) : null;
}

function cores(r: BenchRecord): number | null {
  // A workload that measures its own run (pgbench) knows the busy part of the window better.
  if (typeof r.critical_run_cpu_usec === "number" && typeof r.run_s === "number" && r.run_s > 0) {
    return r.critical_run_cpu_usec / (r.run_s * 1e6);
  }
  const window = typeof r.window_s === "number" ? r.window_s : null;
  if (typeof r.critical_cpu_usec !== "number" || !window) return null;
  return r.critical_cpu_usec / (window * 1e6);
}

function medianOrNull(xs: readonly (number | null | undefined)[]): number | null {
  const nums = xs.filter((x): x is number => typeof x === "number" && Number.isFinite(x));
  return nums.length ? median(nums) : null;
}

export function summarize(results: ResultsFile): Cell[] {
  const groups = new Map<string, BenchRecord[]>();
  for (const r of results.records) {
    const key = JSON.stringify([r.workload, kindOf(r), r.arm, r.bg]);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const cells: Cell[] = [];
  for (const rs of groups.values()) {
    const first = rs[0]!;
    cells.push({
      workload: first.workload,
      arm: first.arm,
      bg: first.bg,
      hog_kind: kindOf(first),
      reps: rs.length,
      p50_us: median(rs.map((r) => r.p50_us)),
      p99_us: median(rs.map((r) => r.p99_us)),
      p999_us: median(rs.map((r) => r.p999_us)),
      batch_ops_per_s: medianOrNull(rs.map((r) => r.batch_ops_per_s)),
      critical_cores: medianOrNull(rs.map(cores)),
      critical_limit_cores: cpuMaxCores(first.critical_cpu_max),
    });
  }
  const arms = armOrder(cells.map((c) => c.arm));
  const kinds = [NO_HOGS, ...HOG_KINDS] as string[];
  const kindRank = (k: string) => (kinds.includes(k) ? kinds.indexOf(k) : kinds.length);
  return cells.sort(
    (a, b) =>
      a.workload.localeCompare(b.workload) ||
      kindRank(a.hog_kind) - kindRank(b.hog_kind) ||
      a.hog_kind.localeCompare(b.hog_kind) ||
      a.bg - b.bg ||
      arms.indexOf(a.arm) - arms.indexOf(b.arm),
  );
}

export function findCell(
  cells: readonly Cell[],
  workload: string,
  arm: string,
  bg: number,
  kind: string = DEFAULT_HOG_KIND,
): Cell | undefined {
  const k = bg === 0 ? NO_HOGS : kind;
  return cells.find(
    (c) => c.workload === workload && c.arm === arm && c.bg === bg && c.hog_kind === k,
  );
}

/** Batch throughput relative to the untuned fair arm at the same step (null without one). */
export function batchVsFair(cells: readonly Cell[], c: Cell): number | null {
  const base = findCell(cells, c.workload, BASE_ARM, c.bg, c.hog_kind)?.batch_ops_per_s;
  if (c.batch_ops_per_s === null || !base) return null;
  return c.batch_ops_per_s / base;
}

export type Verdict = "PASS" | "MISS" | "n/a";

export interface TargetCheck {
  name: string;
  /** The measured ratio, null when a cell it needs is missing. */
  ratio: number | null;
  /** "<=" and "<": ratio must not exceed limit; ">=": must reach it. */
  cmp: "<=" | "<" | ">=";
  limit: number;
  verdict: Verdict;
  /** How the ratio came about, and by how much it missed. */
  detail: string;
}

export function judge(ratio: number | null, cmp: TargetCheck["cmp"], limit: number): Verdict {
  if (ratio === null || !Number.isFinite(ratio)) return "n/a";
  const ok = cmp === "<=" ? ratio <= limit : cmp === "<" ? ratio < limit : ratio >= limit;
  return ok ? "PASS" : "MISS";
}

/** "missed by 54%": how far past the limit, as a share of the limit. */
export function missBy(ratio: number, cmp: TargetCheck["cmp"], limit: number): string {
  const pct = cmp === ">=" ? (1 - ratio / limit) * 100 : (ratio / limit - 1) * 100;
  return `missed by ${pct < 0.05 ? "<0.1" : pct.toFixed(1)}%`;
}

function check(
  name: string,
  ratio: number | null,
  cmp: TargetCheck["cmp"],
  limit: number,
  how: string,
): TargetCheck {
  const verdict = judge(ratio, cmp, limit);
  const detail =
    verdict === "MISS" && ratio !== null ? `${how}; ${missBy(ratio, cmp, limit)}` : how;
  return { name, ratio, cmp, limit, verdict, detail };
}

const us = (x: number | undefined) => (x === undefined ? "missing" : `${Math.round(x)} us`);

function ratioOf(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || b === 0) return null;
  return a / b;
}

/** The issues' targets for one workload and hog kind, at the highest step scx_slo ran. */
export function checkTargets(
  cells: readonly Cell[],
  workload: string,
  kind: string = DEFAULT_HOG_KIND,
): TargetCheck[] {
  const scxSteps = cells.filter((c) => inLadder(c, workload, kind) && c.arm === SCX_ARM);
  if (scxSteps.length === 0) return [];
  const top = Math.max(...scxSteps.map((c) => c.bg));
  const at = (arm: string, bg: number) => findCell(cells, workload, arm, bg, kind);
  const scxTop = at(SCX_ARM, top);
  const scxIdle = at(SCX_ARM, 0);
  const fairTop = at(BASE_ARM, top);
  const growthLimit = GROWTH_LIMIT[workload] ?? DEFAULT_GROWTH_LIMIT;
  const out: TargetCheck[] = [
    check(
      `scx_slo p99 at bg=${top} <= ${growthLimit}x its own idle (bg=0) p99`,
      ratioOf(scxTop?.p99_us, scxIdle?.p99_us),
      "<=",
      growthLimit,
      `${us(scxTop?.p99_us)} vs ${us(scxIdle?.p99_us)}`,
    ),
    check(
      `scx_slo p99 at bg=${top} <= 0.2x fair's`,
      ratioOf(scxTop?.p99_us, fairTop?.p99_us),
      "<=",
      0.2,
      `${us(scxTop?.p99_us)} vs ${us(fairTop?.p99_us)}`,
    ),
  ];
  for (const arm of TUNED_ARMS) {
    const tuned = at(arm, top);
    if (!tuned) continue;
    out.push(
      check(
        `scx_slo p99 at bg=${top} better than ${arm}`,
        ratioOf(scxTop?.p99_us, tuned.p99_us),
        "<",
        1,
        `${us(scxTop?.p99_us)} vs ${us(tuned.p99_us)}`,
      ),
    );
  }
  // The peers: scx_slo's p99 at the top step no higher than any peer's.
  for (const arm of armsOf(cells, workload, kind).filter(isPeer)) {
    const peer = at(arm, top);
    if (!peer) continue;
    out.push(
      check(
        `scx_slo p99 at bg=${top} <= ${arm}'s`,
        ratioOf(scxTop?.p99_us, peer.p99_us),
        "<=",
        1,
        `${us(scxTop?.p99_us)} vs ${us(peer.p99_us)}`,
      ),
    );
  }
  // The agent's own cost: the same scheduler with and without it, at every step.
  let agentWorst: { ratio: number; bg: number } | null = null;
  for (const c of scxSteps) {
    const r = ratioOf(c.p99_us, at(LOADER_ONLY_ARM, c.bg)?.p99_us);
    if (r !== null && (agentWorst === null || r > agentWorst.ratio))
      agentWorst = { ratio: r, bg: c.bg };
  }
  if (agentWorst !== null) {
    out.push(
      check(
        `scx_slo with its agent: p99 <= 1.1x ${LOADER_ONLY_ARM}'s (worst step)`,
        agentWorst.ratio,
        "<=",
        1.1,
        `worst at bg=${agentWorst.bg}`,
      ),
    );
  }
  // Throughput at every step with hogs: the worst one decides.
  let worst: { ratio: number; bg: number } | null = null;
  for (const c of scxSteps) {
    const r = c.bg > 0 ? batchVsFair(cells, c) : null;
    if (r !== null && (worst === null || r < worst.ratio)) worst = { ratio: r, bg: c.bg };
  }
  out.push(
    check(
      "scx_slo batch throughput >= 0.9x fair (worst step)",
      worst?.ratio ?? null,
      ">=",
      0.9,
      worst ? `worst at bg=${worst.bg}` : "no step with hogs under both arms",
    ),
  );
  // Against the best peer at each step with hogs: the worst step decides.
  const peers = armsOf(cells, workload, kind).filter(isPeer);
  if (peers.length) {
    let worstPeer: { ratio: number; bg: number; arm: string } | null = null;
    for (const c of scxSteps) {
      if (c.bg === 0 || c.batch_ops_per_s === null) continue;
      let best: { ops: number; arm: string } | null = null;
      for (const arm of peers) {
        const ops = at(arm, c.bg)?.batch_ops_per_s;
        if (typeof ops === "number" && (best === null || ops > best.ops)) best = { ops, arm };
      }
      const r = best ? ratioOf(c.batch_ops_per_s, best.ops) : null;
      if (r !== null && best && (worstPeer === null || r < worstPeer.ratio)) {
        worstPeer = { ratio: r, bg: c.bg, arm: best.arm };
      }
    }
    out.push(
      check(
        "scx_slo batch throughput >= 0.9x the best peer's (worst step)",
        worstPeer?.ratio ?? null,
        ">=",
        0.9,
        worstPeer
          ? `worst at bg=${worstPeer.bg}, best peer there ${worstPeer.arm}`
          : "no step with hogs under scx_slo and a peer",
      ),
    );
  }
  // cpu.max: the kernel does not enforce it while a sched_ext scheduler is attached.
  const limited = scxSteps.filter((c) => c.critical_limit_cores !== null);
  if (limited.length) {
    let worstUse: { ratio: number; c: Cell } | null = null;
    for (const c of limited) {
      const r = ratioOf(c.critical_cores, c.critical_limit_cores);
      if (r !== null && (worstUse === null || r > worstUse.ratio)) worstUse = { ratio: r, c };
    }
    out.push(
      check(
        "scx_slo critical CPU within its cpu.max (worst step)",
        worstUse?.ratio ?? null,
        "<=",
        1,
        worstUse
          ? `${worstUse.c.critical_cores!.toFixed(3)} of ${worstUse.c.critical_limit_cores!.toFixed(3)} cores at bg=${worstUse.c.bg}`
          : "no CPU figures",
      ),
    );
  }
  return out;
}

export interface FloorReference {
  bg: number;
  rtP99: number;
  /** The reference arm's p99 over fair's at the same step: the best ratio the emulator allows. */
  rtVsFair: number | null;
  /** scx_slo's p99 over the reference arm's. */
  scxVsRt: number | null;
}

/** Where the SCHED_FIFO reference arm ran: its p99 at scx_slo's top step, against fair and scx_slo. */
export function floorReference(
  cells: readonly Cell[],
  workload: string,
  kind: string = DEFAULT_HOG_KIND,
): FloorReference | null {
  const rt = cells.filter((c) => inLadder(c, workload, kind) && c.arm === RT_ARM);
  if (!rt.length) return null;
  const top = Math.max(...rt.map((c) => c.bg));
  const rtTop = findCell(cells, workload, RT_ARM, top, kind)!;
  return {
    bg: top,
    rtP99: rtTop.p99_us,
    rtVsFair: ratioOf(rtTop.p99_us, findCell(cells, workload, BASE_ARM, top, kind)?.p99_us),
    scxVsRt: ratioOf(findCell(cells, workload, SCX_ARM, top, kind)?.p99_us, rtTop.p99_us),
  };
}

/** scx_slo against another arm at one step: ratios of p99 and of batch throughput. */
export interface PointRatio {
  bg: number;
  arm: string;
  /** scx_slo's p99 over the arm's: below 1, scx_slo's tail is shorter. */
  p99: number | null;
  /** scx_slo's batch throughput over the arm's: below 1, scx_slo's hogs got less done. */
  batch: number | null;
}

/** The arms scx_slo is compared with point by point: the peers, then the tuned fair class. */
export function rivalsOf(cells: readonly Cell[], workload: string, kind: string): string[] {
  const arms = armsOf(cells, workload, kind);
  if (!arms.includes(SCX_ARM)) return [];
  return [...arms.filter(isPeer), ...arms.filter((a) => a === WEIGHT_ARM || a === BASE_ARM)];
}

export function pointByPoint(
  cells: readonly Cell[],
  workload: string,
  kind: string = DEFAULT_HOG_KIND,
): PointRatio[] {
  const out: PointRatio[] = [];
  for (const bg of stepsOf(cells, workload, kind)) {
    const scx = findCell(cells, workload, SCX_ARM, bg, kind);
    if (!scx) continue;
    for (const arm of rivalsOf(cells, workload, kind)) {
      const c = findCell(cells, workload, arm, bg, kind);
      if (!c) continue;
      out.push({
        bg,
        arm,
        p99: ratioOf(scx.p99_us, c.p99_us),
        batch: ratioOf(scx.batch_ops_per_s, c.batch_ops_per_s),
      });
    }
  }
  return out;
}

/** Each arm's p99 at the top step over its own at bg=0 (the chain's end-to-end growth). */
export function p99Growth(
  cells: readonly Cell[],
  workload: string,
  kind: string = DEFAULT_HOG_KIND,
): {
  arm: string;
  top: number;
  idleP99: number | null;
  topP99: number | null;
  growth: number | null;
}[] {
  const steps = stepsOf(cells, workload, kind);
  if (steps.length < 2 || steps[0] !== 0) return [];
  const top = steps[steps.length - 1]!;
  return armsOf(cells, workload, kind).map((arm) => {
    const idle = findCell(cells, workload, arm, 0, kind)?.p99_us ?? null;
    const high = findCell(cells, workload, arm, top, kind)?.p99_us ?? null;
    return { arm, top, idleP99: idle, topP99: high, growth: ratioOf(high, idle) };
  });
}

export interface CpuMaxUse {
  arm: string;
  limit: number;
  /** The most the critical cgroup used over its cpu.max, over every step and hog kind. */
  worst: number | null;
  at: { bg: number; hog_kind: string } | null;
  held: boolean | null;
}

/** Who kept the critical cgroup within its cpu.max, arm by arm (workloads that set one). */
export function cpuMaxByArm(cells: readonly Cell[], workload: string): CpuMaxUse[] {
  const limited = cells.filter((c) => c.workload === workload && c.critical_limit_cores !== null);
  return armOrder(limited.map((c) => c.arm)).map((arm) => {
    let worst: { r: number; c: Cell } | null = null;
    for (const c of limited.filter((x) => x.arm === arm)) {
      const r = ratioOf(c.critical_cores, c.critical_limit_cores);
      if (r !== null && (worst === null || r > worst.r)) worst = { r, c };
    }
    return {
      arm,
      limit: limited.find((c) => c.arm === arm)!.critical_limit_cores!,
      worst: worst?.r ?? null,
      at: worst ? { bg: worst.c.bg, hog_kind: worst.c.hog_kind } : null,
      held: worst ? worst.r <= CPU_MAX_TOLERANCE : null,
    };
  });
}
