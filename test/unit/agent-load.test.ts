// The agent's endpoint under a crowd: the real CLI with 4096 SLO cgroups (about 20 MiB of
// exposition) and, from another process, 2000 scrapes at once from one address. Health and
// readiness keep answering (asked from another address, as a kubelet's probe would be), every
// scrape is answered or turned away at once, and the agent's memory stays bounded.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import http from "node:http";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { findProjectRoot } from "../../src/util/project-root.js";

const CGROUPS = 4096;
const SCRAPES = 2000;
const STORM_PART = 500;
const CLI = path.join(findProjectRoot(), "dist", "src", "cli", "main.js");

/** Run in a child process: SCRAPES concurrent GETs, then a JSON tally on stdout. */
const STORM = String.raw`
import http from "node:http";
const [url, n] = [process.argv[1], Number(process.argv[2])];
const one = (i) => new Promise((resolve) => {
  const req = http.get(url + (i % 10 === 0 ? "/status" : "/metrics"), { agent: false }, (res) => {
    res.resume();
    res.on("end", () => resolve(String(res.statusCode)));
    res.on("error", () => resolve("reset"));
  });
  req.on("error", () => resolve("reset"));
});
const tally = {};
for (const s of await Promise.all(Array.from({ length: n }, (_, i) => one(i)))) tally[s] = (tally[s] ?? 0) + 1;
console.log(JSON.stringify(tally));
`;

/** One storm process: n concurrent GETs; resolves to its tally of status codes. */
function runStorm(url: string, n: number): Promise<Record<string, number>> {
  const storm = spawn(process.execPath, ["--input-type=module", "-e", STORM, url, String(n)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  storm.stdout.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) =>
    storm.on("close", (code) =>
      code === 0
        ? resolve(JSON.parse(out) as Record<string, number>)
        : reject(new Error(`storm exited ${code}`)),
    ),
  );
}

function probe(url: string): Promise<{ status: number | "error"; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.get(
      url,
      { agent: false, localAddress: "127.0.0.2", timeout: 10_000 },
      (res) => {
        res.resume();
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }),
        );
      },
    );
    req.on("error", () => resolve({ status: "error", ms: performance.now() - started }));
  });
}

function memKiB(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(
    readFileSync(`/proc/${pid}/status`, "utf8"),
  );
  return Number(m?.[1] ?? NaN);
}

test("2000 concurrent scrapes: /healthz answers throughout, memory stays bounded", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "scx-load-"));
  const cg = path.join(dir, "cgroup");
  for (let i = 0; i < CGROUPS; i++)
    mkdirSync(path.join(cg, "pods", `pod-${i}`), { recursive: true });
  const config = path.join(dir, "config");
  writeFileSync(config, "/pods/* 50 50\n");
  const port = 20000 + (process.pid % 20000);
  const url = `http://127.0.0.1:${port}`;
  const agent = spawn(
    process.execPath,
    [
      CLI,
      "run",
      "--config",
      config,
      "--listen",
      `127.0.0.1:${port}`,
      "--cgroup-root",
      cg,
      "--mode",
      "enforce",
      "--safe-mode-file",
      path.join(dir, "safe-mode"),
    ],
    { stdio: "ignore", env: { ...process.env, SCX_SLO_PIN_DIR: path.join(dir, "pins") } },
  );
  try {
    const end = Date.now() + 30_000;
    while ((await probe(`${url}/readyz`)).status !== 200) {
      assert.ok(Date.now() < end, "agent ready");
      await new Promise((r) => setTimeout(r, 100));
    }
    const rssReady = memKiB(agent.pid!, "VmRSS");
    const metrics = await fetch(`${url}/metrics`);
    assert.equal(metrics.status, 200);
    const expositionMiB = (await metrics.text()).length / 2 ** 20;
    assert.ok(expositionMiB > 10, `${expositionMiB.toFixed(1)} MiB of exposition`);
    const rssBefore = memKiB(agent.pid!, "VmRSS");
    // A scrape costs about one copy of its exposition (kept for the next render to write into),
    // not several copies' worth of strings left in V8's old generation.
    const scrapeMiB = (rssBefore - rssReady) / 1024;
    assert.ok(
      scrapeMiB < 2 * expositionMiB,
      `the first scrape took the agent's RSS up ${scrapeMiB.toFixed(0)} MiB ` +
        `for ${expositionMiB.toFixed(0)} MiB of exposition`,
    );

    // The storm is split over processes of STORM_PART sockets each, so it fits under a default
    // open-file limit of 1024 per process.
    const storms = Array.from({ length: Math.ceil(SCRAPES / STORM_PART) }, () =>
      runStorm(url, STORM_PART),
    );
    let storming = true;
    const stormDone = Promise.all(storms).finally(() => (storming = false));
    const probes: { status: number | "error"; ms: number }[] = [];
    while (storming) {
      probes.push(await probe(`${url}/healthz`));
      await new Promise((r) => setTimeout(r, 20));
    }
    const tally: Record<string, number> = {};
    for (const part of await stormDone)
      for (const [status, n] of Object.entries(part)) tally[status] = (tally[status] ?? 0) + n;
    const out = JSON.stringify(tally);
    const hwm = memKiB(agent.pid!, "VmHWM");

    const answered = (tally["200"] ?? 0) + (tally["503"] ?? 0) + (tally["reset"] ?? 0);
    assert.equal(answered, SCRAPES, `each scrape answered or turned away: ${out}`);
    assert.ok((tally["200"] ?? 0) >= 32, `scrapes answered: ${out}`);
    assert.ok(probes.length >= 3, `health probed during the storm (${probes.length})`);
    // Every probe answered, and at once but for the host's own scheduling delays (this test
    // shares two CPUs with the storm it makes).
    const shown = probes.map((p) => `${p.status}/${p.ms.toFixed(0)}ms`).join(" ");
    const ms = probes.map((p) => p.ms).sort((a, b) => a - b);
    assert.ok(
      probes.every((p) => p.status === 200),
      `/healthz during the storm: ${shown}`,
    );
    assert.ok(ms[Math.floor(ms.length / 2)]! < 100, `/healthz median: ${shown}`);
    assert.ok(ms[ms.length - 1]! < 5000, `/healthz slowest: ${shown}`);
    // Bounded means nothing held per request: a copy of the exposition for each scrape would be
    // SCRAPES megabytes. A render's garbage, collected when V8 chooses, may add tens of MiB.
    const grewMiB = (hwm - rssBefore) / 1024;
    assert.ok(grewMiB < 256, `the agent's peak RSS grew ${grewMiB.toFixed(0)} MiB in the storm`);
    assert.equal((await probe(`${url}/readyz`)).status, 200);
  } finally {
    agent.kill("SIGTERM");
    await new Promise((r) => agent.on("close", r));
    rmSync(dir, { recursive: true });
  }
});
