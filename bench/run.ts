// The benchmark from the host: boots the sched_ext VM once, runs the ladder in it with progress on
// the terminal, writes results.json, report.md and chart-<workload>.svg, prints the p99 table.
//   node dist/bench/run.js [--quick|--full] [--workloads cyclictest,http] [--arms a,b]
//                          [--steps 0,2,8] [--reps N] [--duration S] [--label L] [--out DIR]
//                          [--host-priority timers-first|default]
//                          [-- extra ladder options, e.g. --http-rate 50]
// --quick (the default) writes to .cache/bench-quick/ so CI and trial runs leave the tree clean;
// --full writes bench/results/<YYYY-MM-DD>[-label]/.
import path from "node:path";
import { parseArgs } from "node:util";
import { PROJECT_ROOT, VmError } from "../vm/harness.js";
import type { HostPriority } from "../vm/host-priority.js";
import {
  cellCount,
  FULL,
  missingBuildOutputs,
  QUICK,
  resultsDir,
  runLadderInVm,
  writeOutputs,
  type BenchPlan,
} from "./host.js";
import { p99Text } from "./report.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    quick: { type: "boolean", default: false },
    full: { type: "boolean", default: false },
    workloads: { type: "string" },
    arms: { type: "string" },
    steps: { type: "string" },
    reps: { type: "string" },
    duration: { type: "string" },
    label: { type: "string" },
    out: { type: "string" },
    "host-priority": { type: "string", default: "timers-first" },
  },
});
if (values.quick && values.full) {
  console.error("bench: --quick and --full exclude each other");
  process.exit(2);
}
const full = values.full;
const base = full ? FULL : QUICK;
const list = (s: string | undefined) => s?.split(",").filter(Boolean);
const plan: BenchPlan = {
  arms: list(values.arms) ?? base.arms,
  steps: list(values.steps)?.map(Number) ?? base.steps,
  reps: values.reps ? Number(values.reps) : base.reps,
  durationS: values.duration ? Number(values.duration) : base.durationS,
  workloads: list(values.workloads) ?? base.workloads,
  ladderArgs: positionals,
  hostPriority: values["host-priority"] as HostPriority,
};
if (!["timers-first", "default"].includes(values["host-priority"])) {
  console.error("bench: --host-priority takes timers-first or default");
  process.exit(2);
}
const outDir = values.out
  ? path.resolve(values.out)
  : full
    ? resultsDir(path.join(PROJECT_ROOT, "bench", "results"), new Date(), values.label)
    : path.join(PROJECT_ROOT, ".cache", "bench-quick", values.label ?? "");

const missing = missingBuildOutputs(plan);
if (missing.length) {
  console.error(`bench: missing ${missing.join("; ")} (build outputs: run \`make build\`)`);
  process.exit(2);
}

const started = Date.now();
console.log(
  `bench: ${full ? "full" : "quick"} run, ${cellCount(plan)} cells (${plan.workloads.join(",")} x ${plan.arms.join(",")} x steps ${plan.steps.join(",")} x ${plan.reps} rep(s), ${plan.durationS} s each); one VM boot`,
);
let exitCode = 0;
try {
  const run = await runLadderInVm(plan, { onOutput: (chunk) => process.stdout.write(chunk) });
  if (run.vm.exitCode !== 0) {
    console.error(`bench: the ladder exited ${run.vm.exitCode}; serial log ${run.vm.serialLog}`);
    exitCode = 1;
  }
  if (!run.results || !run.resultsPath) {
    console.error("bench: the guest wrote no results.json");
    process.exit(1);
  }
  const written = writeOutputs(run.results, outDir, run.resultsPath);
  const wallS = (Date.now() - started) / 1000;
  console.log("");
  console.log(p99Text(run.results));
  console.log("");
  console.log(`results: ${written.results}`);
  console.log(`report:  ${written.report}`);
  for (const c of written.charts) console.log(`chart:   ${c}`);
  console.log(
    `bench: wall ${wallS.toFixed(0)} s (boot to ladder ${(run.vm.bootToCommandMs / 1000).toFixed(1)} s); host priority ${run.vm.hostPriority}`,
  );
} catch (err) {
  if (err instanceof VmError) {
    console.error(`bench: ${err.message}`);
    process.exit(125);
  }
  throw err;
}
process.exit(exitCode);
