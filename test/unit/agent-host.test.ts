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
import { MAX_SLO_ENTRIES } from "../../src/slo/model.js";

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
    // scx_slo's side only: observe mode has its own test.
    mode: "enforce",
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

test("agent over the SLO map's capacity: keeps the important cgroups, names each left out", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "scx-agent-"));
  const cg = path.join(dir, "cgroup");
  // A broad glob first, naming 31 cgroups more than the map holds, then one critical cgroup.
  const pods = MAX_SLO_ENTRIES + 30;
  for (let i = 0; i < pods; i++)
    mkdirSync(path.join(cg, "many", `p${String(i).padStart(5, "0")}`), { recursive: true });
  mkdirSync(path.join(cg, "a"));
  mkdirSync(path.join(dir, "no-sched-ext"));
  const config = path.join(dir, "config");
  writeFileSync(config, "/many/* 200 30\n/a 50 90\n");
  const logs: string[] = [];
  const agent = new Agent({
    // scx_slo's side only: observe mode has its own test.
    mode: "enforce",
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
    rescanMs: 100,
  });
  const url = await agent.start();
  const status = async () => (await (await fetch(`${url}/status`)).json()) as AgentStatus;
  const metric = async () =>
    /^scx_slo_cgroups_left_out (\d+)$/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1];
  try {
    await until("config resolved", async () => (await status()).slos.desired > 0);
    const st = await status();
    assert.equal(st.slos.desired, MAX_SLO_ENTRIES);
    assert.ok(
      st.cgroups.some((c) => c.cgroup === "/a"),
      "the critical cgroup keeps its SLO",
    );
    const leftOut = st.slos.left_out;
    assert.equal(leftOut.length, 31);
    assert.ok(leftOut.every((l) => l.importance === 30 && /config:1$/.test(l.origin)));
    assert.equal(new Set(leftOut.map((l) => l.cgroup)).size, 31);
    assert.equal(await metric(), "31");

    // Several rescans later, each left-out cgroup was named once, up to the cap, then one summary.
    await new Promise((r) => setTimeout(r, 500));
    const named = logs.filter((l) => /^warn cgroup \/many\/p\d+ gets no SLO/.test(l));
    assert.equal(named.length, 20, logs.join("\n"));
    assert.equal(new Set(named).size, 20);
    assert.ok(named.every((l) => leftOut.some((o) => l.includes(`cgroup ${o.cgroup} `))));
    assert.deepEqual(
      logs.filter((l) => /more cgroups get no SLO/.test(l)),
      ["warn ... and 11 more cgroups get no SLO (all are listed in /status slos.left_out)"],
    );

    // Room again: nothing is left out, and the log says so.
    for (let i = 0; i < 31; i++)
      rmSync(path.join(cg, "many", `p${String(i).padStart(5, "0")}`), { recursive: true });
    await until("nothing left out", async () => (await metric()) === "0");
    assert.deepEqual((await status()).slos.left_out, []);
    assert.ok(logs.some((l) => /^info has its SLO now: cgroup \/many\/p/.test(l)));
  } finally {
    await agent.stop();
    rmSync(dir, { recursive: true });
  }
});
