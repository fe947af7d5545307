// The `chain` workload: a request crosses several small services in a row, so the tail of each
// hop's scheduling delay adds up end to end (a microservice call graph in miniature). `hops`
// node:http services (chain-service.ts), each a process of its own in the critical cgroup doing
// a little calibrated hashing per request, call each other over loopback; the open-loop generator
// of the http workload (http-loadgen.ts) in the loadgen cgroup sends to the first at a fixed rate
// and times each request from its scheduled send time to the end of the first hop's answer, which
// comes only after the last hop has answered.
//
// The services are long-lived, as a deployment's are: started once per arm run under the arm's
// scheduler (Workload.startArm) and warmed up with load at the cell's rate, then kept across the
// arm's steps. Started per cell, six node processes starting at once under the emulated CPU
// spent the window compiling rather than serving. Each cell starts only its generator.
import type { ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { spawnInCgroup } from "../../src/cgroup/spawn.js";
import { freePorts } from "../../src/util/free-ports.js";
import type { CellContext, RunningWorkload, Workload } from "../workload.js";
import type { LoadgenResult } from "./http-loadgen.js";
import { calibrateHashIters } from "./http-server.js";
import { readLines, stopChild } from "./lines.js";

export interface ChainOptions {
  /** Services a request crosses (>= 2; the chain has at least 5). */
  hops: number;
  /** End-to-end requests per second, sent on schedule whatever the answers do. */
  rate: number;
  /** CPU work per hop per request, in microseconds of hashing on this CPU (calibrated once). */
  workUs: number;
  /** Fixed iteration count per hop instead of calibrating (0: calibrate). */
  iters: number;
  connections: number;
  drainS: number;
  /** Seconds of load at `rate` through a freshly started chain before its first cell. */
  warmupS: number;
}

// Each hop costs several times its hashing in guest CPU per request under the emulated CPU, most
// of it node's HTTP path on both ends of a call, so a request through 5 hops costs several http
// workload requests. The rate is chosen so that on an otherwise idle host the chain needs well
// under one of the 2 vCPUs: at bg=0 it is far from saturated, and what grows with the hogs is
// waiting, not overload. The critical cgroup's CPU in each record shows whether that held.
export const CHAIN_DEFAULTS: ChainOptions = {
  hops: 5,
  rate: 10,
  workUs: 100,
  iters: 0,
  connections: 8,
  drainS: 2,
  warmupS: 5,
};

const here = path.dirname(fileURLToPath(import.meta.url));

/** Each hop's argv: hop i listens on ports[i] and calls ports[i + 1]; the last calls nobody. */
export function chainArgv(ports: readonly number[], iters: number): string[][] {
  return ports.map((port, i) => [
    process.execPath,
    path.join(here, "chain-service.js"),
    ...["--port", String(port), "--iters", String(iters)],
    ...(i + 1 < ports.length ? ["--next", String(ports[i + 1])] : []),
  ]);
}

interface RunningChain {
  port: number;
  hops: ChildProcess[];
}

export function chainWorkload(o: ChainOptions): Workload {
  if (!(o.hops >= 2)) throw new Error(`chain: --chain-hops must be at least 2 (${o.hops})`);
  let iters = o.iters;
  let chain: RunningChain | null = null;
  return {
    name: "chain",
    needsLoadgen: true,
    hogMarginS: 2 + o.drainS,
    supportsRealtime: false,
    async init() {
      // Once, on an idle guest, so every arm and step serves the same work per hop.
      if (!iters) iters = calibrateHashIters(o.workUs);
    },
    async startArm(ctx) {
      const started = await startChain(ctx, o, iters);
      chain = started;
      return async () => {
        chain = null;
        await Promise.all(started.hops.map((h) => stopChild(h)));
      };
    },
    prepare: (ctx) => {
      if (!chain) throw new Error("chain: no services running (the ladder starts them per arm)");
      const dead = chain.hops.findIndex((h) => h.exitCode !== null || h.signalCode !== null);
      if (dead >= 0) throw new Error(`chain: hop ${dead} is gone`);
      return prepareChain(ctx, o, iters, chain.port);
    },
  };
}

function spawnGenerator(ctx: CellContext, o: ChainOptions, port: number, durationS: number) {
  return spawnInCgroup(ctx.cg.loadgen!, [
    process.execPath,
    path.join(here, "http-loadgen.js"),
    ...["--port", String(port), "--rate", String(o.rate)],
    ...["--duration", String(durationS), "--connections", String(o.connections)],
    ...["--drain", String(o.drainS)],
  ]);
}

/** The services in the critical cgroup, listening, then warmed up by a generator run. */
async function startChain(ctx: CellContext, o: ChainOptions, iters: number): Promise<RunningChain> {
  if (!ctx.cg.loadgen) throw new Error("chain workload needs the loadgen cgroup");
  const ports = await freePorts(o.hops);
  // Started together: node's start-up is the slow part under emulation, and no hop connects to
  // the next before the first request comes through.
  const hops = chainArgv(ports, iters).map((argv) => spawnInCgroup(ctx.cg.critical, argv));
  const children = [...hops];
  try {
    await Promise.all(
      hops.map((h, i) =>
        readLines(h, `chain hop ${i}`).next((l) => l.startsWith("{"), 180_000, "port"),
      ),
    );
    if (o.warmupS > 0) {
      const gen = spawnGenerator(ctx, o, ports[0]!, o.warmupS);
      children.push(gen);
      const out = readLines(gen, "chain warm-up");
      await out.next((l) => l === "ready", 180_000, "ready");
      gen.kill("SIGUSR1");
      const line = await out.next(
        (l) => l.startsWith("{"),
        (o.warmupS + o.drainS + 120) * 1000,
        "result",
      );
      const r = JSON.parse(line) as LoadgenResult;
      if (r.errors) throw new Error(`chain warm-up: ${r.errors} of ${r.sent} requests failed`);
      await stopChild(gen);
    }
    return { port: ports[0]!, hops };
  } catch (err) {
    await Promise.all(children.map((c) => stopChild(c)));
    throw err;
  }
}

async function prepareChain(
  ctx: CellContext,
  o: ChainOptions,
  iters: number,
  port: number,
): Promise<RunningWorkload> {
  const gen = spawnGenerator(ctx, o, port, ctx.durationS);
  const close = () => stopChild(gen);
  try {
    const genOut = readLines(gen, "chain loadgen");
    await genOut.next((l) => l === "ready", 120_000, "ready");
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
          chain_hops: o.hops,
          chain_rate: r.rate,
          chain_sent: r.sent,
          chain_ok: r.ok,
          chain_errors: r.errors,
          chain_timeouts: r.timeouts,
          chain_send_lag_p99_us: r.send_lag_p99_us,
          chain_send_lag_max_us: Math.round(r.send_lag_max_us),
          chain_work_us: o.workUs,
          chain_work_iters: iters,
        };
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}
