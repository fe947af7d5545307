// The http workload's generator on the host, against in-process servers: it keeps its schedule
// (open loop), and a slow server's queueing shows up in the latencies instead of being hidden.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { openConns, runOpenLoop } from "../../bench/workloads/http-loadgen.js";
import { calibrateHashIters, hashWork } from "../../bench/workloads/http-server.js";

async function serve(delayMs: number): Promise<{ port: number; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    const reply = () => res.end(hashWork(1));
    if (delayMs) setTimeout(reply, delayMs);
    else reply();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

test("loadgen: sends rate x duration requests on schedule and times every one", async () => {
  const s = await serve(0);
  const conns = await openConns(s.port, 2);
  const r = await runOpenLoop(conns, { rate: 200, durationS: 0.5, drainS: 1 });
  for (const c of conns) c.close();
  await s.close();
  assert.equal(r.sent, 100);
  assert.equal(r.ok, 100);
  assert.equal(r.samples, 100);
  assert.equal(r.errors + r.timeouts, 0);
  assert.ok(r.p50_us > 0 && r.p50_us <= r.p99_us && r.p99_us <= r.p999_us);
});

test("loadgen: a server slower than the rate queues, and the queueing is measured", async () => {
  // 20 ms per request on one connection at 100 req/s: offered load is twice the capacity, so
  // request i waits about i * 10 ms. A closed-loop tool would report ~20 ms throughout.
  const s = await serve(20);
  const conns = await openConns(s.port, 1);
  const r = await runOpenLoop(conns, { rate: 100, durationS: 0.5, drainS: 5 });
  for (const c of conns) c.close();
  await s.close();
  assert.equal(r.sent, 50);
  assert.equal(r.ok, 50);
  assert.ok(r.p99_us > 300_000, `p99 ${r.p99_us} us should include ~0.5 s of queueing`);
  assert.ok(r.send_lag_p99_us < 50_000, "the generator itself kept its schedule");
});

test("loadgen: what is still out at the end of the drain is cut off and counted", async () => {
  const s = await serve(300);
  const conns = await openConns(s.port, 1);
  const r = await runOpenLoop(conns, { rate: 100, durationS: 0.1, drainS: 0.2 });
  for (const c of conns) c.close();
  await s.close();
  assert.equal(r.sent, 10);
  assert.ok(r.timeouts >= 9, `timeouts ${r.timeouts}`);
  assert.equal(r.samples, r.ok + r.timeouts, "cut-off requests stay in the percentiles");
});

test("server work: calibration scales the iteration count to the target time", () => {
  const small = calibrateHashIters(100);
  const large = calibrateHashIters(2000);
  assert.ok(small >= 1 && large > small, `${small} vs ${large}`);
  assert.match(hashWork(3), /^[0-9a-f]{64}$/);
});
