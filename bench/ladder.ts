// Runs inside the sched_ext VM: the noisy-neighbour ladder, arms interleaved within each
// repetition (rep 0 of every arm before rep 1 of any), raw records to results.json. Order and
// cells: bench/plan.ts (rep -> workload -> arm -> step -> hog kind; an arm's scheduler is
// started once per rep and workload and kept across its steps).
//   node dist/bench/ladder.js --arms fair,scx_slo --steps 0,2,4,8 --reps 3 --duration 10 --out DIR
//     [--workloads cyclictest,http,pgbench,chain] [--hog-kinds int64,mix,cache,vm]
//     [--http-rate 50] [--http-work-us 200] [--http-iters N] [--http-connections 8]
//     [--pg-rate 200] [--pg-clients 4] [--pg-cpu-max "50000 100000"]
//     [--pg-script select-only|tpcb-like]
//     [--chain-hops 5] [--chain-rate 10] [--chain-work-us 100] [--chain-iters N]
//     [--chain-connections 8] [--chain-warmup 5]
// A failed arm run (a peer that does not attach, a workload that breaks) is recorded under
// `failures` and the ladder goes on with the next; it exits 1 at the end if there was any.
import { readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import {
  createCgroup,
  readCpuStat,
  removeCgroup,
  writeCgroupFile,
} from "../src/cgroup/cgroupfs.js";
import { sleep } from "../src/util/process.js";
import {
  AGENT_CGROUP,
  ALL_ARMS,
  detachScxSlo,
  armsRefusedBy,
  RT_PRIORITY,
  setUpArm,
  type ArmName,
  type ArmSetup,
  type BenchCgroups,
} from "./arms.js";
import { isPeerArm, kernelSchedState, layeredConfigPath, peerCommand } from "./peer-arms.js";
import { armRuns, cellCount, type ArmRun, type CellSpec } from "./plan.js";
import type { BenchRecord, ResultsFile } from "./results.js";
import type { Workload } from "./workload.js";
import { CHAIN_DEFAULTS } from "./workloads/chain.js";
import { HTTP_DEFAULTS } from "./workloads/http.js";
import { makeWorkload } from "./workloads/index.js";
import { PGBENCH_DEFAULTS } from "./workloads/pgbench.js";
import { DEFAULT_HOG_KIND, isHogKind, startHogs, type HogKind } from "./workloads/stress.js";

const { values } = parseArgs({
  options: {
    arms: { type: "string", default: "fair,scx_slo" },
    steps: { type: "string", default: "0,2,4,8" },
    reps: { type: "string", default: "3" },
    duration: { type: "string", default: "10" },
    workloads: { type: "string", default: "cyclictest" },
    "hog-kinds": { type: "string", default: DEFAULT_HOG_KIND },
    out: { type: "string", default: process.env.SCXVM_OUT ?? "/tmp" },
    machine: { type: "string", default: "" },
    "http-rate": { type: "string", default: String(HTTP_DEFAULTS.rate) },
    "http-work-us": { type: "string", default: String(HTTP_DEFAULTS.workUs) },
    "http-iters": { type: "string", default: String(HTTP_DEFAULTS.iters) },
    "http-connections": { type: "string", default: String(HTTP_DEFAULTS.connections) },
    "pg-rate": { type: "string", default: String(PGBENCH_DEFAULTS.rate) },
    "pg-clients": { type: "string", default: String(PGBENCH_DEFAULTS.clients) },
    "pg-cpu-max": { type: "string", default: PGBENCH_DEFAULTS.cpuMax },
    "pg-script": { type: "string", default: PGBENCH_DEFAULTS.script },
    "chain-hops": { type: "string", default: String(CHAIN_DEFAULTS.hops) },
    "chain-rate": { type: "string", default: String(CHAIN_DEFAULTS.rate) },
    "chain-work-us": { type: "string", default: String(CHAIN_DEFAULTS.workUs) },
    "chain-iters": { type: "string", default: String(CHAIN_DEFAULTS.iters) },
    "chain-connections": { type: "string", default: String(CHAIN_DEFAULTS.connections) },
    "chain-warmup": { type: "string", default: String(CHAIN_DEFAULTS.warmupS) },
  },
});

const arms = values.arms.split(",") as ArmName[];
for (const a of arms) if (!ALL_ARMS.includes(a)) throw new Error(`unknown arm ${a}`);
const steps = values.steps.split(",").map(Number);
const reps = Number(values.reps);
const durationS = Number(values.duration);
const hogKinds = values["hog-kinds"].split(",").filter(Boolean);
for (const k of hogKinds) if (!isHogKind(k)) throw new Error(`unknown hog kind ${k}`);
const workloads: Workload[] = values.workloads.split(",").map((name) =>
  makeWorkload(name, {
    http: {
      ...HTTP_DEFAULTS,
      rate: Number(values["http-rate"]),
      workUs: Number(values["http-work-us"]),
      iters: Number(values["http-iters"]),
      connections: Number(values["http-connections"]),
    },
    pgbench: {
      ...PGBENCH_DEFAULTS,
      rate: Number(values["pg-rate"]),
      clients: Number(values["pg-clients"]),
      cpuMax: values["pg-cpu-max"],
      script: values["pg-script"],
    },
    chain: {
      ...CHAIN_DEFAULTS,
      hops: Number(values["chain-hops"]),
      rate: Number(values["chain-rate"]),
      workUs: Number(values["chain-work-us"]),
      iters: Number(values["chain-iters"]),
      connections: Number(values["chain-connections"]),
      warmupS: Number(values["chain-warmup"]),
    },
  }),
);
const byName = new Map(workloads.map((w) => [w.name, w]));

const refused = armsRefusedBy(arms, workloads);
if (refused) throw new Error(refused);

const cg: BenchCgroups = { critical: "/bench/critical", batch: "/bench/batch", criticalId: 0n };
cg.criticalId = createCgroup(cg.critical);
createCgroup(cg.batch);
if (workloads.some((w) => w.needsLoadgen)) {
  cg.loadgen = "/bench/loadgen";
  cg.loadgenId = createCgroup(cg.loadgen);
}

const results: ResultsFile = {
  schema: 1,
  machine:
    values.machine ||
    `${os.cpus()[0]?.model ?? "cpu"}; ${os.cpus().length} vCPUs; ${Math.round(os.totalmem() / 2 ** 20)} MiB; guest kernel ${os.release()}`,
  started: new Date().toISOString(),
  records: [],
  failures: [],
  peers: peersRan(),
};
const outFile = path.join(values.out, "results.json");
const plan = { arms, workloads: workloads.map((w) => w.name), steps, reps, hogKinds };
const hasCpuMax = (w: string) => byName.get(w)?.criticalCpuMax !== undefined;
const runs = armRuns(plan, hasCpuMax);
const total = cellCount(plan);
let done = 0;

/** How each peer arm of this run was started, and scx_layered's layer config, for the report. */
function peersRan(): ResultsFile["peers"] {
  const out: NonNullable<ResultsFile["peers"]> = {};
  for (const arm of arms) {
    if (!isPeerArm(arm)) continue;
    out[arm] = { command: peerCommand(arm).argv.join(" ") };
    if (arm === "layered") {
      out[arm].config = JSON.parse(readFileSync(layeredConfigPath(), "utf8")) as unknown;
    }
  }
  return out;
}

function usage(cgroup: string): number {
  return readCpuStat(cgroup).usage_usec ?? 0;
}

/** One cell under an arm already set up: the workload started, hogs, the measured window. */
async function runCell(
  workload: Workload,
  arm: ArmName,
  setup: ArmSetup,
  cell: CellSpec,
  rep: number,
): Promise<BenchRecord> {
  const { bg } = cell;
  const running = await workload.prepare({
    cg,
    durationS,
    ...(setup.criticalRealtime ? { realtimePriority: RT_PRIORITY } : {}),
  });
  try {
    const critBefore = usage(cg.critical);
    const batchBefore = usage(cg.batch);
    const ownBefore = setup.ownCgroup ? usage(setup.ownCgroup) : 0;
    const genBefore = cg.loadgen ? usage(cg.loadgen) : 0;
    await setup.cellStart();
    const schedBefore = kernelSchedState();
    const started = Date.now();
    const hogs = startHogs(
      cg.batch,
      bg,
      durationS + workload.hogMarginS,
      setup.batchIdle,
      bg ? (cell.hogKind as HogKind) : undefined,
    );
    try {
      await sleep(bg ? 1000 : 0);
      const lat = await running.measure();
      const batchOps = await hogs.done;
      const schedAfter = kernelSchedState();
      return {
        arm,
        workload: workload.name,
        bg,
        rep,
        hog_kind: cell.hogKind,
        ...lat,
        batch_ops_per_s: batchOps,
        critical_cpu_usec: usage(cg.critical) - critBefore,
        batch_cpu_usec: usage(cg.batch) - batchBefore,
        ...(cg.loadgen && workload.needsLoadgen
          ? { loadgen_cpu_usec: usage(cg.loadgen) - genBefore }
          : {}),
        ...(setup.ownCgroup ? { agent_cpu_usec: usage(setup.ownCgroup) - ownBefore } : {}),
        window_s: (Date.now() - started) / 1000,
        duration_s: durationS,
        // The scheduler that ran the window: named by the kernel at its end, and the same
        // attach throughout (enable_seq counts attaches).
        sched_ops: schedAfter.ops,
        ...(setup.attachS !== undefined ? { arm_attach_s: setup.attachS } : {}),
        ...(lostDuring(setup, schedBefore, schedAfter) ? { sched_lost: true } : {}),
        ...(await setup.cellEnd()),
      };
    } finally {
      await hogs.done.catch(() => null);
    }
  } finally {
    await running.close();
  }
}

/** Whether the kernel has the arm's scheduler (or, for the fair arms, none). */
function armInPlace(setup: ArmSetup): boolean {
  const k = kernelSchedState();
  return setup.opsPrefix === null ? k.state === "disabled" : !!k.ops?.startsWith(setup.opsPrefix);
}

/** Whether the window did not run under the arm's scheduler all through. */
function lostDuring(
  setup: ArmSetup,
  before: ReturnType<typeof kernelSchedState>,
  after: ReturnType<typeof kernelSchedState>,
): boolean {
  if (setup.opsPrefix === null) return after.state !== "disabled";
  return (
    !after.ops?.startsWith(setup.opsPrefix) ||
    (before.enableSeq !== null && after.enableSeq !== before.enableSeq)
  );
}

function describe(r: BenchRecord): string {
  const parts = [
    `rep ${r.rep} ${r.workload} bg=${r.bg} ${String(r.hog_kind).padEnd(5)} ${r.arm.padEnd(11)}`,
    `p50 ${r.p50_us} us  p99 ${r.p99_us} us  p999 ${r.p999_us} us`,
    `batch ${r.batch_ops_per_s?.toFixed(0) ?? "-"} ops/s`,
  ];
  if (r.http_send_lag_p99_us !== undefined) {
    parts.push(`(send lag p99 ${r.http_send_lag_p99_us} us, timeouts ${r.http_timeouts})`);
  }
  if (r.chain_send_lag_p99_us !== undefined) {
    parts.push(
      `(send lag p99 ${r.chain_send_lag_p99_us} us, timeouts ${r.chain_timeouts}, errors ${r.chain_errors})`,
    );
  }
  if (r.sched_wait_p99_us !== undefined) {
    parts.push(
      `(in-kernel wait p99 ${r.sched_wait_p99_us} us, misses ${r.sched_misses}, kicks ${r.preempt_kicks})`,
    );
  }
  if (r.sched_lost) parts.push("(SCHEDULER LOST during the window)");
  return parts.join("  ");
}

/** One arm's run of cells: set up once, kept across the steps, re-set-up if it was lost. */
async function runArm(run: ArmRun): Promise<void> {
  const workload = byName.get(run.workload)!;
  const arm = run.arm as ArmName;
  const logFile = path.join(values.out, "peers", `rep${run.rep}-${run.workload}-${arm}.log`);
  console.log(`rep ${run.rep} ${run.workload}: arm ${arm}`);
  let setup: ArmSetup | null = null;
  let stopServices: (() => Promise<void>) | null = null;
  let restarts = 0;
  try {
    for (const cell of run.cells) {
      setup ??= await setUpArm(arm, cg, { logFile });
      // Kept if the scheduler has to be started afresh: they are the node's, not the arm's.
      stopServices ??= workload.startArm ? await workload.startArm({ cg, durationS }) : noop;
      if (!armInPlace(setup)) {
        // Ejected since (the kernel's watchdog, say): the window must run under the arm.
        const k = kernelSchedState();
        console.log(`  ${arm}: scheduler gone before the cell (${k.state}); starting it again`);
        await setup.teardown().catch(() => null);
        setup = null;
        restarts++;
        setup = await setUpArm(arm, cg, { logFile });
      }
      let record: BenchRecord;
      try {
        record = await runCell(workload, arm, setup, cell, run.rep);
      } catch (err) {
        throw new Error(`bg=${cell.bg} ${cell.hogKind}: ${(err as Error).message}`);
      }
      if (restarts) record.arm_restarts = restarts;
      results.records.push(record);
      writeFileSync(outFile, JSON.stringify(results, null, 1));
      done++;
      console.log(`[${done}/${total}] ${describe(record)}`);
      if (record.sched_lost) {
        // The next cell runs under the arm again, from a fresh start.
        await setup.teardown().catch(() => null);
        setup = null;
        restarts++;
      }
    }
  } finally {
    try {
      await stopServices?.();
    } finally {
      if (setup) await setup.teardown();
      // The kernel finishes a detach after the unload returns; the next arm starts on fair.
      await settleDetached();
    }
  }
}

/** Waits up to 15 s for sched_ext to report no scheduler attached. */
async function settleDetached(): Promise<void> {
  const until = Date.now() + 15_000;
  while (kernelSchedState().state !== "disabled" && Date.now() < until) await sleep(50);
}

async function noop(): Promise<void> {}

try {
  for (const w of workloads) await w.init?.();
  for (let i = 0; i < runs.length; i++) {
    const run = runs[i]!;
    const workload = byName.get(run.workload)!;
    const first = i === 0 || runs[i - 1]!.workload !== run.workload || runs[i - 1]!.rep !== run.rep;
    const last =
      i === runs.length - 1 ||
      runs[i + 1]!.workload !== run.workload ||
      runs[i + 1]!.rep !== run.rep;
    // Set with no scheduler attached and the cgroup empty, lifted likewise (Workload.criticalCpuMax).
    if (first && workload.criticalCpuMax) {
      writeCgroupFile(cg.critical, "cpu.max", workload.criticalCpuMax);
    }
    try {
      await runArm(run);
    } catch (err) {
      const error = (err as Error).message;
      console.log(`FAILED rep ${run.rep} ${run.workload} ${run.arm}: ${error}`);
      results.failures!.push({ rep: run.rep, workload: run.workload, arm: run.arm, error });
      await detachScxSlo().catch((e: Error) => console.log(`scx_slo not unloaded: ${e.message}`));
      writeFileSync(outFile, JSON.stringify(results, null, 1));
    }
    if (last && workload.criticalCpuMax) {
      if (kernelSchedState().state === "disabled") writeCgroupFile(cg.critical, "cpu.max", "max");
      else console.log("cpu.max left in place: a scheduler is still attached");
    }
  }
  for (const w of workloads) await w.cleanup?.();
} finally {
  // cgroup.kill takes whatever a failed cell left behind with it.
  if (cg.loadgen) removeCgroup(cg.loadgen);
  removeCgroup(AGENT_CGROUP);
  removeCgroup(cg.critical);
  removeCgroup(cg.batch);
  removeCgroup("/bench");
}
if (results.failures!.length) {
  console.log(`ladder: ${results.failures!.length} arm run(s) failed; see results.json failures`);
  process.exitCode = 1;
}
