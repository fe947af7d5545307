// The BPF wait histogram's bucket layout (HIST_* in bpf/scx_slo.h, policy_hist_* in
// bpf/policy.h), and percentiles from it. test/unit/policy-native.test.ts checks these bounds
// against the C implementation.
export const HIST_MIN_SHIFT = 10;
export const HIST_SUB_BITS = 2;
export const HIST_SUBS = 1 << HIST_SUB_BITS;
export const HIST_OCTAVES = 24;
export const HIST_BUCKETS = 1 + HIST_OCTAVES * HIST_SUBS + 1;

/** Exclusive upper bound of bucket idx in ns; Infinity for the overflow bucket. */
export function bucketUpperNs(idx: number): number {
  if (idx === 0) return 2 ** HIST_MIN_SHIFT;
  if (idx >= HIST_BUCKETS - 1) return Infinity;
  const octave = Math.floor((idx - 1) / HIST_SUBS);
  const sub = (idx - 1) % HIST_SUBS;
  return (HIST_SUBS + sub + 1) * 2 ** (HIST_MIN_SHIFT + octave - HIST_SUB_BITS);
}

/** Upper bound (ns) of the bucket holding quantile q (0..1): a conservative percentile. */
export function histogramQuantileNs(hist: readonly number[], q: number): number {
  const total = hist.reduce((a, b) => a + b, 0);
  if (total === 0) return NaN;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < hist.length; i++) {
    seen += hist[i] ?? 0;
    if (seen >= rank) return bucketUpperNs(i);
  }
  return Infinity;
}

/** Bucket-wise a - b (cumulative counters sampled twice). */
export function histogramDelta(a: readonly number[], b: readonly number[]): number[] {
  return a.map((v, i) => v - (b[i] ?? 0));
}
