// Periodic wake-ups under SCHED_OTHER (the class sched_ext replaces): cyclictest from rt-tests,
// with its own microsecond histogram, so percentiles come from every sample. SCHED_FIFO only for
// the fair-rt reference arm.
import { spawnInCgroup } from "../../src/cgroup/spawn.js";
import { waitFor } from "../../src/util/process.js";
import { percentilesFromHistogram, type Percentiles } from "../stats.js";

export interface CyclictestOptions {
  cgroup: string;
  durationS: number;
  intervalUs?: number;
  /** SCHED_FIFO at this priority (cyclictest -p); absent: SCHED_OTHER. */
  realtimePriority?: number;
}

const MAX_US = 100_000;

export async function runCyclictest(opts: CyclictestOptions): Promise<Percentiles> {
  const child = spawnInCgroup(opts.cgroup, [
    "cyclictest",
    "-q",
    "-m",
    `-D${opts.durationS}`,
    `-i${opts.intervalUs ?? 1000}`,
    `-h${MAX_US}`,
    ...(opts.realtimePriority ? [`-p${opts.realtimePriority}`] : []),
  ]);
  const r = await waitFor(child);
  if (r.code !== 0) throw new Error(`cyclictest failed (${r.code}): ${r.stderr.trim()}`);
  return parseCyclictestHistogram(r.stdout);
}

/**
 * cyclictest -h output: "<us> <count>" rows, "# Histogram Overflows: N" for > MAX_US. Several
 * outputs joined together are pooled (counts add up), so runs can be compared as one sample.
 */
export function parseCyclictestHistogram(text: string): Percentiles {
  const counts = new Map<number, number>();
  let overflows = 0;
  for (const line of text.split("\n")) {
    const row = /^(\d+)\s+(\d+)/.exec(line);
    if (row) {
      const n = Number(row[2]);
      if (n > 0) counts.set(Number(row[1]), (counts.get(Number(row[1])) ?? 0) + n);
      continue;
    }
    const of = /^# Histogram Overflows:\s+(\d+)/.exec(line);
    if (of) overflows += Number(of[1]);
  }
  if (overflows > 0) counts.set(MAX_US, (counts.get(MAX_US) ?? 0) + overflows);
  return percentilesFromHistogram(counts);
}
