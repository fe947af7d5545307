// The per-cgroup overload signal: deadline misses over a sliding window, from the cumulative
// runs/misses counters the BPF side keeps. A cgroup is overloaded when, within the window, misses
// reach minMisses, or exceed missRatio of its runs (once it has run at least minRuns times, so a
// single miss in an almost idle cgroup is not an alarm). Load shedders poll /overload and back off
// for retry_after_s.

import type { OverloadVerdict } from "../api/overload.js";

export interface OverloadThresholds {
  readonly windowS: number;
  /** Fraction of runs (0..1) that, exceeded, means overload. */
  readonly missRatio: number;
  /** This many misses in the window mean overload whatever the runs. */
  readonly minMisses: number;
  /** Runs needed in the window before the ratio rule applies. */
  readonly minRuns: number;
}

export const DEFAULT_OVERLOAD: OverloadThresholds = {
  windowS: 10,
  missRatio: 0.05,
  minMisses: 20,
  minRuns: 20,
};

export interface CounterSample {
  /** ms */
  readonly t: number;
  readonly runs: number;
  readonly misses: number;
}

export function isOverloaded(misses: number, runs: number, th: OverloadThresholds): boolean {
  if (misses <= 0) return false;
  if (misses >= th.minMisses) return true;
  return runs >= th.minRuns && misses > th.missRatio * runs;
}

/** Increase of a cumulative counter between two samples; a drop is a reset (entry re-created). */
function increase(prev: number, next: number): number {
  return next >= prev ? next - prev : next;
}

/**
 * Runs and misses counted in the window ending at the last sample. The baseline is the newest
 * sample at or before the window's start (or the oldest sample when history is shorter).
 */
export function windowCounts(
  samples: readonly CounterSample[],
  windowMs: number,
  from = baselineIndex(samples, windowMs),
): { runs: number; misses: number } {
  let runs = 0;
  let misses = 0;
  for (let i = from + 1; i < samples.length; i++) {
    runs += increase(samples[i - 1]!.runs, samples[i]!.runs);
    misses += increase(samples[i - 1]!.misses, samples[i]!.misses);
  }
  return { runs, misses };
}

function baselineIndex(samples: readonly CounterSample[], windowMs: number): number {
  const last = samples[samples.length - 1];
  if (last === undefined) return 0;
  const start = last.t - windowMs;
  let idx = 0;
  for (let i = 0; i < samples.length; i++) if (samples[i]!.t <= start) idx = i;
  return idx;
}

/** The verdict for one series of samples (oldest first). */
export function evaluateSamples(
  samples: readonly CounterSample[],
  th: OverloadThresholds,
): OverloadVerdict {
  const windowMs = th.windowS * 1000;
  const base = baselineIndex(samples, windowMs);
  const { runs, misses } = windowCounts(samples, windowMs, base);
  const overloaded = isOverloaded(misses, runs, th);
  let retry = 0;
  if (overloaded) {
    // Slide the baseline forward: once the window no longer reaches back to sample k, only what
    // came after k counts. The first k after which the rest is no longer overload sets the wait.
    const last = samples[samples.length - 1]!;
    retry = th.windowS;
    for (let k = base + 1; k < samples.length; k++) {
      const rest = windowCounts(samples, windowMs, k);
      if (!isOverloaded(rest.misses, rest.runs, th)) {
        retry = Math.max(1, Math.ceil((samples[k]!.t + windowMs - last.t) / 1000));
        break;
      }
    }
  }
  return { overloaded, misses, runs, window_s: th.windowS, retry_after_s: retry };
}

/** Keeps a short history of counter samples per key (a cgroup) and judges overload from it. */
export class OverloadTracker {
  private readonly series = new Map<string, CounterSample[]>();

  constructor(readonly thresholds: OverloadThresholds = DEFAULT_OVERLOAD) {}

  /** One sampling round: every key present now; keys not present are forgotten. */
  record(t: number, samples: Iterable<{ key: string; runs: number; misses: number }>): void {
    const windowMs = this.thresholds.windowS * 1000;
    const seen = new Set<string>();
    for (const s of samples) {
      seen.add(s.key);
      const list = this.series.get(s.key) ?? [];
      list.push({ t, runs: s.runs, misses: s.misses });
      // Keep one sample at or before the window's start as the baseline.
      while (list.length > 2 && list[1]!.t <= t - windowMs) list.shift();
      this.series.set(s.key, list);
    }
    for (const k of [...this.series.keys()]) if (!seen.has(k)) this.series.delete(k);
  }

  has(key: string): boolean {
    return this.series.has(key);
  }

  evaluate(key: string): OverloadVerdict {
    return evaluateSamples(this.series.get(key) ?? [], this.thresholds);
  }

  /** Several cgroups as one workload (a pod): counts summed, overloaded if the sum is. */
  evaluateAll(keys: readonly string[]): OverloadVerdict {
    let runs = 0;
    let misses = 0;
    let retry = 0;
    for (const k of keys) {
      const v = this.evaluate(k);
      runs += v.runs;
      misses += v.misses;
      retry = Math.max(retry, v.retry_after_s);
    }
    const overloaded = isOverloaded(misses, runs, this.thresholds);
    return {
      overloaded,
      misses,
      runs,
      window_s: this.thresholds.windowS,
      retry_after_s: overloaded ? (retry > 0 ? retry : this.thresholds.windowS) : 0,
    };
  }
}
