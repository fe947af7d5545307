// The benchmark from the host: boots the sched_ext VM, runs the ladder in it with progress on
// the terminal, writes results.json, report.md and chart-<workload>[-<hog kind>].svg, prints the
// p99 table.
//   node dist/bench/run.js [--quick|--full] [--workloads cyclictest,http] [--arms a,b]
//                          [--steps 0,2,8] [--reps N] [--duration S] [--hog-kinds int64,mix]
//                          [--label L] [--out DIR] [--host-priority timers-first|default]
//                          [--one-boot] [--dry-run] [-- extra ladder options, e.g. --http-rate 50]
// --quick (the default) writes to .cache/bench-quick/ so CI and trial runs leave the tree clean;
// --full writes bench/results/<YYYY-MM-DD>[-label]/.
// A plan longer than host.ts's MAX_BOOT_S runs as one boot per workload (every arm of a workload
// in the same boot), one after the other: each boot's raw results are kept as
// results-boot<N>-<workload>.json and results.json is their merge (records tagged with `boot`),
// rewritten with the report after every boot. A boot that fails does not stop the next.
// --one-boot keeps it in one boot whatever its length; --dry-run prints the boots and estimates.
import { copyFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { PROJECT_ROOT, VmError } from "../vm/harness.js";
import type { HostPriority } from "../vm/host-priority.js";
import {
  cellCount,
  FULL,
  mergeBoots,
  missingBuildOutputs,
  planSeconds,
  QUICK,
  resultsDir,
  runLadderInVm,
  splitPlan,
  writeOutputs,
  type BenchPlan,
  type WrittenOutputs,
} from "./host.js";
import { armRunsOn } from "./plan.js";
import type { ResultsFile } from "./results.js";
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
    "hog-kinds": { type: "string" },
    "one-boot": { type: "boolean", default: false },
    "dry-run": { type: "boolean", default: false },
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
  ...((list(values["hog-kinds"]) ?? base.hogKinds)
    ? { hogKinds: list(values["hog-kinds"]) ?? base.hogKinds }
    : {}),
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

const boots = values["one-boot"] ? [plan] : splitPlan(plan);
const hours = (sec: number) =>
  sec < 3600 ? `${Math.ceil(sec / 60)} min` : `${(sec / 3600).toFixed(1)} h`;
const describePlan = (p: BenchPlan) =>
  `${cellCount(p)} cells (${p.workloads.join(",")} x ${p.arms.filter((a) => p.workloads.some((w) => armRunsOn(a, w))).join(",")} x steps ${p.steps.join(",")} x hogs ${(p.hogKinds ?? ["int64"]).join(",")} x ${p.reps} rep(s), ${p.durationS} s each), about ${hours(planSeconds(p))}`;
console.log(
  `bench: ${full ? "full" : "quick"} run, ${describePlan(plan)}; ${boots.length} VM boot(s)`,
);
if (boots.length > 1) boots.forEach((b, i) => console.log(`  boot ${i}: ${describePlan(b)}`));
if (values["dry-run"]) process.exit(0);

const started = Date.now();
let exitCode = 0;
const parts: { results: ResultsFile; file: string }[] = [];
let last: ResultsFile | null = null;
let written: WrittenOutputs | null = null;
for (const [i, boot] of boots.entries()) {
  if (boots.length > 1)
    console.log(`bench: boot ${i} of ${boots.length}: ${boot.workloads.join(",")}`);
  try {
    const run = await runLadderInVm(boot, { onOutput: (chunk) => process.stdout.write(chunk) });
    if (run.vm.exitCode !== 0) {
      console.error(`bench: the ladder exited ${run.vm.exitCode}; serial log ${run.vm.serialLog}`);
      exitCode = 1;
    }
    if (!run.results || !run.resultsPath) {
      console.error("bench: the guest wrote no results.json");
      exitCode = 1;
      continue;
    }
    console.log(
      `bench: boot ${i}: ${(run.vm.bootToCommandMs / 1000).toFixed(1)} s boot to ladder; host priority ${run.vm.hostPriority}`,
    );
    if (boots.length === 1) {
      written = writeOutputs(run.results, outDir, run.resultsPath);
      last = run.results;
      continue;
    }
    const file = path.join(outDir, `results-boot${i}-${boot.workloads.join("_")}.json`);
    parts.push({ results: run.results, file });
    last = mergeBoots(parts);
    written = writeOutputs(last, outDir);
    // The guest's own bytes, beside the merge.
    copyFileSync(run.resultsPath, file);
  } catch (err) {
    if (err instanceof VmError) {
      console.error(`bench: ${err.message}`);
      if (boots.length === 1) process.exit(125);
      exitCode = 1;
      continue;
    }
    throw err;
  }
}
if (!last || !written) {
  console.error("bench: no results");
  process.exit(exitCode || 1);
}
const wallS = (Date.now() - started) / 1000;
console.log("");
console.log(p99Text(last));
console.log("");
console.log(`results: ${written.results}`);
console.log(`report:  ${written.report}`);
for (const c of written.charts) console.log(`chart:   ${c}`);
console.log(`bench: wall ${wallS.toFixed(0)} s, ${boots.length} boot(s)`);
process.exit(exitCode);
