// The overload window: counts over the sliding window, thresholds, counter resets, retry-after.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  DEFAULT_OVERLOAD,
  evaluateSamples,
  isOverloaded,
  OverloadTracker,
  windowCounts,
  type CounterSample,
} from "../../src/metrics/overload.js";

const th = DEFAULT_OVERLOAD; // 10 s, 5 %, 20 misses, 20 runs

test("thresholds: >= 20 misses, or more than 5 % of at least 20 runs", () => {
  assert.equal(isOverloaded(20, 10_000, th), true);
  assert.equal(isOverloaded(19, 10_000, th), false);
  assert.equal(isOverloaded(6, 100, th), true);
  assert.equal(isOverloaded(5, 100, th), false, "exactly 5 % is not above it");
  assert.equal(isOverloaded(3, 10, th), false, "too few runs for the ratio rule");
  assert.equal(isOverloaded(0, 0, th), false);
});

test("window counts use the newest sample at or before the window start as the baseline", () => {
  // One sample per second; 1000 runs and 1 miss per second, then a burst.
  const s: CounterSample[] = [];
  for (let i = 0; i <= 20; i++) s.push({ t: i * 1000, runs: i * 1000, misses: i });
  assert.deepEqual(windowCounts(s, 10_000), { runs: 10_000, misses: 10 });
  // Shorter history than the window: everything since the first sample.
  assert.deepEqual(windowCounts(s.slice(0, 4), 10_000), { runs: 3000, misses: 3 });
  assert.deepEqual(windowCounts([], 10_000), { runs: 0, misses: 0 });
});

test("a counter reset (entry re-created) counts from zero instead of going negative", () => {
  const s: CounterSample[] = [
    { t: 0, runs: 5000, misses: 100 },
    { t: 1000, runs: 6000, misses: 110 },
    { t: 2000, runs: 300, misses: 4 }, // reset
    { t: 3000, runs: 800, misses: 9 },
  ];
  assert.deepEqual(windowCounts(s, 10_000), { runs: 1000 + 300 + 500, misses: 10 + 4 + 5 });
});

test("verdict: a burst of misses is overloaded until it slides out of the window", () => {
  const s: CounterSample[] = [];
  let misses = 0;
  for (let i = 0; i <= 12; i++) {
    if (i === 5) misses += 30; // 30 misses between t=4 s and t=5 s
    s.push({ t: i * 1000, runs: i * 100, misses });
  }
  const v = evaluateSamples(s, th); // window (2 s, 12 s] holds the burst
  assert.equal(v.overloaded, true);
  assert.equal(v.misses, 30);
  assert.equal(v.runs, 1000);
  assert.equal(v.window_s, 10);
  // The burst leaves the window once the baseline passes t=5 s: at t=15 s, 3 s from now.
  assert.equal(v.retry_after_s, 3);
  const later = [...s];
  for (let i = 13; i <= 15; i++) later.push({ t: i * 1000, runs: i * 100, misses });
  assert.equal(evaluateSamples(later, th).overloaded, false);
  assert.equal(evaluateSamples(later, th).retry_after_s, 0);
});

test("tracker: per key, forgets keys no longer sampled, sums keys of a pod", () => {
  const tr = new OverloadTracker(th);
  for (let i = 0; i <= 10; i++) {
    tr.record(i * 1000, [
      { key: "/a", runs: i * 100, misses: i * 3 }, // 30 misses / 1000 runs: overloaded
      { key: "/b", runs: i * 100, misses: 0 },
    ]);
  }
  assert.equal(tr.evaluate("/a").overloaded, true);
  assert.equal(tr.evaluate("/b").overloaded, false);
  const pod = tr.evaluateAll(["/a", "/b"]);
  assert.deepEqual([pod.misses, pod.runs, pod.overloaded], [30, 2000, true]);
  assert.ok(pod.retry_after_s >= 1);
  tr.record(11_000, [{ key: "/b", runs: 1100, misses: 0 }]);
  assert.equal(tr.has("/a"), false);
  assert.equal(tr.evaluate("/a").overloaded, false);
});

test("tracker keeps only the window's worth of samples", () => {
  const tr = new OverloadTracker({ ...th, windowS: 2 });
  for (let i = 0; i < 1000; i++) tr.record(i * 1000, [{ key: "/a", runs: i, misses: 0 }]);
  // Window 2 s at 1 s spacing: the baseline plus the samples inside it.
  const series = (tr as unknown as { series: Map<string, unknown[]> }).series.get("/a")!;
  assert.ok(series.length <= 4, `kept ${series.length} samples`);
});
