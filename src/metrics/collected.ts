// Metrics whose values already exist elsewhere (the BPF maps' cumulative counters and bucket
// counts): a prom-client metric object that reads them at scrape time, so nothing is observed
// sample by sample and the exposition always matches the kernel's own numbers.

import type { Metric } from "prom-client";

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
