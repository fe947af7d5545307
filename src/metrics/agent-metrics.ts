// Every metric the agent exports. The node-level ones live in a prom-client registry; the
// per-SLO-cgroup families (per-slo.ts) are rendered beside them. Per-cgroup series exist only for
// cgroups that carry an SLO (bounded by the SLO map's size), labelled with the cgroup path and,
// where known, the pod's namespace and name. They exist from the moment the SLO does: a cgroup
// whose tasks have not run under scx_slo yet counts zero runs, misses and waits, so its first
// misses show in rate() and increase() instead of being hidden in the series' first sample.

import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import {
  AGENT_MODES,
  SCHEDULER_STATES,
  type AgentMode,
  type ExitInfo,
  type SchedulerState,
} from "../api/status.js";
import type { SchedulerCounters } from "../sched/loader.js";
import type { CounterDesc } from "../sched/replies.js";
import { TextChunks, type ChunkPool, type PooledText } from "../util/text-chunks.js";
import { CollectedMetric, type CollectedValue } from "./collected.js";
import { renderPerSlo, type SloSample } from "./per-slo.js";

export type { SloSample } from "./per-slo.js";

export const METRIC_PREFIX = "scx_slo_";

/** What the agent exposes to the collectors, read at scrape time. */
export interface MetricsView {
  slos(): readonly SloSample[];
  /** Null without a loader session (no scheduler maps, unsupported kernel). */
  counters(): SchedulerCounters | null;
  schedulerState(): SchedulerState;
  /** enforce, observe or unsupported (agent/mode.ts). */
  mode(): AgentMode;
  reattaches(): number;
  unplannedDetaches(): number;
  /** Why the scheduler last stopped on its own (kernel exit record); null if it never has. */
  lastExit(): ExitInfo | null;
}

export interface AgentMetrics {
  readonly registry: Registry;
  /**
   * The whole exposition, the registry's families and the per-SLO ones, as UTF-8 in chunks (of
   * the pool, if given), held once by the caller.
   */
  renderText(pool?: ChunkPool): Promise<PooledText>;
  /** The same as one string. */
  render(): Promise<string>;
  readonly configReloads: Counter<"result">;
  readonly sloUpdates: Counter<"op">;
  readonly sloEntries: Gauge;
  readonly unresolvedRules: Gauge;
  readonly cgroupsLeftOut: Gauge;
  readonly reconcileSeconds: Gauge;
  readonly missEventsReceived: Counter;
  readonly standbyAttaches: Counter<"result">;
}

export interface AgentMetricsOptions {
  /** The scheduler's counters (the loader's abi table); each is exported as it is named there. */
  readonly counters?: readonly CounterDesc[];
  readonly defaultMetrics?: boolean;
}

/**
 * prom-client's default process and Node.js metrics, less those that break Prometheus' naming
 * rules (`promtool check metrics`): nodejs_active_{handles,requests,resources}_total are gauges
 * with a counter's suffix. Each is the sum of the per-type gauge of the same name without
 * `_total`, which stays, so nothing is lost.
 */
function addDefaultMetrics(registry: Registry): void {
  const own = new Set(registry.getMetricsAsArray().map((m) => m.name));
  // The event-loop delay monitor samples on a timer of its own: once a second, not 100 times (the
  // library's default), so that an idle agent is idle.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 1000 });
  for (const m of registry.getMetricsAsArray()) {
    if (own.has(m.name) || m instanceof Counter || !m.name.endsWith("_total")) continue;
    registry.removeSingleMetric(m.name);
  }
}

export function createAgentMetrics(
  view: MetricsView,
  opts: AgentMetricsOptions = {},
): AgentMetrics {
  const registry = new Registry();
  const p = METRIC_PREFIX;
  const add = (
    name: string,
    help: string,
    type: "counter" | "gauge" | "histogram",
    collect: () => readonly CollectedValue[],
  ) => registry.registerMetric(new CollectedMetric(p + name, help, type, collect).asMetric());

  add(
    "mode",
    "1 for what the agent runs: enforce (scx_slo schedules and measures), observe (the tracing observer measures on a kernel or in a state where scx_slo does not run), unsupported",
    "gauge",
    () => {
      const cur = view.mode();
      return AGENT_MODES.map((m) => ({ labels: { mode: m }, value: m === cur ? 1 : 0 }));
    },
  );
  add(
    "scheduler_state",
    "1 for the scheduler's current state: attached, fallen_back (kernel fair class, re-attaching), safe_mode, unsupported, starting",
    "gauge",
    () => {
      const cur = view.schedulerState();
      return SCHEDULER_STATES.map((st) => ({ labels: { state: st }, value: st === cur ? 1 : 0 }));
    },
  );
  add("scheduler_reattaches_total", "Times the agent re-attached scx_slo", "counter", () => [
    { labels: {}, value: view.reattaches() },
  ]);
  add(
    "scheduler_detaches_total",
    "Times scx_slo went away without the agent asking (kernel exit, external unload)",
    "counter",
    () => [{ labels: {}, value: view.unplannedDetaches() }],
  );
  add(
    "scheduler_last_exit_info",
    "1, labelled with why scx_slo last stopped without the agent asking (sched_ext exit kind and the kernel's reason); absent until it has",
    "gauge",
    () => {
      const exit = view.lastExit();
      return exit ? [{ labels: { kind: exit.kind_name, reason: exit.reason }, value: 1 }] : [];
    },
  );
  for (const c of opts.counters ?? []) {
    add(c.metric, c.help, "counter", () => {
      const value = view.counters()?.[c.name];
      return value === undefined ? [] : [{ labels: {}, value }];
    });
  }

  const configReloads = new Counter({
    name: `${p}config_reloads_total`,
    help: "SLO config reloads by result (a failed one leaves the running config in force)",
    labelNames: ["result"] as const,
    registers: [registry],
  });
  configReloads.inc({ result: "ok" }, 0);
  configReloads.inc({ result: "failed" }, 0);
  const sloUpdates = new Counter({
    name: `${p}slo_updates_total`,
    help: "SLO map entries written (op=set) or removed (op=del) by the agent",
    labelNames: ["op"] as const,
    registers: [registry],
  });
  sloUpdates.inc({ op: "set" }, 0);
  sloUpdates.inc({ op: "del" }, 0);
  const sloEntries = new Gauge({
    name: `${p}slo_entries`,
    help: "SLO entries applied in the scheduler's SLO map",
    registers: [registry],
  });
  const unresolvedRules = new Gauge({
    name: `${p}rules_unresolved`,
    help: "SLO rules that name no existing cgroup yet (retried every rescan)",
    registers: [registry],
  });
  const cgroupsLeftOut = new Gauge({
    name: `${p}cgroups_left_out`,
    help: "Cgroups the SLO rules name that get no SLO: the SLO map is full of more important ones (listed in /status)",
    registers: [registry],
  });
  const reconcileSeconds = new Gauge({
    name: `${p}reconcile_duration_seconds`,
    help: "Duration of the last reconcile (resolve cgroups, diff, write the SLO map)",
    registers: [registry],
  });
  const missEventsReceived = new Counter({
    name: `${p}miss_events_received_total`,
    help: "Deadline-miss events the agent read from the ring buffer",
    registers: [registry],
  });
  const standbyAttaches = new Counter({
    name: `${p}scheduler_standby_attaches_total`,
    help: "Attaches of the pre-verified standby copy by result (failed: the agent loaded afresh)",
    labelNames: ["result"] as const,
    registers: [registry],
  });
  standbyAttaches.inc({ result: "ok" }, 0);
  standbyAttaches.inc({ result: "failed" }, 0);
  if (opts.defaultMetrics !== false) addDefaultMetrics(registry);
  const renderText = async (pool?: ChunkPool) => {
    const out = new TextChunks(pool);
    out.write(await registry.metrics());
    await renderPerSlo(view.slos(), p, out);
    return out.finish();
  };
  return {
    registry,
    renderText,
    render: async () => (await renderText()).toString(),
    configReloads,
    sloUpdates,
    sloEntries,
    unresolvedRules,
    cgroupsLeftOut,
    reconcileSeconds,
    missEventsReceived,
    standbyAttaches,
  };
}
