// The whole agent on a host without sched_ext (like this build machine): it says so, serves
// health, readiness, metrics, overload and status, follows config changes and rejects a bad one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Agent } from "../../src/agent/agent.js";
import type { AgentStatus } from "../../src/api/status.js";
import { defaultLoaderPaths } from "../../src/sched/loader.js";

async function until(what: string, cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("agent without sched_ext: unsupported state, endpoints, config reloads", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "scx-agent-"));
  const cg = path.join(dir, "cgroup");
  mkdirSync(path.join(cg, "svc", "a"), { recursive: true });
  mkdirSync(path.join(cg, "svc", "b"), { recursive: true });
  mkdirSync(path.join(dir, "no-sched-ext"));
  const config = path.join(dir, "config");
  const logs: string[] = [];
  const agent = new Agent({
    source: { kind: "file", file: config },
    listen: { host: "127.0.0.1", port: 0 },
    loaderPaths: { ...defaultLoaderPaths(), pinDir: path.join(dir, "pins") },
    log: {
      debug: () => {},
      info: (m) => logs.push(`info ${m}`),
      warn: (m) => logs.push(`warn ${m}`),
      error: (m) => logs.push(`error ${m}`),
    },
    cgroupRoot: cg,
    safeModeFile: path.join(dir, "safe-mode"),
    scxSysfsDir: path.join(dir, "no-sched-ext"),
    // Cgroups must come and go as events: the safety pass is an hour away.
    rescanMs: 3_600_000,
    // The test's own cgroup is not under the temporary cgroup root.
    selfCgroup: null,
  });
  const url = await agent.start();
  const get = (p: string, init?: RequestInit) => fetch(`${url}${p}`, init);
  const text = async (p: string) => (await get(p)).text();
  try {
    assert.equal((await get("/healthz")).status, 200);
    const notReady = await get("/readyz");
    assert.equal(notReady.status, 503, "no config yet");
    assert.match(JSON.stringify(await notReady.json()), /no SLO config loaded yet/);
    assert.equal(logs.filter((l) => /this kernel has no sched_ext/.test(l)).length, 1);

    writeFileSync(config, "/svc/a 10 50\n/svc/* 200 20\n/later 5 5\n");
    await until("config loaded", async () => (await get("/readyz")).status === 200);
    let metrics = await text("/metrics");
    assert.match(metrics, /^scx_slo_scheduler_state\{state="unsupported"\} 1$/m);
    assert.match(
      metrics,
      /^scx_slo_budget_seconds\{cgroup="\/svc\/a",namespace="",pod=""\} 0.01$/m,
    );
    assert.match(metrics, /^scx_slo_budget_seconds\{cgroup="\/svc\/b",namespace="",pod=""\} 0.2$/m);
    assert.match(metrics, /^scx_slo_rules_unresolved 1$/m);
    assert.match(metrics, /^scx_slo_config_reloads_total\{result="ok"\} 1$/m);
    // The missing file at start was the first failed reload.
    assert.match(metrics, /^scx_slo_config_reloads_total\{result="failed"\} 1$/m);

    // A bad file: rejected, counted, the running SLOs stay.
    writeFileSync(config, "/svc/a 0 50\n");
    await until("reload failed", async () =>
      /^scx_slo_config_reloads_total\{result="failed"\} 2$/m.test(await text("/metrics")),
    );
    metrics = await text("/metrics");
    assert.match(
      metrics,
      /^scx_slo_budget_seconds\{cgroup="\/svc\/a",namespace="",pod=""\} 0.01$/m,
    );
    assert.ok(
      logs.some((l) => /^error .*config:1: budget_ms: /.test(l)),
      logs.join("\n"),
    );

    // A cgroup that appears later is picked up from its folder's event, as is one that goes.
    mkdirSync(path.join(cg, "later"));
    await until("new cgroup picked up", async () =>
      /cgroup="\/later"/.test(await text("/metrics")),
    );
    mkdirSync(path.join(cg, "svc", "c"));
    await until("glob match picked up", async () =>
      /cgroup="\/svc\/c"/.test(await text("/metrics")),
    );
    rmdirSync(path.join(cg, "svc", "c"));
    await until(
      "removed cgroup dropped",
      async () => !/cgroup="\/svc\/c"/.test(await text("/metrics")),
    );

    const ov = await get("/overload?cgroup=/svc/a");
    assert.equal(ov.status, 200);
    assert.deepEqual(await ov.json(), {
      overloaded: false,
      misses: 0,
      runs: 0,
      window_s: 10,
      retry_after_s: 0,
      cgroups: ["/svc/a"],
    });
    assert.equal((await get("/overload?cgroup=/nope")).status, 404);
    assert.equal((await get("/overload?namespace=a&pod=b")).status, 404);
    assert.equal((await get("/overload")).status, 400);
    assert.equal((await get("/status", { method: "POST" })).status, 405);

    const status = (await (await get("/status")).json()) as AgentStatus;
    assert.equal(status.scheduler.state, "unsupported");
    assert.equal(status.source.loaded, true);
    assert.equal(status.source.reloads_failed, 2);
    assert.deepEqual(
      status.cgroups.map((c) => c.cgroup),
      ["/svc/a", "/svc/b", "/later"],
    );
  } finally {
    await agent.stop();
    rmSync(dir, { recursive: true });
  }
});
