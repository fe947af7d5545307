// One service of the `chain` workload: a node:http server that does a fixed amount of hashing per
// request and then, unless it is the last hop, calls the next service over loopback and answers
// once that one has. Started inside the critical cgroup by bench/workloads/chain.ts:
//   node dist/bench/workloads/chain-service.js --port P [--next Q] --iters N
// Prints {"port":P,"pid":N} once listening on 127.0.0.1:P; exits on SIGTERM or when its parent
// goes away. The answer's body is the chain's process ids, this one first ("pid,pid,..."), so a
// test can see that every hop is a process of its own.
//
// Downstream calls go over keep-alive connections with one request in flight each (the load
// generator's raw-socket client, bench/workloads/http-loadgen.ts): a connection is opened when
// every open one is busy, so the pool grows to the concurrency the caller offers and no further.
// node's http.Agent cost about as much CPU per request as a whole hop under the emulated CPU.
import http from "node:http";
import { parseArgs } from "node:util";
import { Conn } from "./http-loadgen.js";
import { hashWork } from "./http-server.js";

export class ConnPool {
  private conns: Conn[] = [];

  constructor(private readonly port: number) {}

  /** An idle connection, or a new one when none is (requests may be written before it connects). */
  take(): Conn {
    const idle = this.conns.find((c) => c.idle);
    if (idle) return idle;
    this.conns = this.conns.filter((c) => c.alive);
    const c = new Conn(this.port);
    // A refused connection fails its request through send()'s callback; nothing awaits ready.
    c.ready.catch(() => {});
    this.conns.push(c);
    return c;
  }

  get size(): number {
    return this.conns.length;
  }

  close(): void {
    for (const c of this.conns) c.close();
    this.conns = [];
  }
}

export interface ChainServiceOptions {
  port: number;
  /** The next hop's port; absent for the last hop. */
  next?: number;
  iters: number;
}

/** Serves one hop in this process; resolves with the server once it listens. */
export function serveHop(o: ChainServiceOptions): Promise<http.Server> {
  const pool = o.next ? new ConnPool(o.next) : null;
  const me = String(process.pid);
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      hashWork(o.iters);
      const reply = (status: number, body: string) => {
        res.writeHead(status, { "content-type": "text/plain", "content-length": body.length });
        res.end(body);
      };
      if (!pool) return reply(200, me);
      pool.take().send((ok, body) => {
        if (ok) reply(200, `${me},${body.toString("latin1")}`);
        else reply(502, me);
      });
    });
  });
  // The chain's connections live for the whole run; node's 5 s default would drop them between
  // the warm-up and the measured window.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  server.on("close", () => pool?.close());
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, "127.0.0.1", () => resolve(server));
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string" },
      next: { type: "string" },
      iters: { type: "string", default: "4" },
    },
  });
  const o: ChainServiceOptions = {
    port: Number(values.port),
    ...(values.next ? { next: Number(values.next) } : {}),
    iters: Number(values.iters),
  };
  if (!(o.port > 0 && o.iters >= 0)) throw new Error("chain-service: --port and --iters needed");
  await serveHop(o);
  console.log(JSON.stringify({ port: o.port, pid: process.pid }));
  process.on("SIGTERM", () => process.exit(0));
  // Never outlive the ladder: a stray service would load the next arm's window.
  setInterval(() => {
    if (process.ppid === 1) process.exit(0);
  }, 1000).unref();
}

if (process.argv[1]?.endsWith("chain-service.js")) await main();
