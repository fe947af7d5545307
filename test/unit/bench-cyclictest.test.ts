// The cyclictest workload's parser against real cyclictest output (rt-tests, run here on the host).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { parseCyclictestHistogram } from "../../bench/workloads/cyclictest.js";

const realRun = () =>
  execFileSync("cyclictest", ["-q", "-m", "-D1", "-i1000", "-h100000"], {
    encoding: "utf8",
    maxBuffer: 16 * 2 ** 20, // one row per microsecond bucket
  });

test("cyclictest histogram: a 1 s run at 1 kHz gives ~1000 samples and ordered percentiles", () => {
  const p = parseCyclictestHistogram(realRun());
  assert.ok(p.samples >= 900 && p.samples <= 1001, `${p.samples} samples`);
  assert.ok(p.p50_us >= 0 && p.p50_us <= p.p99_us && p.p99_us <= p.p999_us, JSON.stringify(p));
});

test("cyclictest histogram: joined outputs pool their counts (runs compared as one sample)", () => {
  const a = realRun();
  const one = parseCyclictestHistogram(a);
  const twice = parseCyclictestHistogram(a + a);
  assert.equal(twice.samples, 2 * one.samples);
  assert.deepEqual(
    [twice.p50_us, twice.p99_us, twice.p999_us],
    [one.p50_us, one.p99_us, one.p999_us],
    "the same run twice has the same percentiles",
  );
  const overflowing = "000001 5\n# Histogram Overflows: 00002\n";
  const pooled = parseCyclictestHistogram(overflowing + overflowing);
  assert.equal(pooled.samples, 14);
  assert.equal(pooled.p999_us, 100_000, "overflows count at the histogram's ceiling");
});
