// The chain workload's services on the host, as real processes: every hop is a process of its own
// and answers only after the rest of the chain has; the open-loop generator drives the chain as it
// drives the http workload; a broken hop fails requests instead of hanging them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { ConnPool } from "../../bench/workloads/chain-service.js";
import { chainArgv } from "../../bench/workloads/chain.js";
import { freePorts } from "../../src/util/free-ports.js";
import { openConns, runOpenLoop } from "../../bench/workloads/http-loadgen.js";

/** Starts the chain's services as child processes; resolves once each has printed its port. */
async function startChain(
  ports: number[],
  iters: number,
): Promise<{ procs: ChildProcess[]; stop: () => Promise<void> }> {
  const procs = chainArgv(ports, iters).map(([cmd, ...args]) =>
    spawn(cmd!, args, { stdio: ["ignore", "pipe", "inherit"] }),
  );
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve, reject) => {
          createInterface({ input: p.stdout! }).once("line", () => resolve());
          p.once("exit", (code) => reject(new Error(`chain service exited ${code}`)));
        }),
    ),
  );
  const stop = async () => {
    await Promise.all(
      procs.map((p) =>
        p.exitCode !== null || p.signalCode !== null
          ? null
          : new Promise<void>((resolve) => {
              p.once("exit", () => resolve());
              p.kill("SIGTERM");
            }),
      ),
    );
  };
  return { procs, stop };
}

function get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path: "/", agent: false }, (res) => {
        let body = "";
        res.on("data", (d: Buffer) => (body += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

test("chain: freePorts gives distinct ports; each hop is told the next one's", async () => {
  const ports = await freePorts(5);
  assert.equal(new Set(ports).size, 5);
  const argv = chainArgv(ports, 3);
  assert.equal(argv.length, 5);
  assert.deepEqual(argv[0]!.slice(-6), [
    "--port",
    String(ports[0]),
    "--iters",
    "3",
    "--next",
    String(ports[1]),
  ]);
  assert.ok(!argv[4]!.includes("--next"), "the last hop calls nobody");
});

test("chain: a request crosses every hop, each a process of its own, in order", async () => {
  const ports = await freePorts(5);
  const chain = await startChain(ports, 1);
  try {
    const r = await get(ports[0]!);
    assert.equal(r.status, 200);
    const pids = r.body.split(",").map(Number);
    assert.deepEqual(
      pids,
      chain.procs.map((p) => p.pid),
      "hop 0 answers with the pids of hop 0..4",
    );
  } finally {
    await chain.stop();
  }
});

test("chain: the open-loop generator drives it on schedule, every request answered", async () => {
  const ports = await freePorts(5);
  const chain = await startChain(ports, 1);
  try {
    const conns = await openConns(ports[0]!, 4);
    const r = await runOpenLoop(conns, { rate: 100, durationS: 0.5, drainS: 2 });
    for (const c of conns) c.close();
    assert.equal(r.sent, 50);
    assert.equal(r.ok, 50);
    assert.equal(r.errors + r.timeouts, 0);
    assert.ok(r.p50_us > 0 && r.p50_us <= r.p99_us && r.p99_us <= r.p999_us);
  } finally {
    await chain.stop();
  }
});

test("chain: a hop whose next one is gone fails the request (502) instead of hanging", async () => {
  const [up, gone] = await freePorts(2);
  // Only the first hop runs; its next hop's port has nobody listening.
  const chain = await startChain([up!, gone!], 1);
  chain.procs[1]!.kill("SIGKILL");
  await new Promise((resolve) => chain.procs[1]!.once("exit", resolve));
  try {
    const r = await get(up!);
    assert.equal(r.status, 502);
    assert.equal(r.body, String(chain.procs[0]!.pid));
  } finally {
    await chain.stop();
  }
});

test("ConnPool: opens a connection only when every open one is busy", async () => {
  let waiting: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    waiting.push(() => res.end("ok"));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const pool = new ConnPool(port);
  try {
    const send = () => new Promise<boolean>((resolve) => pool.take().send((ok) => resolve(ok)));
    const three = [send(), send(), send()];
    assert.equal(pool.size, 3, "three requests in flight at once: three connections");
    while (waiting.length < 3) await new Promise((r) => setTimeout(r, 5));
    for (const w of waiting) w();
    waiting = [];
    assert.deepEqual(await Promise.all(three), [true, true, true]);
    const again = send();
    assert.equal(pool.size, 3, "an idle connection is reused");
    while (waiting.length < 1) await new Promise((r) => setTimeout(r, 5));
    waiting[0]!();
    assert.equal(await again, true);
  } finally {
    pool.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
