// The benchmark's host side on a small hand-made results object: schema check, medians, the
// issue's targets (ratios, PASS/MISS and by how much), the Markdown report and the SVG chart.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { armsRefusedBy } from "../../bench/arms.js";
import { renderChart, logTicks } from "../../bench/chart.js";
import { makeWorkload } from "../../bench/workloads/index.js";
import { CHAIN_DEFAULTS } from "../../bench/workloads/chain.js";
import { HTTP_DEFAULTS } from "../../bench/workloads/http.js";
import { PGBENCH_DEFAULTS } from "../../bench/workloads/pgbench.js";
import { resultsDir, writeOutputs } from "../../bench/host.js";
import { p99Text, renderReport } from "../../bench/report.js";
import type { BenchRecord, ResultsFile } from "../../bench/results.js";
import {
  checkTargets,
  cpuMaxCores,
  floorReference,
  missBy,
  summarize,
} from "../../bench/summary.js";
import { assertValidResults, validateResults } from "../../bench/validate.js";

function rec(
  workload: string,
  arm: string,
  bg: number,
  rep: number,
  p99: number,
  batch: number | null,
  extra: Partial<BenchRecord> = {},
): BenchRecord {
  return {
    arm,
    workload,
    bg,
    rep,
    p50_us: Math.round(p99 / 4),
    p99_us: p99,
    p999_us: p99 * 2,
    samples: 1000,
    batch_ops_per_s: batch,
    critical_cpu_usec: 500_000,
    batch_cpu_usec: bg ? 9_000_000 : 0,
    window_s: 5,
    ...extra,
  };
}

/** Two reps, interleaved; rep 1 is rep 0 with p99 +10%, so the median is the mean of the two. */
function sample(): ResultsFile {
  // p99 by arm at bg 0 / 8, and batch ops/s at bg 8.
  const fig: Record<string, [number, number, number]> = {
    fair: [100, 5000, 1000],
    "fair-weight": [100, 900, 1000],
    "fair-idle": [100, 400, 1000],
    scx_slo: [100, 200, 850],
  };
  const records: BenchRecord[] = [];
  for (const rep of [0, 1]) {
    for (const bg of [0, 8]) {
      for (const [arm, [idle, top, batch]] of Object.entries(fig)) {
        const k = rep === 0 ? 1 : 1.1;
        records.push(rec("cyclictest", arm, bg, rep, (bg ? top : idle) * k, bg ? batch * k : null));
      }
    }
  }
  return { schema: 1, machine: "test machine", started: "2026-01-02T03:04:05.000Z", records };
}

test("validateResults: a well-formed file has no errors", () => {
  assert.deepEqual(validateResults(sample()), []);
  assert.doesNotThrow(() => assertValidResults(sample()));
});

test("validateResults: no samples means null percentiles, and that is allowed", () => {
  const f = sample();
  Object.assign(f.records[0]!, { samples: 0, p50_us: null, p99_us: null, p999_us: null });
  assert.deepEqual(validateResults(f), []);
});

test("validateResults: names every departure from the schema", () => {
  assert.deepEqual(validateResults(null), ["not an object"]);
  const f = sample() as unknown as Record<string, unknown>;
  f.schema = 2;
  delete f.machine;
  f.started = "yesterday";
  const rs = f.records as Record<string, unknown>[];
  delete rs[0]!.batch_ops_per_s;
  rs[1]!.p99_us = "fast";
  rs[2]!.bg = -1;
  rs[3]!.arm = "";
  rs[4]!.p50_us = 1e9; // above p99
  rs[5]!.critical_cpu_usec = -3;
  const errors = validateResults(f);
  const expect = [
    /^schema: expected 1/,
    /^machine/,
    /^started/,
    /records\[0\]\.batch_ops_per_s: missing/,
    /records\[1\]\.p99_us: not a latency/,
    /records\[2\]\.bg: not a count/,
    /records\[3\]\.arm: not a name/,
    /records\[4\]: percentiles out of order/,
    /records\[5\]\.critical_cpu_usec/,
  ];
  for (const re of expect)
    assert.ok(
      errors.some((e) => re.test(e)),
      `${re} in ${errors}`,
    );
  assert.throws(() => assertValidResults(f), /invalid results/);
});

test("validateResults: records must be interleaved by rep and unique", () => {
  const f = sample();
  f.records.push({ ...f.records[0]! });
  const errors = validateResults(f);
  assert.ok(errors.some((e) => /not interleaved/.test(e)));
  assert.ok(errors.some((e) => /duplicate record/.test(e)));
});

test("summarize: medians over reps per workload, arm and step", () => {
  const cells = summarize(sample());
  assert.equal(cells.length, 8);
  const scx8 = cells.find((c) => c.arm === "scx_slo" && c.bg === 8)!;
  assert.equal(scx8.reps, 2);
  assert.ok(Math.abs(scx8.p99_us - 210) < 1e-9);
  assert.ok(Math.abs(scx8.batch_ops_per_s! - 892.5) < 1e-9);
  assert.equal(scx8.critical_cores, 0.1);
  // Rows come steps first, arms in the project's order.
  assert.deepEqual(
    cells.slice(0, 4).map((c) => c.arm),
    ["fair", "fair-weight", "fair-idle", "scx_slo"],
  );
});

test("checkTargets: ratios, PASS/MISS, and by how much a target was missed", () => {
  const checks = checkTargets(summarize(sample()), "cyclictest");
  const by = (re: RegExp) => checks.find((c) => re.test(c.name))!;
  // scx_slo: idle 105, top 210 -> 2.0 > 1.5
  const idle = by(/own idle/);
  assert.equal(idle.verdict, "MISS");
  assert.ok(Math.abs(idle.ratio! - 2) < 1e-9);
  assert.match(idle.detail, /missed by 33\.3%/);
  // 210 / 5250 = 0.04 <= 0.2
  const fair = by(/0\.2x fair/);
  assert.equal(fair.verdict, "PASS");
  assert.ok(Math.abs(fair.ratio! - 0.04) < 1e-9);
  assert.doesNotMatch(fair.detail, /missed/);
  assert.equal(by(/better than fair-weight/).verdict, "PASS");
  // 210 / 420 = 0.5 < 1
  assert.ok(Math.abs(by(/better than fair-idle/).ratio! - 0.5) < 1e-9);
  // batch 892.5 / 1050 = 0.85 < 0.9
  const batch = by(/batch throughput/);
  assert.equal(batch.verdict, "MISS");
  assert.ok(Math.abs(batch.ratio! - 0.85) < 1e-9);
  assert.match(batch.detail, /worst at bg=8; missed by 5\.6%/);
  assert.equal(checks.length, 5, "no cpu.max check without a cpu.max");
});

test("checkTargets: a missing arm or step is n/a, not a pass", () => {
  const f = sample();
  f.records = f.records.filter((r) => r.arm !== "fair" && r.bg !== 0);
  const checks = checkTargets(summarize(f), "cyclictest");
  assert.equal(checks.find((c) => /own idle/.test(c.name))!.verdict, "n/a");
  assert.equal(checks.find((c) => /0\.2x fair/.test(c.name))!.verdict, "n/a");
  assert.equal(checks.find((c) => /batch/.test(c.name))!.verdict, "n/a");
  assert.deepEqual(checkTargets(summarize(f), "http"), []);
});

test("checkTargets: cpu.max is checked against the critical cgroup's measured CPU", () => {
  assert.equal(cpuMaxCores("50000 100000"), 0.5);
  assert.equal(cpuMaxCores("max 100000"), null);
  const f = sample();
  for (const r of f.records) {
    r.workload = "pgbench";
    r.critical_cpu_max = "50000 100000";
    // scx_slo overruns at bg=8: 0.6 cores of 0.5
    r.critical_run_cpu_usec = r.arm === "scx_slo" && r.bg === 8 ? 2_400_000 : 1_000_000;
    r.run_s = 4;
  }
  const cpu = checkTargets(summarize(f), "pgbench").find((c) => /cpu\.max/.test(c.name))!;
  assert.equal(cpu.verdict, "MISS");
  assert.ok(Math.abs(cpu.ratio! - 1.2) < 1e-9);
  assert.match(cpu.detail, /0\.600 of 0\.500 cores at bg=8; missed by 20\.0%/);
  assert.match(renderReport(f), /0\.600 \/ 0\.500/);
});

test("missBy: over a ceiling or short of a floor, as a share of the limit", () => {
  assert.equal(missBy(3, "<=", 1.5), "missed by 100.0%");
  assert.equal(missBy(0.45, ">=", 0.9), "missed by 50.0%");
});

test("renderReport: header, tables per workload, targets and chart links", () => {
  const md = renderReport(sample(), {
    generated: "2026-01-02T04:00:00.000Z",
    chartFile: (w) => `chart-${w}.svg`,
  });
  assert.match(md, /^# scx-slo noisy-neighbour benchmark/);
  assert.match(md, /Machine: test machine/);
  assert.match(md, /Report written: 2026-01-02T04:00:00.000Z/);
  assert.match(md, /2 rep\(s\), arms interleaved/);
  assert.match(md, /\| bg \| fair \| fair-weight \| fair-idle \| scx_slo \|/);
  assert.match(md, /\| 8 \| 5250 \| 945 \| 420 \| 210 \|/);
  assert.match(md, /\| 8 \| scx_slo \| 2 \| 53 \| 210 \| 420 \| 892\.5 \| 0\.85 \| 0\.100 \|/);
  assert.match(md, /\*\*MISS\*\* \| 210 us vs 105 us; missed by 33\.3%/);
  assert.match(md, /!\[p99 against background hogs, cyclictest\]\(chart-cyclictest\.svg\)/);
  // Every table row has as many cells as its header.
  for (const block of md.split("\n\n").filter((b) => b.startsWith("|"))) {
    const widths = block.split("\n").map((l) => l.split("|").length);
    assert.ok(
      widths.every((w) => w === widths[0]),
      `ragged table:\n${block}`,
    );
  }
});

test("renderReport: the SCHED_FIFO reference arm is reported as the floor, never as a target", () => {
  const f = sample();
  for (const rep of [0, 1]) {
    for (const bg of [0, 8]) {
      const k = rep === 0 ? 1 : 1.1;
      f.records.push(
        rec("cyclictest", "fair-rt", bg, rep, (bg ? 150 : 80) * k, bg ? 990 * k : null),
      );
    }
  }
  f.records.sort((a, b) => a.rep - b.rep);
  assert.deepEqual(validateResults(f), []);
  const cells = summarize(f);
  assert.deepEqual(floorReference(cells, "cyclictest"), {
    bg: 8,
    rtP99: 157.5,
    rtVsFair: 157.5 / 5250,
    scxVsRt: 210 / 157.5,
  });
  assert.ok(checkTargets(cells, "cyclictest").every((t) => !t.name.includes("fair-rt")));
  const md = renderReport(f);
  assert.match(md, /\| bg \| fair \| fair-weight \| fair-idle \| scx_slo \| fair-rt \|/);
  assert.match(md, /### Reference: the kernel's fastest wake-up/);
  assert.match(md, /At bg=8: 158 us, 0\.03x fair's p99; scx_slo's p99 is 1\.33x it\./);
  assert.equal(floorReference(summarize(sample()), "cyclictest"), null);
  assert.doesNotMatch(renderReport(sample()), /Reference/);
});

test("armsRefusedBy: the SCHED_FIFO reference arm runs cyclictest only, and says how to fix a plan", () => {
  const opts = { http: HTTP_DEFAULTS, pgbench: PGBENCH_DEFAULTS, chain: CHAIN_DEFAULTS };
  const [cyclictest, http, pgbench] = ["cyclictest", "http", "pgbench"].map((w) =>
    makeWorkload(w, opts),
  );
  assert.equal(armsRefusedBy(["fair", "scx_slo", "fair-rt"], [cyclictest!]), null);
  assert.equal(armsRefusedBy(["fair", "scx_slo"], [cyclictest!, http!, pgbench!]), null);
  assert.equal(
    armsRefusedBy(["fair", "fair-rt"], [cyclictest!, http!, pgbench!]),
    "arm fair-rt runs the critical workload under SCHED_FIFO, which http, pgbench cannot do: " +
      "drop fair-rt from --arms or run --workloads cyclictest",
  );
});

test("p99Text: aligned grid and verdicts for the terminal", () => {
  const text = p99Text(sample());
  assert.match(text, /cyclictest: p99 us/);
  assert.match(text, /bg\s+fair\s+fair-weight\s+fair-idle\s+scx_slo/);
  assert.match(text, /MISS scx_slo p99 at bg=8 <= 1\.5x its own idle/);
});

/** Tag balance and attribute quoting: enough to know a browser will parse it. */
function assertWellFormedXml(xml: string): string[] {
  const stack: string[] = [];
  const names: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (let m = tag.exec(xml); m; m = tag.exec(xml)) {
    assert.doesNotMatch(xml.slice(last, m.index), /[<>]/, `stray bracket before ${m[0]}`);
    last = tag.lastIndex;
    const [, close, name, , selfClose] = m;
    names.push(name!);
    if (close) assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
    else if (!selfClose) stack.push(name!);
  }
  assert.doesNotMatch(xml.slice(last), /[<>]/);
  assert.deepEqual(stack, [], "unclosed elements");
  return names;
}

test("renderChart: well-formed SVG, one line per arm, log-scale decades", () => {
  const svg = renderChart(summarize(sample()), "cyclictest");
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  const names = assertWellFormedXml(svg);
  assert.equal(names[0], "svg");
  assert.equal(names.filter((n) => n === "polyline").length, 4);
  assert.equal(names.filter((n) => n === "circle").length, 8);
  for (const arm of ["fair", "fair-weight", "fair-idle", "scx_slo"]) {
    assert.match(svg, new RegExp(`>${arm}</text>`));
  }
  assert.match(svg, />100 us</);
  assert.match(svg, />10 ms</);
  // Higher p99 is higher on the page (smaller y): fair's bg=8 point above scx_slo's.
  const lines = [...svg.matchAll(/<polyline[^>]*stroke="([^"]+)"[^>]*points="([^"]+)"/g)];
  const lastY = (pts: string) => Number(pts.trim().split(" ").pop()!.split(",")[1]);
  const fairLine = lines.find((l) => l[1] === "#d62728")!;
  const scxLine = lines.find((l) => l[1] === "#2ca02c")!;
  assert.ok(lastY(fairLine[2]!) < lastY(scxLine[2]!));
});

test("renderChart: names are escaped and a lone step still draws", () => {
  const f = sample();
  f.records = f.records.filter((r) => r.bg === 8 && r.rep === 0);
  for (const r of f.records) r.workload = "a<b&c";
  const svg = renderChart(summarize(f), "a<b&c");
  assertWellFormedXml(svg);
  assert.match(svg, /a&#60;b&#38;c/);
  assert.deepEqual(logTicks(150, 150), [100, 1000]);
  assert.deepEqual(logTicks(90, 20_000), [10, 100, 1000, 10_000, 100_000]);
});

test("writeOutputs and resultsDir: files on disk, a second run the same day kept apart", () => {
  const base = mkdtempSync(path.join(tmpdir(), "bench-out-"));
  const day = new Date("2026-03-04T10:00:00Z");
  const first = resultsDir(base, day, "demo run");
  assert.equal(path.basename(first), "2026-03-04-demo_run");
  const written = writeOutputs(sample(), first);
  assert.deepEqual(JSON.parse(readFileSync(written.results, "utf8")), sample());
  assert.match(readFileSync(written.report, "utf8"), /chart-cyclictest\.svg/);
  assert.deepEqual(
    written.charts.map((c) => path.basename(c)),
    ["chart-cyclictest.svg"],
  );
  assert.equal(path.basename(resultsDir(base, day, "demo run")), "2026-03-04-demo_run-2");
  assert.equal(path.basename(resultsDir(base, day)), "2026-03-04");
  const bad = path.join(base, "bad");
  mkdirSync(bad);
  writeFileSync(path.join(bad, "x"), "");
  assert.throws(() => writeOutputs({ ...sample(), schema: 2 as 1 }, bad), /schema/);
});
