// The ladder's workloads by name.
import type { Workload } from "../workload.js";
import { chainWorkload, type ChainOptions } from "./chain.js";
import { runCyclictest } from "./cyclictest.js";
import { httpWorkload, type HttpOptions } from "./http.js";
import { pgbenchWorkload, type PgbenchOptions } from "./pgbench.js";

export const WORKLOAD_NAMES = ["cyclictest", "http", "pgbench", "chain"] as const;

export interface WorkloadOptions {
  http: HttpOptions;
  pgbench: PgbenchOptions;
  chain: ChainOptions;
}

const cyclictest: Workload = {
  name: "cyclictest",
  needsLoadgen: false,
  hogMarginS: 2,
  supportsRealtime: true,
  prepare: async (ctx) => ({
    measure: async () => ({
      ...(await runCyclictest({
        cgroup: ctx.cg.critical,
        durationS: ctx.durationS,
        realtimePriority: ctx.realtimePriority,
      })),
    }),
    close: async () => {},
  }),
};

export function makeWorkload(name: string, o: WorkloadOptions): Workload {
  switch (name) {
    case "cyclictest":
      return cyclictest;
    case "http":
      return httpWorkload(o.http);
    case "pgbench":
      return pgbenchWorkload(o.pgbench);
    case "chain":
      return chainWorkload(o.chain);
    default:
      throw new Error(`unknown workload ${name} (known: ${WORKLOAD_NAMES.join(", ")})`);
  }
}
