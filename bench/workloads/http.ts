// The `http` workload: a small node:http service in the critical cgroup under open-loop load from
// a generator in the loadgen cgroup, both on 127.0.0.1 inside the guest. The generator stands in
// for remote clients, so every arm treats its cgroup as it treats the critical one (bench/arms.ts);
// its own lateness is recorded (http_send_lag_p99_us) to show it stayed out of the figures.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { spawnInCgroup } from "../../src/cgroup/spawn.js";
import type { CellContext, RunningWorkload, Workload } from "../workload.js";
import { calibrateHashIters } from "./http-server.js";
import type { LoadgenResult } from "./http-loadgen.js";
import { readLines, stopChild } from "./lines.js";

export interface HttpOptions {
  /** Requests per second, sent on schedule whatever the responses do. */
  rate: number;
  /** CPU work per request, in microseconds of hashing on this CPU (calibrated once). */
  workUs: number;
  /** Fixed iteration count instead of calibrating (0: calibrate). */
  iters: number;
  connections: number;
  drainS: number;
}

export const HTTP_DEFAULTS: HttpOptions = {
  rate: 50,
  workUs: 200,
  iters: 0,
  connections: 8,
  drainS: 1,
};

const here = path.dirname(fileURLToPath(import.meta.url));

export function httpWorkload(o: HttpOptions): Workload {
  let iters = o.iters;
  return {
    name: "http",
    needsLoadgen: true,
    hogMarginS: 2 + o.drainS,
    supportsRealtime: false,
    async init() {
      // Once, on an idle guest, so every arm and step serves the same work per request.
      if (!iters) iters = calibrateHashIters(o.workUs);
    },
    prepare: (ctx) => prepareHttp(ctx, o, iters),
  };
}

async function prepareHttp(
  ctx: CellContext,
  o: HttpOptions,
  iters: number,
): Promise<RunningWorkload> {
  if (!ctx.cg.loadgen) throw new Error("http workload needs the loadgen cgroup");
  const server = spawnInCgroup(ctx.cg.critical, [
    process.execPath,
    path.join(here, "http-server.js"),
    "--iters",
    String(iters),
  ]);
  const children = [server];
  const close = async () => {
    await Promise.all(children.map((c) => stopChild(c)));
  };
  try {
    const serverOut = readLines(server, "http-server");
    const portLine = await serverOut.next((l) => l.startsWith("{"), 60_000, "port");
    const { port } = JSON.parse(portLine) as { port: number };
    const gen = spawnInCgroup(ctx.cg.loadgen, [
      process.execPath,
      path.join(here, "http-loadgen.js"),
      ...["--port", String(port), "--rate", String(o.rate)],
      ...["--duration", String(ctx.durationS), "--connections", String(o.connections)],
      ...["--drain", String(o.drainS)],
    ]);
    children.push(gen);
    const genOut = readLines(gen, "http-loadgen");
    await genOut.next((l) => l === "ready", 60_000, "ready");
    return {
      close,
      async measure() {
        gen.kill("SIGUSR1");
        const line = await genOut.next(
          (l) => l.startsWith("{"),
          (ctx.durationS + o.drainS + 30) * 1000,
          "result",
        );
        const r = JSON.parse(line) as LoadgenResult;
        return {
          p50_us: r.p50_us,
          p99_us: r.p99_us,
          p999_us: r.p999_us,
          samples: r.samples,
          http_rate: r.rate,
          http_sent: r.sent,
          http_ok: r.ok,
          http_errors: r.errors,
          http_timeouts: r.timeouts,
          http_send_lag_p99_us: r.send_lag_p99_us,
          http_send_lag_max_us: Math.round(r.send_lag_max_us),
          http_work_us: o.workUs,
          http_work_iters: iters,
        };
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}
