// The benchmark end to end in the real sched_ext kernel, as small as it gets (one step, both
// ends of the comparison, both workloads, two seconds a cell): the records it writes must match
// the schema and turn into a report and charts. Figures this short mean nothing; none is checked.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { runLadderInVm, writeOutputs, type BenchPlan } from "../../bench/host.js";
import { validateResults } from "../../bench/validate.js";

test("bench: a one-step ladder in the VM writes schema-valid records, a report and charts", async () => {
  const plan: BenchPlan = {
    arms: ["fair", "scx_slo"],
    steps: [1],
    reps: 1,
    durationS: 2,
    workloads: ["cyclictest", "http"],
    ladderArgs: ["--http-rate", "20"],
  };
  const started = Date.now();
  const run = await runLadderInVm(plan);
  const wallS = (Date.now() - started) / 1000;
  assert.equal(run.vm.exitCode, 0, run.vm.output.slice(-3000));
  assert.ok(run.results, "the guest wrote results.json");
  assert.deepEqual(validateResults(run.results), []);
  const cells = run.results.records.map((r) => `${r.workload}/${r.arm}/bg${r.bg}`);
  assert.deepEqual(cells, [
    "cyclictest/fair/bg1",
    "cyclictest/scx_slo/bg1",
    "http/fair/bg1",
    "http/scx_slo/bg1",
  ]);
  for (const r of run.results.records) {
    assert.ok(r.samples > 0, `${r.workload}/${r.arm} has samples`);
    assert.equal(typeof r.batch_ops_per_s, "number", "one hog ran");
  }
  const http = run.results.records.filter((r) => r.workload === "http");
  for (const r of http) assert.equal(r.http_errors, 0, `${r.arm}: no failed requests`);
  const out = writeOutputs(run.results, mkdtempSync(path.join(tmpdir(), "bench-vm-")));
  const md = readFileSync(out.report, "utf8");
  assert.match(md, /## cyclictest/);
  assert.match(md, /## http/);
  assert.equal(out.charts.length, 2);
  console.log(`# one-step ladder: ${wallS.toFixed(1)} s wall, boot included`);
});
