// The agent's whole /metrics exposition passes Prometheus' own linter (`promtool check metrics`,
// from Debian's prometheus package): default Node.js metrics on, every scheduler counter the loader
// names, and SLO cgroups with and without a histogram.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createAgentMetrics, type SloSample } from "../../src/metrics/agent-metrics.js";
import { HIST_BUCKETS } from "../../src/sched/histogram.js";
import { defaultLoaderPaths, readAbi } from "../../src/sched/loader.js";

test("promtool check metrics: the full exposition passes with no warnings", async () => {
  const abi = await readAbi(defaultLoaderPaths());
  const hist = new Array<number>(HIST_BUCKETS).fill(0);
  hist[2] = 4;
  hist[30] = 3;
  hist[HIST_BUCKETS - 1] = 1;
  const slos: SloSample[] = [
    {
      cgroup: "/kubepods/burstable/pod1",
      namespace: "shop",
      pod: "api",
      budgetNs: 5e6,
      importance: 90,
      stats: {
        cgroupId: 7n,
        runs: 8,
        waitSumNs: 9_000_000,
        waitMaxNs: 4_000_000,
        misses: 1,
        budgetNs: 5e6,
        importance: 90,
        hist,
      },
      overloaded: false,
    },
    {
      cgroup: "/idle",
      namespace: "",
      pod: "",
      budgetNs: 2e7,
      importance: 5,
      stats: null,
      overloaded: false,
    },
  ];
  const counters = Object.fromEntries(abi.counters.map((c, i) => [c.name, i]));
  const m = createAgentMetrics(
    {
      slos: () => slos,
      counters: () => counters,
      schedulerState: () => "attached",
      mode: () => "enforce",
      reattaches: () => 1,
      unplannedDetaches: () => 1,
      lastExit: () => ({ kind: 1026, kind_name: "error_stall", code: 0, reason: "stall", msg: "" }),
    },
    { counters: abi.counters },
  );
  const text = await m.render();
  // The default Node.js metrics are part of what a scraper reads.
  assert.match(text, /^process_resident_memory_bytes /m);
  assert.match(text, /^nodejs_heap_size_used_bytes /m);
  assert.match(text, /^scx_slo_wait_seconds_bucket\{/m);
  // Everything the agent itself exports is there.
  for (const name of [
    "runs_total",
    "misses_total",
    "scheduler_reattaches_total",
    "scheduler_detaches_total",
    "config_reloads_total",
    ...abi.counters.map((c) => c.metric),
  ]) {
    assert.match(text, new RegExp(`^scx_slo_${name}(\\{.*\\})? \\d`, "m"), name);
  }
  const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  assert.equal(r.error, undefined, "promtool runs (installed by `make setup`)");
  assert.equal(r.status, 0, `promtool exit ${r.status}:\n${r.stdout}${r.stderr}`);
  assert.equal(`${r.stdout}${r.stderr}`.trim(), "", "no warnings");
});
