// The latency-critical service of the `http` workload: a node:http server that does a fixed
// amount of hashing per request. Started inside the critical cgroup by bench/workloads/http.ts:
//   node dist/bench/workloads/http-server.js --iters N
// Prints {"port":P} once listening on 127.0.0.1; exits on SIGTERM or when its parent goes away.
import { createHash } from "node:crypto";
import http from "node:http";
import { parseArgs } from "node:util";

/** One unit of request work; the iteration count is calibrated by the ladder (calibrateHashIters). */
const BLOCK = Buffer.alloc(1024, 0x5a);

export function hashWork(iters: number): string {
  let digest: Buffer = BLOCK;
  for (let i = 0; i < iters; i++)
    digest = createHash("sha256").update(BLOCK).update(digest).digest();
  return digest.toString("hex");
}

/** Iterations of hashWork that take about targetUs on this CPU (median of a few trials). */
export function calibrateHashIters(targetUs: number): number {
  hashWork(200); // JIT and crypto warm-up, so the trials measure the steady state
  const trialIters = 100;
  const perIterUs: number[] = [];
  for (let t = 0; t < 7; t++) {
    const start = process.hrtime.bigint();
    hashWork(trialIters);
    perIterUs.push(Number(process.hrtime.bigint() - start) / 1000 / trialIters);
  }
  perIterUs.sort((a, b) => a - b);
  return Math.max(1, Math.round(targetUs / perIterUs[3]!));
}

function main(): void {
  const { values } = parseArgs({ options: { iters: { type: "string", default: "20" } } });
  const iters = Number(values.iters);
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const body = hashWork(iters);
      res.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
      res.end(body);
    });
  });
  // The generator keeps its connections for the whole run; node's 5 s default would drop them
  // between a bg=0 warm-up and the measured window.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  server.listen(0, "127.0.0.1", () => {
    const addr = server.address();
    if (addr && typeof addr === "object") console.log(JSON.stringify({ port: addr.port }));
  });
  process.on("SIGTERM", () => process.exit(0));
  // Never outlive the ladder: a stray server would load the next arm's window.
  setInterval(() => {
    if (process.ppid === 1) process.exit(0);
  }, 1000).unref();
}

if (process.argv[1]?.endsWith("http-server.js")) main();
