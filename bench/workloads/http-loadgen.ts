// Open-loop HTTP load for the `http` workload: request i is due at t0 + i/rate whatever happened
// to earlier ones, and its latency runs from that due time to the end of the response, so time a
// request spends waiting for a free connection or for the generator itself is counted, not hidden
// (the coordinated-omission trap of closed-loop tools such as wrk).
//   node dist/bench/workloads/http-loadgen.js --port P --rate 50 --duration 10
// Warms up, prints "ready", waits for SIGUSR1 (so node's start-up stays out of the measured
// window), runs, prints one JSON line (LoadgenResult) and exits. Bounded: at most rate*duration
// requests over at most --connections keep-alive connections; whatever has not finished --drain
// seconds after the last one was due is cut off.
//
// It speaks HTTP/1.1 over raw sockets rather than through http.Agent: under the VM's emulated CPU
// the Agent cost about as much CPU per request as the service itself, and the generator's CPU is
// taken from the same two vCPUs the arms compete for.
import net from "node:net";
import { parseArgs } from "node:util";
import { percentilesFromSamples, type Percentiles } from "../stats.js";

export interface LoadgenResult extends Percentiles {
  rate: number;
  sent: number;
  ok: number;
  errors: number;
  /** Cut off at the end of the drain; counted in the percentiles with their latency so far. */
  timeouts: number;
  /** How late the generator itself got to requests (its own scheduling delay), in microseconds. */
  send_lag_p99_us: number;
  send_lag_max_us: number;
}

export interface LoadOptions {
  rate: number;
  durationS: number;
  drainS: number;
}

const REQUEST = Buffer.from("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
const nowNs = () => process.hrtime.bigint();

/** A response is complete (ok: status 200) with its body, or the connection broke. */
type Done = (ok: boolean, body: Buffer) => void;

/** One keep-alive connection with at most one request in flight (no pipelining). */
export class Conn {
  private buf: Buffer = Buffer.alloc(0);
  private done: Done | null = null;
  private readonly socket: net.Socket;
  readonly ready: Promise<void>;

  constructor(port: number) {
    this.socket = net.connect({ host: "127.0.0.1", port });
    this.socket.setNoDelay(true);
    this.ready = new Promise((resolve, reject) => {
      this.socket.once("connect", resolve);
      this.socket.once("error", reject);
    });
    this.socket.on("data", (d: Buffer) => this.onData(d));
    this.socket.on("error", () => this.fail());
    this.socket.on("close", () => this.fail());
  }

  get idle(): boolean {
    return this.done === null && !this.socket.destroyed;
  }

  get alive(): boolean {
    return !this.socket.destroyed;
  }

  send(done: Done): void {
    this.done = done;
    this.socket.write(REQUEST);
  }

  private finish(ok: boolean, body: Buffer): void {
    const done = this.done;
    this.done = null;
    done?.(ok, body);
  }

  private fail(): void {
    this.socket.destroy();
    this.finish(false, Buffer.alloc(0));
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    const end = this.buf.indexOf("\r\n\r\n");
    if (end < 0) return;
    const head = this.buf.toString("latin1", 0, end);
    const len = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    const total = end + 4 + (len ? Number(len[1]) : 0);
    if (this.buf.length < total) return;
    const body = this.buf.subarray(end + 4, total);
    this.buf = this.buf.subarray(total);
    this.finish(head.startsWith("HTTP/1.1 200"), body);
  }

  close(): void {
    this.socket.destroy();
  }
}

export async function openConns(port: number, n: number): Promise<Conn[]> {
  const conns = Array.from({ length: n }, () => new Conn(port));
  await Promise.all(conns.map((c) => c.ready));
  // Let both sides' JIT settle before anything is measured.
  for (let round = 0; round < 3; round++) {
    await Promise.all(conns.map((c) => new Promise<boolean>((resolve) => c.send(resolve))));
  }
  return conns;
}

export function runOpenLoop(conns: readonly Conn[], o: LoadOptions): Promise<LoadgenResult> {
  const total = Math.max(1, Math.round(o.rate * o.durationS));
  const intervalNs = 1e9 / o.rate;
  const latencyUs: number[] = [];
  const lagUs: number[] = [];
  const queue: number[] = []; // due, waiting for a free connection
  const inFlight = new Map<number, bigint>();
  let errors = 0;
  let next = 0;
  const t0 = nowNs() + 1_000_000n;
  const dueAt = (i: number) => t0 + BigInt(Math.round(i * intervalNs));

  return new Promise((resolve) => {
    let cutoff: NodeJS.Timeout | undefined;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      if (cutoff) clearTimeout(cutoff);
      const end = nowNs();
      for (const due of inFlight.values()) latencyUs.push(Number(end - due) / 1000);
      const ok = latencyUs.length - inFlight.size;
      resolve({
        ...percentilesFromSamples(latencyUs.map(Math.round)),
        rate: o.rate,
        sent: next,
        ok,
        errors,
        timeouts: inFlight.size,
        send_lag_p99_us: percentilesFromSamples(lagUs.map(Math.round)).p99_us,
        send_lag_max_us: Math.round(lagUs.reduce((a, b) => Math.max(a, b), 0)),
      });
    };
    const dispatch = () => {
      for (const c of conns) {
        if (!queue.length) break;
        if (c.idle) start(c, queue.shift()!);
      }
      if (!queue.length && next >= total && inFlight.size === 0) finish();
    };
    const start = (c: Conn, i: number) => {
      c.send((ok) => {
        const due = inFlight.get(i);
        if (due === undefined || finished) return;
        inFlight.delete(i);
        if (ok) latencyUs.push(Number(nowNs() - due) / 1000);
        else errors++;
        dispatch();
      });
    };
    const tick = () => {
      // Every request already due is issued now, each keeping its own due time.
      const now = nowNs();
      while (next < total && dueAt(next) <= now) {
        const due = dueAt(next);
        lagUs.push(Number(now - due) / 1000);
        inFlight.set(next, due);
        queue.push(next++);
      }
      dispatch();
      if (!conns.some((c) => c.alive)) return finish();
      if (next < total) {
        setTimeout(tick, Math.max(0, Number(dueAt(next) - nowNs()) / 1e6));
      } else if (!finished) {
        cutoff ??= setTimeout(finish, o.drainS * 1000);
      }
    };
    setTimeout(tick, 1);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string" },
      rate: { type: "string", default: "50" },
      duration: { type: "string", default: "10" },
      connections: { type: "string", default: "8" },
      drain: { type: "string", default: "1" },
    },
  });
  const port = Number(values.port);
  const connections = Number(values.connections);
  const o: LoadOptions = {
    rate: Number(values.rate),
    durationS: Number(values.duration),
    drainS: Number(values.drain),
  };
  if (!(port > 0 && o.rate > 0 && o.durationS > 0 && connections > 0)) {
    throw new Error("http-loadgen: --port, --rate, --duration and --connections must be > 0");
  }
  const conns = await openConns(port, connections);
  // The interval keeps node alive while it waits (a signal listener does not), and ends a
  // generator whose ladder has gone away.
  const orphanCheck = setInterval(() => process.ppid === 1 && process.exit(1), 1000);
  const go = new Promise<void>((resolve) => process.once("SIGUSR1", () => resolve()));
  console.log("ready");
  await go;
  clearInterval(orphanCheck);
  const result = await runOpenLoop(conns, o);
  console.log(JSON.stringify(result));
  for (const c of conns) c.close();
  process.exit(0);
}

if (process.argv[1]?.endsWith("http-loadgen.js")) await main();
