// The soak from the host: one VM boot running test/vm/guest/soak-scenario.ts with every fault at
// once (churn, config rewrites, agent SIGKILLs, SysRq-S force-outs, a critical workload against
// hogs), then the verdict against the targets (bench/soak-check.ts).
//   node dist/bench/soak.js [--duration S] [--out DIR] [--label L]
// The 2-hour record is `make soak-long` (bench/results/<date>-soak-2h/); test/vm/soak.test.ts runs
// a few minutes of it in CI with the same checks.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { PROJECT_ROOT, runInVm, type VmResult } from "../vm/harness.js";
import { describeMachine, resultsDir } from "./host.js";
import { judge, RECORD_LIMITS, verdictTable, type SoakRun, type Verdict } from "./soak-check.js";

export interface SoakPlan {
  durationS: number;
  sampleS: number;
  churnMs: number;
  configS: number;
  killEveryS: number;
  killPhaseS: number;
  forceEveryS: number;
  forcePhaseS: number;
  hogs: number;
}

/**
 * The issue's schedule: samples every 30 s, churn every 2 s, the config every minute, the agent
 * killed every 10 minutes and the scheduler forced out every 15. The phases keep a kill at least
 * two minutes from a force-out, so each fault is seen on its own as well as under the others.
 */
export const LONG: SoakPlan = {
  durationS: 7200,
  sampleS: 30,
  churnMs: 2000,
  configS: 60,
  killEveryS: 600,
  killPhaseS: 120,
  forceEveryS: 900,
  forcePhaseS: 900,
  hogs: 4,
};

/** CI's few minutes: every fault at least twice, samples every 15 s. */
export const SHORT: SoakPlan = {
  durationS: 150,
  sampleS: 15,
  churnMs: 2000,
  configS: 20,
  killEveryS: 60,
  killPhaseS: 40,
  forceEveryS: 60,
  forcePhaseS: 70,
  hogs: 4,
};

/**
 * A plan of another length: SHORT's schedule under ten minutes; from there to two hours LONG's
 * with its kill and force-out intervals shortened in proportion (at most four times), so a trial
 * sees each fault more than once; LONG's as it is from two hours on.
 */
export function planFor(durationS: number): SoakPlan {
  if (durationS < 600) return { ...SHORT, durationS };
  const f = Math.max(0.25, Math.min(1, durationS / LONG.durationS));
  const scaled = (s: number) => Math.round(s * f);
  return {
    ...LONG,
    durationS,
    killEveryS: scaled(LONG.killEveryS),
    killPhaseS: scaled(LONG.killPhaseS),
    forceEveryS: scaled(LONG.forceEveryS),
    forcePhaseS: scaled(LONG.forcePhaseS),
  };
}

export interface SoakResult {
  vm: VmResult;
  run: SoakRun;
}

export async function runSoak(
  plan: SoakPlan,
  opts: { onOutput?: (chunk: string) => void; outDir?: string } = {},
): Promise<SoakResult> {
  const env: Record<string, string> = {
    SOAK_DURATION_S: String(plan.durationS),
    SOAK_SAMPLE_S: String(plan.sampleS),
    SOAK_CHURN_MS: String(plan.churnMs),
    SOAK_CONFIG_S: String(plan.configS),
    SOAK_KILL_EVERY_S: String(plan.killEveryS),
    SOAK_KILL_PHASE_S: String(plan.killPhaseS),
    SOAK_FORCE_EVERY_S: String(plan.forceEveryS),
    SOAK_FORCE_PHASE_S: String(plan.forcePhaseS),
    SOAK_HOGS: String(plan.hogs),
  };
  const vm = await runInVm({
    command: "node dist/test/vm/guest/soak-scenario.js",
    env,
    cpus: 2,
    memoryMiB: 2048,
    // Boot, the first load and a slow emulator: generous, so only a hung run is killed.
    timeoutMs: (plan.durationS * 1.5 + 600) * 1000,
    ...(opts.onOutput ? { onOutput: opts.onOutput } : {}),
    ...(opts.outDir ? { outDir: opts.outDir } : {}),
  });
  const file = path.join(vm.outDir, "soak.json");
  const run = existsSync(file)
    ? (JSON.parse(readFileSync(file, "utf8")) as SoakRun)
    : { params: {}, samples: [], events: [] };
  return { vm, run };
}

function notesTemplate(plan: SoakPlan, machine: string, verdicts: Verdict[]): string {
  const passed = verdicts.filter((v) => v.pass).length;
  return `# Soak: ${plan.durationS / 60} minutes of churn and faults

Machine: ${machine}.

Made with \`make soak-long\` (\`node dist/bench/soak.js --duration ${plan.durationS}\`): one VM
boot running \`test/vm/guest/soak-scenario.ts\`. Schedule: a sample every ${plan.sampleS} s (one
cyclictest window of the critical cgroup, SLO 1 ms at importance 90, against ${plan.hogs} stress-ng
hogs without an SLO); an SLO cgroup with a process created and one deleted every
${plan.churnMs / 1000} s; the config rewritten every ${plan.configS} s, good and bad in turn; the
agent killed with SIGKILL every ${plan.killEveryS} s (first at ${plan.killPhaseS} s) and started
again at once; the scheduler forced out with SysRq-S every ${plan.forceEveryS} s (first at
${plan.forcePhaseS} s).

${passed} of ${verdicts.length} checks passed; \`summary.md\` has the table, \`samples.json\` every
sample and event, \`guest-dmesg.txt\` the kernel log, \`agent.log\` the agents' logs.

Observations: (to be written by whoever ran it)
`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: "string" },
      out: { type: "string" },
      label: { type: "string" },
    },
  });
  const plan = planFor(values.duration ? Number(values.duration) : LONG.durationS);
  const label =
    values.label ??
    `soak-${plan.durationS >= 3600 ? `${plan.durationS / 3600}h` : `${plan.durationS / 60}m`}`;
  const outDir = values.out
    ? path.resolve(values.out)
    : resultsDir(path.join(PROJECT_ROOT, "bench", "results"), new Date(), label);
  const machine = describeMachine();
  console.log(`soak: ${plan.durationS} s in one VM boot; results to ${outDir}`);
  const { vm, run } = await runSoak(plan, { onOutput: (c) => process.stdout.write(c) });
  mkdirSync(outDir, { recursive: true });
  writeFileSync(
    path.join(outDir, "samples.json"),
    JSON.stringify({ schema: 1, machine, plan, ...run }, null, 1) + "\n",
  );
  for (const [from, to] of [
    [".dmesg", "guest-dmesg.txt"],
    ["agent.log", "agent.log"],
  ] as const) {
    if (existsSync(path.join(vm.outDir, from))) {
      copyFileSync(path.join(vm.outDir, from), path.join(outDir, to));
    }
  }
  const verdicts = judge(run, RECORD_LIMITS);
  const table = verdictTable(verdicts);
  writeFileSync(
    path.join(outDir, "summary.md"),
    `# Soak summary against the targets\n\n${plan.durationS} s, ${run.samples.length} samples, kernel ${run.kernel ?? "?"}; guest exit ${vm.exitCode}.\n\n${table}`,
  );
  if (!existsSync(path.join(outDir, "NOTES.md"))) {
    writeFileSync(path.join(outDir, "NOTES.md"), notesTemplate(plan, machine, verdicts));
  }
  console.log(`\n${table}`);
  console.log(`soak: written to ${outDir}`);
  process.exitCode = vm.exitCode === 0 && verdicts.every((v) => v.pass) ? 0 : 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
