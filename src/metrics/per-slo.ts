// The per-SLO-cgroup families of /metrics, written as Prometheus text here rather than through
// prom-client: they grow with the SLO cgroups (up to the map's 4096, each with a wait histogram,
// about 5 KiB of text per cgroup), so they are rendered a slice of cgroups at a time, yielding to
// the event loop between slices, without an object per sample, and straight into byte chunks
// (util/text-chunks.ts), so that what stays on V8's heap during a render does not grow with the
// cgroups. Health probes and /overload stay answered while a large exposition is rendered.

import { HIST_BUCKETS, HIST_SUBS, bucketUpperNs } from "../sched/histogram.js";
import type { CgroupStats } from "../sched/loader.js";
import type { CpuThrottling } from "../sched/observer.js";
import type { TextChunks } from "../util/text-chunks.js";

/** One SLO cgroup as the metrics see it. */
export interface SloSample {
  readonly cgroup: string;
  readonly namespace: string;
  readonly pod: string;
  /** The budget in the SLO map. */
  readonly budgetNs: number;
  readonly importance: number;
  /** The measured stats; null until a task of the cgroup has run (exported as zeros). */
  readonly stats: CgroupStats | null;
  readonly overloaded: boolean;
  /** The cgroups that held the CPU longest while this one waited (the observer's view). */
  readonly neighbours?: readonly { readonly cgroup: string; readonly waitNs: number }[];
  /** Its own cpu.max throttling; null or absent without a cpu controller there. */
  readonly throttling?: CpuThrottling | null;
}

export const NS_PER_S = 1e9;

/** Cgroups rendered between two yields to the event loop. */
const SLICE = 128;

/**
 * The BPF buckets whose upper bounds are exported as `le`: bucket 0 and two per octave (the half
 * and the whole), so every exported count is exact and a p99 read from Prometheus is within 50%
 * of a bound. The full resolution (four per octave) stays in /status and the in-kernel figures.
 */
export const EXPORTED_BUCKETS: readonly number[] = [...Array(HIST_BUCKETS - 1).keys()].filter(
  (i) => i === 0 || (i - 1) % HIST_SUBS === 1 || (i - 1) % HIST_SUBS === HIST_SUBS - 1,
);

/** The `le` values of the exported buckets, in seconds, ascending. */
export function waitBucketBoundsSeconds(): number[] {
  return EXPORTED_BUCKETS.map((i) => bucketUpperNs(i) / NS_PER_S);
}

/** Each exported bucket's `le` label as text, made once rather than once per line. */
const LE_LABELS: readonly string[] = waitBucketBoundsSeconds().map((b) => `,le="${b}"} `);

/** A label value as the text format wants it: backslash, double quote and newline escaped. */
function esc(v: string): string {
  if (!/[\\"\n]/.test(v)) return v;
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function labelText(s: SloSample): string {
  return `cgroup="${esc(s.cgroup)}",namespace="${esc(s.namespace)}",pod="${esc(s.pod)}"`;
}

/** A number as the text format wants it. */
function num(v: number): string {
  return Number.isFinite(v) ? String(v) : v > 0 ? "+Inf" : v < 0 ? "-Inf" : "NaN";
}

/**
 * One cgroup's wait histogram lines: cumulative `le` buckets at the exported bounds (the BPF bound
 * is exclusive, Prometheus' inclusive: they differ only for a wait of exactly that many
 * nanoseconds), `+Inf`, `_sum` and `_count`. Runs and buckets are separate counters read without
 * a lock, so a scrape can catch them a few counts apart; buckets are capped at runs so the series
 * stays monotonic and `+Inf` == `_count`.
 */
export function waitHistogramLines(
  name: string,
  labels: string,
  hist: readonly number[],
  runs: number,
  waitSumNs: number,
): string {
  let out = "";
  let cumulative = 0;
  let next = 0;
  for (let i = 0; next < EXPORTED_BUCKETS.length; i++) {
    cumulative += hist[i] ?? 0;
    if (i !== EXPORTED_BUCKETS[next]) continue;
    out += `${name}_bucket{${labels}${LE_LABELS[next]}${Math.min(cumulative, runs)}\n`;
    next++;
  }
  out += `${name}_bucket{${labels},le="+Inf"} ${runs}\n`;
  out += `${name}_sum{${labels}} ${num(waitSumNs / NS_PER_S)}\n`;
  out += `${name}_count{${labels}} ${runs}\n`;
  return out;
}

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram";
  /** The lines for one cgroup; null leaves it out of this family. */
  readonly lines: (s: SloSample, labels: string, name: string) => string | null;
}

const value =
  (f: (s: SloSample) => number | null) =>
  (s: SloSample, labels: string, name: string): string | null => {
    const v = f(s);
    return v === null ? null : `${name}{${labels}} ${num(v)}\n`;
  };

const FAMILIES: readonly Family[] = [
  {
    name: "wait_seconds",
    help: "Run-queue wait of the SLO cgroup's tasks (runnable to running), measured in the kernel",
    type: "histogram",
    lines: (s, labels, name) =>
      waitHistogramLines(
        name,
        labels,
        s.stats?.hist ?? [],
        s.stats?.runs ?? 0,
        s.stats?.waitSumNs ?? 0,
      ),
  },
  {
    name: "runs_total",
    help: "Times a task of the SLO cgroup got a CPU",
    type: "counter",
    lines: value((s) => s.stats?.runs ?? 0),
  },
  {
    name: "misses_total",
    help: "Run-queue waits longer than the SLO cgroup's budget",
    type: "counter",
    lines: value((s) => s.stats?.misses ?? 0),
  },
  {
    name: "wait_max_seconds",
    help: "Longest run-queue wait seen in the SLO cgroup",
    type: "gauge",
    lines: value((s) => (s.stats?.waitMaxNs ?? 0) / NS_PER_S),
  },
  {
    name: "budget_seconds",
    help: "Latency budget of the SLO cgroup in the SLO map",
    type: "gauge",
    lines: value((s) => s.budgetNs / NS_PER_S),
  },
  {
    name: "budget_in_force_seconds",
    help: "Budget the scheduler applied at the cgroup's last measured run (after the BPF-side clamp)",
    type: "gauge",
    lines: value((s) => (s.stats && s.stats.budgetNs > 0 ? s.stats.budgetNs / NS_PER_S : null)),
  },
  {
    name: "importance",
    help: "Importance of the SLO cgroup (1..100)",
    type: "gauge",
    lines: value((s) => s.importance),
  },
  {
    name: "neighbour_wait_seconds_total",
    help: "Wait of the SLO cgroup's tasks while another cgroup held the CPU, for the five cgroups that held it longest (neighbour: its path, or idle/unseen); the observer measures it",
    type: "counter",
    lines: (s, labels, name) =>
      s.neighbours?.length
        ? s.neighbours
            .map(
              (n) =>
                `${name}{${labels},neighbour="${esc(n.cgroup)}"} ${num(n.waitNs / NS_PER_S)}\n`,
            )
            .join("")
        : null,
  },
  {
    name: "throttled_seconds_total",
    help: "Time the SLO cgroup's own cpu.max held it back (cpu.stat): waits a neighbour is not to blame for",
    type: "counter",
    lines: value((s) => (s.throttling ? s.throttling.throttledNs / NS_PER_S : null)),
  },
  {
    name: "throttled_periods_total",
    help: "cpu.max periods in which the SLO cgroup used up its quota (cpu.stat nr_throttled)",
    type: "counter",
    lines: value((s) => s.throttling?.throttledPeriods ?? null),
  },
  {
    name: "overloaded",
    help: "1 while the SLO cgroup misses its budget too often in the sliding window (see /overload)",
    type: "gauge",
    lines: value((s) => (s.overloaded ? 1 : 0)),
  },
];

/** The names of the per-SLO families, prefixed. */
export function perSloFamilyNames(prefix: string): string[] {
  return FAMILIES.map((f) => prefix + f.name);
}

const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

/** Every per-SLO family as exposition text into out, yielding every SLICE cgroups. */
export async function renderPerSlo(
  slos: readonly SloSample[],
  prefix: string,
  out: TextChunks,
): Promise<void> {
  let sinceYield = 0;
  for (const f of FAMILIES) {
    const name = prefix + f.name;
    out.write(`# HELP ${name} ${f.help}\n# TYPE ${name} ${f.type}\n`);
    for (const s of slos) {
      // Made again for each family rather than kept for the whole render: short-lived, it is
      // collected young; a list of them all would be promoted to the old generation each render.
      const text = f.lines(s, labelText(s), name);
      if (text !== null) out.write(text);
      if (++sinceYield >= SLICE) {
        sinceYield = 0;
        await yieldToLoop();
      }
    }
  }
}
