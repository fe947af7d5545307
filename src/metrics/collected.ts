// Metrics whose values already exist elsewhere (the BPF maps' cumulative counters and bucket
// counts): a prom-client metric object that reads them at scrape time, so nothing is observed
// sample by sample and the exposition always matches the kernel's own numbers.

import type { Metric } from "prom-client";
import { bucketUpperNs, HIST_BUCKETS } from "../sched/histogram.js";

export type Labels = Readonly<Record<string, string | number>>;

export interface CollectedValue {
  readonly value: number;
  readonly labels: Labels;
  /** For histogram series: name_bucket, name_sum, name_count. */
  readonly metricName?: string;
}

export type CollectedType = "counter" | "gauge" | "histogram";

/** A metric object prom-client's Registry can serialize; values come from `collect` per scrape. */
export class CollectedMetric {
  readonly aggregator = "sum";

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: CollectedType,
    private readonly collect: () => readonly CollectedValue[],
  ) {}

  async get(): Promise<{
    name: string;
    help: string;
    type: CollectedType;
    aggregator: string;
    values: CollectedValue[];
  }> {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: [...this.collect()],
    };
  }

  reset(): void {}

  /** The Registry's parameter type lists only its own metric classes; it reads name and get(). */
  asMetric(): Metric {
    return this as unknown as Metric;
  }
}

export const NS_PER_S = 1e9;

/** Upper bound of each finite BPF bucket in seconds: the `le` values, ascending. */
export function waitBucketBoundsSeconds(): number[] {
  const out: number[] = [];
  for (let i = 0; i < HIST_BUCKETS - 1; i++) out.push(bucketUpperNs(i) / NS_PER_S);
  return out;
}

/**
 * One cgroup's run-queue wait histogram as Prometheus series: a cumulative `le` bucket at every BPF
 * bucket's upper bound (the BPF bound is exclusive, Prometheus' inclusive: they differ only for a
 * wait of exactly that many nanoseconds), `+Inf`, `_sum` from wait_sum_ns and `_count` from runs.
 * Runs and buckets are separate atomic counters read without a lock, so a scrape can catch them a
 * few counts apart; buckets are capped at runs so the series stays monotonic and `+Inf` == `_count`.
 */
export function waitHistogramValues(
  name: string,
  labels: Labels,
  hist: readonly number[],
  runs: number,
  waitSumNs: number,
): CollectedValue[] {
  const out: CollectedValue[] = [];
  const bounds = waitBucketBoundsSeconds();
  let cumulative = 0;
  for (let i = 0; i < bounds.length; i++) {
    cumulative += hist[i] ?? 0;
    out.push({
      metricName: `${name}_bucket`,
      labels: { ...labels, le: bounds[i]! },
      value: Math.min(cumulative, runs),
    });
  }
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: "+Inf" }, value: runs });
  out.push({ metricName: `${name}_sum`, labels, value: waitSumNs / NS_PER_S });
  out.push({ metricName: `${name}_count`, labels, value: runs });
  return out;
}
