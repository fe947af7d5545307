// The Prometheus exposition: parsed back from text, the wait histogram's buckets are cumulative and
// equal the BPF bucket counts; counters, gauges and labels are as documented. Also the HTTP
// endpoint: read-only, health, readiness and the overload query.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  createAgentMetrics,
  type MetricsView,
  type SloSample,
} from "../../src/metrics/agent-metrics.js";
import { EXPORTED_BUCKETS, waitHistogramLines } from "../../src/metrics/per-slo.js";
import { agentRoutes, type AgentView } from "../../src/http/routes.js";
import { startHttpServer } from "../../src/http/server.js";
import { parseListen } from "../../src/util/listen.js";
import { bucketUpperNs, HIST_BUCKETS } from "../../src/sched/histogram.js";
import { defaultLoaderPaths, readAbi, type CgroupStats } from "../../src/sched/loader.js";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A minimal parser of the Prometheus text format (what a scraper reads). */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) {
      types.set(t[1]!, t[2]!);
      continue;
    }
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let lm;
      while ((lm = re.exec(m[2])) !== null) labels[lm[1]!] = lm[2]!.replace(/\\(.)/g, "$1");
    }
    const v = m[3]!;
    samples.push({ name: m[1]!, labels, value: v === "+Inf" ? Infinity : Number(v) });
  }
  return { samples, types };
}

function stats(id: bigint, hist: number[], over: Partial<CgroupStats> = {}): CgroupStats {
  const padded = [...hist, ...new Array<number>(HIST_BUCKETS - hist.length).fill(0)];
  return {
    cgroupId: id,
    runs: padded.reduce((a, b) => a + b, 0),
    waitSumNs: 123_456_789,
    waitMaxNs: 7_000_000,
    misses: 4,
    budgetNs: 5_000_000,
    importance: 90,
    hist: padded,
    ...over,
  };
}

const counts: Record<string, number> = {
  miss_events: 11,
  miss_drops: 2,
  preempt_kicks: 33,
  direct_idle: 44,
  kthread_local: 7,
  idle_kicks: 8,
  no_victim: 5,
  throttled: 6,
};

function view(slos: SloSample[]): MetricsView {
  return {
    slos: () => slos,
    counters: () => counts,
    schedulerState: () => "attached",
    mode: () => "enforce",
    reattaches: () => 3,
    unplannedDetaches: () => 1,
    lastExit: () => ({
      kind: 1026,
      kind_name: "error_stall",
      code: 0,
      reason: "runnable task stall",
      msg: "w[42] failed to run for 5.1s",
    }),
  };
}

test("wait histogram: cumulative le buckets at the BPF bounds, +Inf, _sum and _count", async () => {
  // Counts in a few scattered buckets, including the overflow bucket.
  const hist = new Array<number>(HIST_BUCKETS).fill(0);
  hist[0] = 5;
  hist[3] = 7;
  hist[40] = 11;
  hist[HIST_BUCKETS - 2] = 2;
  hist[HIST_BUCKETS - 1] = 1;
  const slo: SloSample = {
    cgroup: '/kubepods/burstable/pod"x"',
    namespace: "shop",
    pod: "api-7d9",
    budgetNs: 5_000_000,
    importance: 90,
    stats: stats(42n, hist),
    overloaded: true,
  };
  const abi = await readAbi(defaultLoaderPaths());
  const m = createAgentMetrics(view([slo]), { defaultMetrics: false, counters: abi.counters });
  const text = await m.render();
  const { samples, types } = parseExposition(text);
  assert.equal(types.get("scx_slo_wait_seconds"), "histogram");
  const buckets = samples.filter((s) => s.name === "scx_slo_wait_seconds_bucket");
  assert.equal(buckets.length, EXPORTED_BUCKETS.length + 1, "one le per exported bound plus +Inf");
  assert.deepEqual(
    EXPORTED_BUCKETS.slice(0, 5),
    [0, 2, 4, 6, 8],
    "bucket 0, then the half and the whole of every octave",
  );
  for (const b of buckets) {
    assert.deepEqual(
      { cgroup: b.labels.cgroup, namespace: b.labels.namespace, pod: b.labels.pod },
      { cgroup: '/kubepods/burstable/pod"x"', namespace: "shop", pod: "api-7d9" },
    );
  }
  // Each exported bucket holds exactly the waits of every BPF bucket up to its own.
  const exported = [...EXPORTED_BUCKETS, HIST_BUCKETS - 1];
  exported.forEach((idx, k) => {
    const b = buckets[k]!;
    const cumulative = hist.slice(0, idx + 1).reduce((a, x) => a + x, 0);
    const le = k === exported.length - 1 ? Infinity : bucketUpperNs(idx) / 1e9;
    assert.equal(
      Number(b.labels.le === "+Inf" ? Infinity : b.labels.le),
      le,
      `bucket ${idx} bound`,
    );
    assert.equal(b.value, cumulative, `bucket ${idx} cumulative count`);
    if (k > 0) assert.ok(b.value >= buckets[k - 1]!.value, "monotonic");
  });
  const count = samples.find((s) => s.name === "scx_slo_wait_seconds_count")!;
  const sum = samples.find((s) => s.name === "scx_slo_wait_seconds_sum")!;
  assert.equal(count.value, 26);
  assert.equal(count.value, buckets[buckets.length - 1]!.value, "+Inf == _count");
  assert.ok(Math.abs(sum.value - 0.123456789) < 1e-12);

  const one = (name: string, labels: Record<string, string> = {}) => {
    const found = samples.filter(
      (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    );
    assert.equal(found.length, 1, `${name} ${JSON.stringify(labels)}`);
    return found[0]!.value;
  };
  assert.equal(one("scx_slo_runs_total"), 26);
  assert.equal(one("scx_slo_misses_total"), 4);
  assert.equal(one("scx_slo_budget_seconds"), 0.005);
  assert.equal(one("scx_slo_wait_max_seconds"), 0.007);
  assert.equal(one("scx_slo_overloaded"), 1);
  assert.equal(one("scx_slo_scheduler_state", { state: "attached" }), 1);
  assert.equal(one("scx_slo_scheduler_state", { state: "safe_mode" }), 0);
  assert.equal(one("scx_slo_scheduler_reattaches_total"), 3);
  assert.equal(
    one("scx_slo_scheduler_last_exit_info", { kind: "error_stall", reason: "runnable task stall" }),
    1,
  );
  assert.equal(one("scx_slo_ringbuf_drops_total"), 2);
  assert.equal(one("scx_slo_cpu_max_throttled_total"), 6);
  assert.equal(one("scx_slo_miss_events_total"), 11);
  assert.equal(one("scx_slo_preempt_kicks_total"), 33);
  assert.equal(types.get("scx_slo_runs_total"), "counter");
  // Every counter the scheduler keeps (its table, from the loader) reaches the exposition.
  assert.ok(abi.counters.length >= 8);
  for (const c of abi.counters) {
    assert.equal(types.get(`scx_slo_${c.metric}`), "counter", c.name);
    assert.equal(one(`scx_slo_${c.metric}`), counts[c.name] ?? 0, c.name);
  }
  m.configReloads.inc({ result: "failed" });
  const after = parseExposition(await m.render()).samples;
  const reloads = after.filter((s) => s.name === "scx_slo_config_reloads_total");
  assert.deepEqual(reloads.map((s) => [s.labels.result, s.value]).sort(), [
    ["failed", 1],
    ["ok", 0],
  ]);
});

test("wait histogram: buckets read ahead of runs are capped so +Inf stays == _count", () => {
  const lines = waitHistogramLines("w", 'c="x"', [3, 0, 4], 5, 0).split("\n");
  const buckets = lines.filter((l) => l.startsWith("w_bucket")).map((l) => Number(l.split(" ")[1]));
  assert.equal(buckets[0], 3);
  assert.equal(buckets[1], 5, "3 + 4 read ahead of runs: capped at 5");
  assert.equal(buckets[buckets.length - 1], 5);
});

test("a cgroup that has not run yet counts zero runs, misses and waits from the start", async () => {
  const slo: SloSample = {
    cgroup: "/idle",
    namespace: "",
    pod: "",
    budgetNs: 20e6,
    importance: 10,
    stats: null,
    overloaded: false,
  };
  const { samples } = parseExposition(
    await createAgentMetrics(view([slo]), { defaultMetrics: false }).render(),
  );
  const waits = samples.filter((s) => s.name.startsWith("scx_slo_wait_seconds"));
  assert.equal(waits.length, EXPORTED_BUCKETS.length + 3, "every bucket, +Inf, _sum and _count");
  assert.ok(waits.every((s) => s.value === 0 && s.labels.cgroup === "/idle"));
  const value = (name: string) => samples.find((s) => s.name === name)?.value;
  assert.equal(value("scx_slo_runs_total"), 0);
  assert.equal(value("scx_slo_misses_total"), 0);
  assert.equal(value("scx_slo_wait_max_seconds"), 0);
  assert.equal(value("scx_slo_budget_seconds"), 0.02);
  // The budget the kernel applied is not known until a task has run.
  assert.equal(value("scx_slo_budget_in_force_seconds"), undefined);
});

test("HTTP: GET only; healthz, readyz, overload, 404", async () => {
  let ready = false;
  const over = { overloaded: true, misses: 30, runs: 100, window_s: 10, retry_after_s: 4 };
  const view: AgentView = {
    metrics: async () => ({ contentType: "text/plain; version=0.0.4", body: "x 1\n" }),
    ready: () => ({ ready, reasons: ready ? [] : ["no config"] }),
    sloCgroups: () => [{ cgroup: "/a" }, { cgroup: "/p/c", namespace: "shop", pod: "web" }],
    verdict: async (keys) =>
      keys.includes("/a") ? over : { ...over, overloaded: false, misses: 0, retry_after_s: 0 },
    status: async () => {
      throw new Error("not asked here");
    },
  };
  const srv = await startHttpServer(agentRoutes(view), parseListen("127.0.0.1:0"));
  try {
    const get = (p: string, init?: RequestInit) => fetch(`${srv.url}${p}`, init);
    assert.equal((await get("/healthz")).status, 200);
    assert.equal((await get("/readyz")).status, 503);
    ready = true;
    assert.equal((await get("/readyz")).status, 200);
    const o = await get("/overload?cgroup=/a");
    assert.equal(o.status, 200);
    assert.equal(o.headers.get("retry-after"), "4");
    assert.deepEqual(await o.json(), { ...over, cgroups: ["/a"] });
    const byPod = await get("/overload?namespace=shop&pod=web");
    assert.equal(byPod.status, 200);
    assert.equal(byPod.headers.get("retry-after"), null);
    assert.deepEqual(((await byPod.json()) as { cgroups: string[] }).cgroups, ["/p/c"]);
    assert.equal((await get("/overload?cgroup=/b")).status, 404);
    assert.equal((await get("/overload?namespace=shop&pod=db")).status, 404);
    assert.equal((await get("/overload")).status, 400);
    assert.equal((await get("/metrics")).status, 200);
    assert.equal((await get("/status")).status, 500, "a failing route is a 500, not a crash");
    assert.equal((await get("/nope")).status, 404);
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const r = await get("/status", { method });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.get("allow"), "GET, HEAD");
    }
  } finally {
    await srv.close();
  }
});

test("--listen parsing", () => {
  assert.deepEqual(parseListen("127.0.0.1:9617"), { host: "127.0.0.1", port: 9617 });
  assert.deepEqual(parseListen("[::1]:80"), { host: "::1", port: 80 });
  assert.deepEqual(parseListen(":9617"), { host: "0.0.0.0", port: 9617 });
  assert.throws(() => parseListen("9617"), /HOST:PORT/);
  assert.throws(() => parseListen("h:99999"), /HOST:PORT/);
});
