// Percentiles for benchmark records: nearest-rank over exact samples or a value->count map.
export interface Percentiles {
  p50_us: number;
  p99_us: number;
  p999_us: number;
  samples: number;
}

export function percentilesFromHistogram(counts: ReadonlyMap<number, number>): Percentiles {
  const keys = [...counts.keys()].sort((a, b) => a - b);
  const total = keys.reduce((s, k) => s + (counts.get(k) ?? 0), 0);
  const at = (q: number) => {
    if (total === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * total));
    let seen = 0;
    for (const k of keys) {
      seen += counts.get(k) ?? 0;
      if (seen >= rank) return k;
    }
    return keys[keys.length - 1] ?? NaN;
  };
  return { p50_us: at(0.5), p99_us: at(0.99), p999_us: at(0.999), samples: total };
}

export function percentilesFromSamples(samplesUs: readonly number[]): Percentiles {
  const counts = new Map<number, number>();
  for (const s of samplesUs) counts.set(s, (counts.get(s) ?? 0) + 1);
  return percentilesFromHistogram(counts);
}

/** Nearest-rank quantile q (0..1) of the samples; NaN for none. */
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
