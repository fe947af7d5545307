// The ladder's plan (order, which arm runs where, hog kinds, time estimates, boots), and the
// report's comparison of scx_slo with the peers, on small hand-made results.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { cellWaits } from "../../bench/arms.js";
import {
  FULL,
  mergeBoots,
  planSeconds,
  QUICK,
  splitPlan,
  writeOutputs,
  type BenchPlan,
} from "../../bench/host.js";
import { peerCommand } from "../../bench/peer-arms.js";
import { armRuns, cellCount, cellsOfArm, estimateSeconds } from "../../bench/plan.js";
import { p99Text, renderReport } from "../../bench/report.js";
import type { BenchRecord, ResultsFile } from "../../bench/results.js";
import {
  checkTargets,
  cpuMaxByArm,
  findCell,
  hogKindsOf,
  p99Growth,
  pointByPoint,
  summarize,
} from "../../bench/summary.js";
import { validateResults } from "../../bench/validate.js";
import { hogArgs } from "../../bench/workloads/stress.js";

test("plan: rep -> workload -> arm -> step, bg=0 once, every hog kind at every other step", () => {
  assert.deepEqual(cellsOfArm([0, 2, 8], ["int64", "vm"]), [
    { bg: 0, hogKind: "none" },
    { bg: 2, hogKind: "int64" },
    { bg: 2, hogKind: "vm" },
    { bg: 8, hogKind: "int64" },
    { bg: 8, hogKind: "vm" },
  ]);
  const runs = armRuns({
    arms: ["fair", "lavd-bw", "scx_slo"],
    workloads: ["cyclictest", "pgbench"],
    steps: [0, 8],
    reps: 2,
  });
  assert.deepEqual(
    runs.map((r) => `${r.rep}/${r.workload}/${r.arm}`),
    [
      "0/cyclictest/fair",
      "0/cyclictest/scx_slo",
      "0/pgbench/fair",
      "0/pgbench/lavd-bw",
      "0/pgbench/scx_slo",
      "1/cyclictest/fair",
      "1/cyclictest/scx_slo",
      "1/pgbench/fair",
      "1/pgbench/lavd-bw",
      "1/pgbench/scx_slo",
    ],
    "lavd-bw runs only where cpu.max is in play",
  );
  assert.deepEqual(runs[0]!.cells, [
    { bg: 0, hogKind: "none" },
    { bg: 8, hogKind: "int64" },
  ]);
  assert.equal(cellCount({ arms: ["fair"], workloads: ["http"], steps: [0, 1, 2], reps: 3 }), 9);
});

test("plan: the estimate counts cells and attaches; a long plan is split by workload", () => {
  const one = { arms: ["lavd"], workloads: ["cyclictest"], steps: [0, 8], reps: 1 };
  // lavd's attach plus two cells of duration + cyclictest's overhead.
  assert.equal(estimateSeconds(one, 10), 150 + 2 * (10 + 4));
  assert.equal(cellCount(FULL), 3 * (7 * 3 + 8) * (1 + 4 * 4));
  const boots = splitPlan(FULL);
  assert.deepEqual(
    boots.map((b) => b.workloads),
    [["cyclictest"], ["http"], ["pgbench"], ["chain"]],
  );
  for (const b of boots) assert.deepEqual(b.arms, FULL.arms, "every arm of a workload in its boot");
  assert.ok(planSeconds(FULL) > 6 * 3600, "the full plan takes hours");
  assert.deepEqual(splitPlan(QUICK), [QUICK], "the quick plan fits one boot");
  assert.ok(planSeconds(QUICK) < 240, "the demo stays well under 5 minutes");
});

test("peers: each arm's command line, and hog kinds' stress-ng arguments", () => {
  assert.match(peerCommand("lavd-bw", "/co").argv.join(" "), /scx_lavd --enable-cpu-bw$/);
  assert.deepEqual(peerCommand("layered", "/co").argv.slice(1), [
    "f:/co/bench/peers/layered-critical.json",
  ]);
  assert.equal(peerCommand("flash", "/co").opsPrefix, "flash_");
  assert.deepEqual(hogArgs("int64", 4).args, ["--cpu", "4", "--cpu-method", "int64"]);
  assert.deepEqual(hogArgs("mix", 4).args, ["--cpu", "4"]);
  assert.equal(hogArgs("cache", 2).stressor, "cache");
  assert.deepEqual(hogArgs("vm", 8).args, ["--vm", "8", "--vm-bytes", "64M", "--vm-keep"]);
});

test("cellWaits: one cell's share of a scheduler's cumulative in-kernel figures", () => {
  const before = [{ cgroupId: 7n, hist: [5, 2, 0], waitMaxNs: 9000, runs: 7, misses: 1 }];
  const after = [{ cgroupId: 7n, hist: [8, 4, 1], waitMaxNs: 9000, runs: 13, misses: 1 }];
  const [d] = cellWaits(after, before);
  assert.deepEqual(d!.hist, [3, 2, 1]);
  assert.equal(d!.runs, 6);
  assert.equal(d!.misses, 0);
  assert.ok(d!.waitMaxNs > 0 && d!.waitMaxNs <= 9000, "no new high: the top bucket reached");
  after[0]!.waitMaxNs = 20_000;
  assert.equal(cellWaits(after, before)[0]!.waitMaxNs, 20_000, "a new high is the cell's own");
});

function rec(
  workload: string,
  arm: string,
  bg: number,
  kind: string,
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
    hog_kind: bg ? kind : "none",
    p50_us: Math.round(p99 / 4),
    p99_us: p99,
    p999_us: p99 * 2,
    samples: 1000,
    batch_ops_per_s: batch,
    critical_cpu_usec: 500_000,
    window_s: 5,
    ...extra,
  };
}

/** The chain under fair, fair-weight, two peers and scx_slo, with int64 and vm hogs, one rep. */
function peersSample(): ResultsFile {
  // p99 at bg 0 / 8 (int64) / 8 (vm), batch at bg 8 (int64) / (vm)
  const fig: Record<string, [number, number, number, number, number]> = {
    fair: [20_000, 188_000, 150_000, 1000, 500],
    "fair-weight": [20_000, 40_000, 30_000, 900, 450],
    lavd: [20_000, 60_000, 25_000, 1000, 500],
    layered: [20_000, 30_000, 45_000, 950, 400],
    scx_slo: [20_000, 23_000, 26_000, 870, 480],
  };
  const records: BenchRecord[] = [];
  for (const [arm, [idle, top, topVm, batch, batchVm]] of Object.entries(fig)) {
    records.push(rec("chain", arm, 0, "none", 0, idle, null));
    records.push(rec("chain", arm, 8, "int64", 0, top, batch));
    records.push(rec("chain", arm, 8, "vm", 0, topVm, batchVm));
  }
  return {
    schema: 1,
    machine: "test machine",
    started: "2026-01-02T03:04:05.000Z",
    records,
    peers: {
      lavd: { command: "/x/scx_lavd" },
      layered: { command: "/x/scx_layered f:c.json", config: [{ name: "critical" }] },
    },
  };
}

test("summary: hog kinds are ladders of their own sharing bg=0", () => {
  const f = peersSample();
  assert.deepEqual(validateResults(f), []);
  const cells = summarize(f);
  assert.deepEqual(hogKindsOf(cells, "chain"), ["int64", "vm"]);
  assert.equal(findCell(cells, "chain", "lavd", 8, "vm")!.p99_us, 25_000);
  assert.equal(findCell(cells, "chain", "lavd", 0, "vm")!.p99_us, 20_000, "bg=0 serves every kind");
  const growth = p99Growth(cells, "chain", "int64");
  assert.equal(growth.find((g) => g.arm === "fair")!.growth, 9.4);
});

test("targets: the chain's growth, every peer at the top step, batch against the best peer", () => {
  const cells = summarize(peersSample());
  const int64 = checkTargets(cells, "chain", "int64");
  const by = (checks: typeof int64, re: RegExp) => checks.find((c) => re.test(c.name))!;
  // 23000 / 20000 = 1.15 <= 1.2
  const growth = by(int64, /1\.2x its own idle/);
  assert.equal(growth.verdict, "PASS");
  assert.equal(by(int64, /<= lavd's/).verdict, "PASS");
  assert.equal(by(int64, /<= layered's/).verdict, "PASS");
  assert.ok(!int64.some((c) => /<= fair-weight's/.test(c.name)), "fair-weight keeps its own check");
  // batch: 870 against the best peer's 1000
  const batch = by(int64, /best peer/);
  assert.equal(batch.verdict, "MISS");
  assert.ok(Math.abs(batch.ratio! - 0.87) < 1e-9);
  assert.match(batch.detail, /best peer there lavd/);
  // vm hogs: lavd's 25000 beats scx_slo's 26000; growth 1.3 misses
  const vm = checkTargets(cells, "chain", "vm");
  assert.equal(by(vm, /<= lavd's/).verdict, "MISS");
  assert.equal(by(vm, /own idle/).verdict, "MISS");
  assert.equal(by(vm, /best peer/).verdict, "PASS");
});

test("pointByPoint and cpuMaxByArm: scx_slo against each arm, and who held cpu.max", () => {
  const f = peersSample();
  const points = pointByPoint(summarize(f), "chain", "int64");
  assert.deepEqual(
    points.filter((p) => p.bg === 8).map((p) => p.arm),
    ["lavd", "layered", "fair", "fair-weight"],
  );
  const lavd8 = points.find((p) => p.bg === 8 && p.arm === "lavd")!;
  assert.ok(Math.abs(lavd8.p99! - 23_000 / 60_000) < 1e-9);
  assert.ok(Math.abs(lavd8.batch! - 0.87) < 1e-9);
  for (const r of f.records) {
    r.critical_cpu_max = "50000 100000";
    // lavd overruns the limit with vm hogs (1.0 core of 0.5); everyone else stays at 0.4
    r.critical_cpu_usec = r.arm === "lavd" && r.hog_kind === "vm" ? 5_000_000 : 2_000_000;
  }
  const use = cpuMaxByArm(summarize(f), "chain");
  const lavd = use.find((u) => u.arm === "lavd")!;
  assert.equal(lavd.held, false);
  assert.deepEqual(lavd.at, { bg: 8, hog_kind: "vm" });
  assert.equal(use.find((u) => u.arm === "scx_slo")!.held, true);
});

test("renderReport: peers with their commands and layered's config, sections per hog kind", () => {
  const f = peersSample();
  for (const r of f.records) r.critical_cpu_max = "50000 100000";
  const md = renderReport(f, { chartFile: (w, k) => `chart-${w}-${k}.svg` });
  assert.match(md, /## The arms/);
  assert.match(md, /\| layered \| `\/x\/scx_layered f:c\.json` \| ignored/);
  assert.match(md, /"name": "critical"/);
  assert.match(md, /Hog kinds: int64 \(`stress-ng --cpu N --cpu-method int64`\), vm/);
  assert.match(md, /### p99 by step \(rows\) and arm \(columns\) \(vm hogs\)/);
  assert.match(md, /### scx_slo against each arm, point by point \(int64 hogs\)/);
  assert.match(
    md,
    /\| 8 \| 0\.38 \/ 0\.87 \| 0\.77 \/ 0\.92 \| 0\.12 \/ 0\.87 \| 0\.57 \/ 0\.97 \|/,
  );
  assert.match(md, /### End-to-end p99 growth, bg=0 to bg=8 \(int64 hogs\)/);
  assert.match(md, /\| fair \| 20000 \| 188000 \| 9\.40x \|/);
  assert.match(md, /### Who honoured cpu\.max/);
  assert.match(md, /## Targets, every workload and hog kind/);
  assert.match(md, /chart-chain-vm\.svg/);
  for (const block of md.split("\n\n").filter((b) => b.startsWith("|"))) {
    const widths = block
      .trim()
      .split("\n")
      .map((l) => l.split("|").length);
    assert.ok(
      widths.every((w) => w === widths[0]),
      `ragged table:\n${block}`,
    );
  }
  assert.match(p99Text(f), /chain, vm hogs: p99 us/);
});

test("mergeBoots: one results file from boots, valid, with a chart per workload and kind", () => {
  const a = peersSample();
  const b = peersSample();
  for (const r of b.records) r.workload = "http";
  a.failures = [{ rep: 0, workload: "chain", arm: "bpfland", error: "did not attach" }];
  const merged = mergeBoots([
    { results: a, file: "/x/results-boot0-chain.json" },
    { results: b, file: "/x/results-boot1-http.json" },
  ]);
  assert.deepEqual(validateResults(merged), []);
  assert.equal(merged.records.length, a.records.length * 2);
  assert.deepEqual(
    merged.boots!.map((x) => [x.boot, x.workloads, x.file]),
    [
      [0, ["chain"], "results-boot0-chain.json"],
      [1, ["http"], "results-boot1-http.json"],
    ],
  );
  const dir = mkdtempSync(path.join(tmpdir(), "bench-merge-"));
  const out = writeOutputs(merged, dir);
  assert.deepEqual(readdirSync(dir).sort(), [
    "chart-chain-vm.svg",
    "chart-chain.svg",
    "chart-http-vm.svg",
    "chart-http.svg",
    "report.md",
    "results.json",
  ]);
  assert.equal(out.charts.length, 4);
});

test("validateResults: the same cell under two hog kinds is no duplicate", () => {
  const f = peersSample();
  assert.deepEqual(validateResults(f), []);
  f.records.push({ ...f.records[1]! });
  assert.ok(validateResults(f).some((e) => /duplicate/.test(e)));
  const g = peersSample();
  g.records[0]!.hog_kind = "";
  assert.ok(validateResults(g).some((e) => /hog_kind/.test(e)));
});

test("plans: quick stays fair vs scx_slo with int64 hogs; full names every peer", () => {
  const q: BenchPlan = QUICK;
  assert.deepEqual(q.arms, ["fair", "scx_slo"]);
  assert.equal(q.hogKinds, undefined);
  for (const arm of ["lavd", "lavd-bw", "bpfland", "flash", "layered", "fair-weight", "scx_slo"]) {
    assert.ok(FULL.arms.includes(arm), arm);
  }
  assert.deepEqual(FULL.workloads, ["cyclictest", "http", "pgbench", "chain"]);
});
