// The Grafana dashboard against a real Prometheus (Debian's, installed by `make setup`) scraping a
// real agent on this host (no sched_ext: the agent runs in its "unsupported" state). Every query of
// every panel is evaluated through Prometheus' HTTP API. A panel about SLO cgroups must show one
// series per SLO cgroup, for standalone SLOs (no namespace or pod) as for pods, and its legend must
// name the labels that tell them apart; a node-level panel whose metrics the agent exports here
// must show data.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Agent } from "../../src/agent/agent.js";
import { defaultLoaderPaths, readAbi } from "../../src/sched/loader.js";
import { silentLogger } from "../../src/util/log.js";
import { findProjectRoot } from "../../src/util/project-root.js";

interface Target {
  readonly expr: string;
  readonly legendFormat?: string;
}
interface Panel {
  readonly title: string;
  readonly targets?: Target[];
}
interface PromSeries {
  readonly metric: Record<string, string>;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function until(what: string, cond: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (await cond()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > end) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Grafana's variables as a query sees them once Grafana has filled them in. */
function substitute(expr: string): string {
  return expr
    .replaceAll("$__rate_interval", "1m")
    .replaceAll("$__interval", "1s")
    .replaceAll("$__range", "1m");
}

const legendFields = (legend: string): string[] =>
  [...legend.matchAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)].map((m) => m[1]!);

test("every dashboard query against a real Prometheus: one series per SLO cgroup", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "scx-dash-"));
  const cg = path.join(dir, "cgroup");
  // Two standalone SLOs (no namespace, no pod: what merged before) and one with pod labels.
  const standalone = ["/svc/a", "/svc/b"];
  const labelled = "/kubepods/pod-c";
  for (const c of [...standalone, labelled]) mkdirSync(path.join(cg, c), { recursive: true });
  mkdirSync(path.join(dir, "no-sched-ext"));
  const config = path.join(dir, "config.yaml");
  writeFileSync(
    config,
    [
      "version: 1",
      "slos:",
      "  - { cgroup: /svc/a, budget_ms: 10, importance: 50 }",
      "  - { cgroup: /svc/b, budget_ms: 20, importance: 40 }",
      `  - { cgroup: ${labelled}, budget_ms: 5, importance: 90, namespace: shop, pod: web }`,
      "",
    ].join("\n"),
  );
  const agent = new Agent({
    // scx_slo's side only: observe mode has its own test.
    mode: "enforce",
    source: { kind: "file", file: config },
    listen: { host: "127.0.0.1", port: 0 },
    loaderPaths: { ...defaultLoaderPaths(), pinDir: path.join(dir, "pins") },
    log: silentLogger,
    cgroupRoot: cg,
    safeModeFile: path.join(dir, "safe-mode"),
    scxSysfsDir: path.join(dir, "no-sched-ext"),
    rescanMs: 500,
  });
  const agentUrl = await agent.start();
  const promPort = await freePort();
  writeFileSync(
    path.join(dir, "prometheus.yml"),
    [
      "global: { scrape_interval: 1s, evaluation_interval: 1s }",
      "scrape_configs:",
      "  - job_name: scx-slo",
      `    static_configs: [{ targets: ["${new URL(agentUrl).host}"] }]`,
      "",
    ].join("\n"),
  );
  const prom = spawn(
    "prometheus",
    [
      `--config.file=${path.join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${path.join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      "--log.level=warn",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let promLog = "";
  prom.stderr.on("data", (b: Buffer) => (promLog += b.toString()));
  const promExited = new Promise((r) => prom.on("exit", r));
  const query = async (q: string): Promise<PromSeries[]> => {
    const res = await fetch(
      `http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`,
    );
    const body = (await res.json()) as {
      status: string;
      error?: string;
      data?: { result: PromSeries[] };
    };
    assert.equal(body.status, "success", `${q}: ${body.error}`);
    return body.data!.result;
  };
  try {
    await until(
      "agent has its SLOs",
      async () => /cgroup="\/svc\/b"/.test(await (await fetch(`${agentUrl}/metrics`)).text()),
      5000,
    );
    // Which series the agent exports here, and which of them are per SLO cgroup.
    const exposition = await (await fetch(`${agentUrl}/metrics`)).text();
    const exported = new Set<string>();
    const perCgroup = new Set<string>();
    for (const m of exposition.matchAll(/^(scx_slo_[a-z_]+)(\{[^\n]*\})? /gm)) {
      exported.add(m[1]!);
      if (m[2]?.includes('cgroup="')) perCgroup.add(m[1]!);
    }
    // Enough scrapes for rate() over a minute: at least three samples of every series.
    await until(
      "Prometheus has scraped the agent three times",
      async () =>
        (await query("min(count_over_time(scx_slo_budget_seconds[1m]))"))[0] !== undefined &&
        (await query("min(count_over_time(scx_slo_budget_seconds[1m])) >= 3")).length === 1,
      20_000,
    );

    const dashboard = JSON.parse(
      readFileSync(
        path.join(findProjectRoot(), "deploy", "grafana", "scx-slo-dashboard.json"),
        "utf8",
      ),
    ) as { panels: Panel[] };
    // Only the scheduler's own counters need a scheduler (its maps) to be exported at all.
    const schedulerCounters = new Set(
      (await readAbi(defaultLoaderPaths())).counters.map((c) => `scx_slo_${c.metric}`),
    );
    const all = [...standalone, labelled].sort();
    let perCgroupQueries = 0;
    for (const panel of dashboard.panels) {
      for (const t of panel.targets ?? []) {
        const what = `${panel.title}: ${t.expr}`;
        const result = await query(substitute(t.expr));
        const metrics = [...t.expr.matchAll(/scx_slo_[a-z_]+/g)].map((m) => m[0]);
        const fields = legendFields(t.legendFormat ?? "");
        for (const m of metrics) {
          assert.ok(
            exported.has(m) || schedulerCounters.has(m),
            `${what}: ${m} is not exported by an agent with SLOs and no scheduler`,
          );
        }
        if (metrics.some((m) => perCgroup.has(m))) {
          perCgroupQueries++;
          assert.deepEqual(
            result.map((s) => s.metric.cgroup).sort(),
            all,
            `${what}: one series per SLO cgroup`,
          );
          assert.ok(fields.includes("cgroup"), `${what}: the legend names the cgroup`);
          for (const s of result) {
            // Prometheus drops empty labels: a standalone SLO has no namespace or pod.
            const expected =
              s.metric.cgroup === labelled
                ? fields
                : fields.filter((f) => f !== "namespace" && f !== "pod");
            for (const f of expected) {
              assert.ok(f in s.metric, `${what}: legend field ${f} in ${JSON.stringify(s.metric)}`);
            }
          }
          const pod = result.find((s) => s.metric.cgroup === labelled)?.metric;
          assert.deepEqual([pod?.namespace, pod?.pod], ["shop", "web"], what);
        } else {
          // A node-level panel: data wherever the agent exports its metrics without sched_ext.
          if (metrics.every((m) => exported.has(m))) assert.ok(result.length > 0, what);
          for (const s of result) {
            for (const f of fields) {
              assert.ok(f in s.metric, `${what}: legend field ${f} in ${JSON.stringify(s.metric)}`);
            }
          }
        }
      }
    }
    assert.ok(perCgroupQueries >= 4, `only ${perCgroupQueries} per-SLO queries`);
  } catch (err) {
    if (promLog !== "") console.log(`# prometheus log:\n${promLog}`);
    throw err;
  } finally {
    prom.kill("SIGTERM");
    await promExited;
    await agent.stop();
    rmSync(dir, { recursive: true });
  }
});
