// Runs inside the sched_ext VM: the noisy-neighbour ladder, arms interleaved within each
// repetition (rep 0 of every arm and step before rep 1 of any), raw records to results.json.
//   node dist/bench/ladder.js --arms fair,scx_slo --steps 0,2,4,8 --reps 3 --duration 10 --out DIR
import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { createCgroup, readCpuStat, removeCgroup } from "../src/cgroup/cgroupfs.js";
import { sleep } from "../src/util/process.js";
import { ALL_ARMS, setUpArm, type ArmName, type BenchCgroups } from "./arms.js";
import { runCyclictest } from "./workloads/cyclictest.js";
import { startHogs } from "./workloads/stress.js";
import type { BenchRecord, ResultsFile } from "./results.js";

const { values } = parseArgs({
  options: {
    arms: { type: "string", default: "fair,scx_slo" },
    steps: { type: "string", default: "0,2,4,8" },
    reps: { type: "string", default: "3" },
    duration: { type: "string", default: "10" },
    workloads: { type: "string", default: "cyclictest" },
    out: { type: "string", default: process.env.SCXVM_OUT ?? "/tmp" },
    machine: { type: "string", default: "" },
  },
});

const arms = values.arms.split(",") as ArmName[];
for (const a of arms) if (!ALL_ARMS.includes(a)) throw new Error(`unknown arm ${a}`);
const steps = values.steps.split(",").map(Number);
const reps = Number(values.reps);
const durationS = Number(values.duration);
const workloads = values.workloads.split(",");

const cg: BenchCgroups = { critical: "/bench/critical", batch: "/bench/batch", criticalId: 0n };
cg.criticalId = createCgroup(cg.critical);
createCgroup(cg.batch);

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

for (let rep = 0; rep < reps; rep++) {
  for (const workload of workloads) {
    for (const bg of steps) {
      for (const arm of arms) {
        const setup = await setUpArm(arm, cg);
        const critBefore = usage(cg.critical);
        const batchBefore = usage(cg.batch);
        const hogs = startHogs(cg.batch, bg, durationS + 2, setup.batchIdle);
        await sleep(bg ? 1000 : 0);
        let record: BenchRecord | undefined;
        try {
          if (workload !== "cyclictest") throw new Error(`workload ${workload} not available`);
          const lat = await runCyclictest({ cgroup: cg.critical, durationS });
          const batchOps = await hogs.done;
          record = {
            arm,
            workload,
            bg,
            rep,
            ...lat,
            batch_ops_per_s: batchOps,
            critical_cpu_usec: usage(cg.critical) - critBefore,
            batch_cpu_usec: usage(cg.batch) - batchBefore,
          };
        } finally {
          await hogs.done.catch(() => null);
          const extra = await setup.teardown();
          if (record) Object.assign(record, extra);
        }
        results.records.push(record);
        writeFileSync(outFile, JSON.stringify(results, null, 1));
        done++;
        console.log(
          `[${done}/${total}] rep ${rep} ${workload} bg=${bg} ${arm.padEnd(11)} p50 ${record.p50_us} us  p99 ${record.p99_us} us  p999 ${record.p999_us} us  batch ${record.batch_ops_per_s?.toFixed(0) ?? "-"} ops/s ${record.sched_wait_p99_us !== undefined ? `(in-kernel wait p99 ${record.sched_wait_p99_us} us, misses ${record.sched_misses}, kicks ${record.preempt_kicks})` : ""}`,
        );
      }
    }
  }
}
removeCgroup(cg.critical);
removeCgroup(cg.batch);
removeCgroup("/bench");
