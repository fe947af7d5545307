// Runs inside the sched_ext VM: the noisy-neighbour ladder, arms interleaved within each
// repetition (rep 0 of every arm and step before rep 1 of any), raw records to results.json.
//   node dist/bench/ladder.js --arms fair,scx_slo --steps 0,2,4,8 --reps 3 --duration 10 --out DIR
//     [--workloads cyclictest,http,pgbench] [--http-rate 50] [--http-work-us 200] [--http-iters N]
//     [--http-connections 8] [--pg-rate 200] [--pg-clients 4] [--pg-cpu-max "50000 100000"]
//     [--pg-script select-only|tpcb-like]
import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { createCgroup, readCpuStat, removeCgroup } from "../src/cgroup/cgroupfs.js";
import { sleep } from "../src/util/process.js";
import {
  AGENT_CGROUP,
  ALL_ARMS,
  armsRefusedBy,
  RT_PRIORITY,
  setUpArm,
  type ArmName,
  type BenchCgroups,
} from "./arms.js";
import type { BenchRecord, ResultsFile } from "./results.js";
import type { Workload } from "./workload.js";
import { HTTP_DEFAULTS } from "./workloads/http.js";
import { makeWorkload } from "./workloads/index.js";
import { PGBENCH_DEFAULTS } from "./workloads/pgbench.js";
import { startHogs } from "./workloads/stress.js";

const { values } = parseArgs({
  options: {
    arms: { type: "string", default: "fair,scx_slo" },
    steps: { type: "string", default: "0,2,4,8" },
    reps: { type: "string", default: "3" },
    duration: { type: "string", default: "10" },
    workloads: { type: "string", default: "cyclictest" },
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
  },
});

const arms = values.arms.split(",") as ArmName[];
for (const a of arms) if (!ALL_ARMS.includes(a)) throw new Error(`unknown arm ${a}`);
const steps = values.steps.split(",").map(Number);
const reps = Number(values.reps);
const durationS = Number(values.duration);
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
  }),
);

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
};
const outFile = path.join(values.out, "results.json");
const total = reps * steps.length * arms.length * workloads.length;
let done = 0;

function usage(cgroup: string): number {
  return readCpuStat(cgroup).usage_usec ?? 0;
}

/** One cell: the arm set up, the workload started, hogs, the measured window, everything undone. */
async function runCell(
  workload: Workload,
  arm: ArmName,
  bg: number,
  rep: number,
): Promise<BenchRecord> {
  const setup = await setUpArm(arm, cg);
  let record: BenchRecord | undefined;
  try {
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
      const started = Date.now();
      const hogs = startHogs(cg.batch, bg, durationS + workload.hogMarginS, setup.batchIdle);
      try {
        await sleep(bg ? 1000 : 0);
        const lat = await running.measure();
        const batchOps = await hogs.done;
        record = {
          arm,
          workload: workload.name,
          bg,
          rep,
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
        };
      } finally {
        await hogs.done.catch(() => null);
      }
    } finally {
      await running.close();
    }
  } finally {
    const extra = await setup.teardown();
    if (record) Object.assign(record, extra);
  }
  return record!;
}

function describe(r: BenchRecord): string {
  const parts = [
    `rep ${r.rep} ${r.workload} bg=${r.bg} ${r.arm.padEnd(11)}`,
    `p50 ${r.p50_us} us  p99 ${r.p99_us} us  p999 ${r.p999_us} us`,
    `batch ${r.batch_ops_per_s?.toFixed(0) ?? "-"} ops/s`,
  ];
  if (r.http_send_lag_p99_us !== undefined) {
    parts.push(`(send lag p99 ${r.http_send_lag_p99_us} us, timeouts ${r.http_timeouts})`);
  }
  if (r.sched_wait_p99_us !== undefined) {
    parts.push(
      `(in-kernel wait p99 ${r.sched_wait_p99_us} us, misses ${r.sched_misses}, kicks ${r.preempt_kicks})`,
    );
  }
  return parts.join("  ");
}

try {
  for (const w of workloads) await w.init?.();
  for (let rep = 0; rep < reps; rep++) {
    for (const workload of workloads) {
      for (const bg of steps) {
        for (const arm of arms) {
          const record = await runCell(workload, arm, bg, rep);
          results.records.push(record);
          writeFileSync(outFile, JSON.stringify(results, null, 1));
          done++;
          console.log(`[${done}/${total}] ${describe(record)}`);
        }
      }
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
