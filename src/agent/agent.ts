// The node agent: keeps the scheduler's SLO map in step with the rules (config file or Kubernetes),
// keeps the scheduler attached (or deliberately detached), and serves metrics, health and the
// overload signal. Each concern lives in its own module; this one wires them together.
//
// The agent owns no scheduler state: the link and maps are pinned in bpffs, so the agent can die
// and restart at any time and the scheduler keeps running on the SLOs last written.

import { existsSync, statSync, watch, type FSWatcher } from "node:fs";
import path from "node:path";
import { resolveRules } from "../cgroup/resolve.js";
import {
  createAgentMetrics,
  type AgentMetrics,
  type MetricsView,
  type SloSample,
} from "../metrics/agent-metrics.js";
import { DEFAULT_OVERLOAD, OverloadTracker, type OverloadThresholds } from "../metrics/overload.js";
import {
  startHttpServer,
  type HttpView,
  type JsonReply,
  type ListenAddress,
  type OverloadQuery,
  type RunningServer,
} from "../metrics/server.js";
import {
  loadScheduler,
  LoaderSession,
  schedulerStatus,
  unloadScheduler,
  type CgroupStats,
  type LoaderPaths,
  type LoadOptions,
  type MissEvent,
  type SchedulerCounters,
} from "../sched/loader.js";
import { readScxSysfs, SCX_SYSFS } from "../sched/scx-sysfs.js";
import { StandbyScheduler } from "../sched/standby.js";
import { withTimeout } from "../util/process.js";
import type { ResolvedSlo } from "../slo/model.js";
import { errorMessage, OnceLog, type Logger } from "../util/log.js";
import { packageVersion } from "../util/version.js";
import { ConfigFileSource, type ReloadResult, type RuleSource } from "./config-watch.js";
import { reconcile, type ReconcileResult } from "./reconcile.js";
import { readSafeModeFlag, writeSafeModeFlag, type SafeModeFlag } from "./safe-mode.js";
import { Supervisor, type SupervisorOptions } from "./supervisor.js";

export type SourceSpec =
  | { readonly kind: "file"; readonly file: string }
  | { readonly kind: "kubernetes"; readonly nodeName: string; readonly watchPolicies?: boolean };

export interface AgentOptions {
  readonly source: SourceSpec;
  readonly listen: ListenAddress;
  readonly loaderPaths: LoaderPaths;
  readonly log: Logger;
  /** Budget for tasks without an SLO, used when the agent loads the scheduler. */
  readonly defaultBudgetMs?: number;
  readonly cgroupRoot: string;
  readonly safeModeFile: string;
  readonly scxSysfsDir?: string;
  readonly rescanMs?: number;
  readonly overload?: OverloadThresholds;
  /** Supervisor timings (tests). */
  readonly supervisor?: Partial<
    Omit<SupervisorOptions, "control" | "safeMode" | "persistSafeMode" | "log">
  >;
}

interface LastReconcile extends ReconcileResult {
  readonly at: string;
  readonly reason: string;
  /** Resolving the rules against the cgroup tree (part of durationMs). */
  readonly resolveMs: number;
}

/** How long a re-attach waits for a standby copy still in the verifier (~0.9 s under emulation). */
const STANDBY_WAIT_MS = 2000;

export class Agent {
  private readonly log: Logger;
  private readonly metrics: AgentMetrics;
  private readonly supervisor: Supervisor;
  private readonly overload: OverloadTracker;
  private readonly unresolvedLog: OnceLog;
  private source: RuleSource | null = null;
  private nodeSafeMode: (() => SafeModeFlag) | null = null;
  private server: RunningServer | null = null;
  private session: LoaderSession | null = null;
  /** A verified copy of the scheduler, kept while scx_slo runs for a fast re-attach. */
  private standby: StandbyScheduler | null = null;
  private sessionMapIno: bigint | null = null;
  private pinWatcher: FSWatcher | null = null;
  private desired: ResolvedSlo[] = [];
  private unresolved: string[] = [];
  private stats = new Map<bigint, CgroupStats>();
  private counters: SchedulerCounters | null = null;
  private entries = 0;
  private lastReconcile: LastReconcile | null = null;
  private lastChange: LastReconcile | null = null;
  private reloads = { ok: 0, failed: 0 };
  private rescanTimer: NodeJS.Timeout | null = null;
  private rescanning: Promise<void> | null = null;
  private rescanAgain: string | null = null;
  private lastRescanError: string | null = null;
  private missLogBudget = { second: 0, left: 0 };
  private stopping = false;
  private readonly startedAt = new Date();

  constructor(private readonly options: AgentOptions) {
    this.log = options.log;
    this.overload = new OverloadTracker(options.overload ?? DEFAULT_OVERLOAD);
    this.unresolvedLog = new OnceLog(
      (m) => this.log.warn(m),
      (m) => this.log.info(`resolved now: ${m.split(": ")[0]}`),
    );
    this.metrics = createAgentMetrics(this.metricsView());
    const paths = options.loaderPaths;
    this.supervisor = new Supervisor({
      ...options.supervisor,
      log: this.log,
      control: {
        read: () => readScxSysfs(options.scxSysfsDir ?? SCX_SYSFS),
        linkPinned: () => existsSync(path.join(paths.pinDir, "link")),
        load: () => this.attachScheduler(),
        unload: () => unloadScheduler(paths),
        lastExit: async () => {
          const s = this.session?.alive
            ? await this.session.status()
            : await schedulerStatus(paths);
          return s.exit ?? null;
        },
      },
      safeMode: () => this.safeMode(),
      persistSafeMode: (reason) => writeSafeModeFlag(options.safeModeFile, reason),
    });
    this.supervisor.on("state", (st: { state: string }) => {
      if (st.state === "safe_mode") void this.dropStandby();
    });
    this.supervisor.on("attached", () => {
      this.prepareStandby();
      this.watchPins();
      this.requestRescan("scheduler attached");
    });
  }

  /** Starts everything; resolves with the HTTP URL once the first reconcile has run. */
  async start(): Promise<string> {
    const o = this.options;
    this.server = await startHttpServer(this.httpView(), o.listen);
    this.log.info(`scx-slo agent ${packageVersion()}: serving ${this.server.url}/metrics`);
    this.source = await this.createSource(o.source);
    await this.source.start(() => this.requestRescan("config change"));
    await this.supervisor.start();
    this.watchPins();
    await this.requestRescan("start");
    this.rescanTimer = setInterval(() => void this.requestRescan("rescan"), o.rescanMs ?? 1000);
    return this.server.url;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    this.pinWatcher?.close();
    await this.supervisor.stop();
    await this.dropStandby();
    process.off("SIGHUP", this.onSighupK8s);
    await this.source?.stop();
    await this.rescanning;
    // The scheduler stays attached: only the session child goes.
    await this.session?.close();
    await this.server?.close();
  }

  private readonly onSighupK8s = () =>
    this.log.info("SIGHUP: nothing to reload in kubernetes mode (SLOs follow the API server)");

  private async createSource(spec: SourceSpec): Promise<RuleSource> {
    const onReload = (r: ReloadResult) => {
      this.reloads[r]++;
      this.metrics.configReloads.inc({ result: r === "ok" ? "ok" : "failed" });
    };
    if (spec.kind === "file") {
      return new ConfigFileSource({ file: spec.file, log: this.log, onReload });
    }
    // Loaded only in Kubernetes mode: the file-mode agent stays small.
    const { KubernetesRuleSource } = await import("./k8s-source.js");
    const k8s = new KubernetesRuleSource({
      nodeName: spec.nodeName,
      cgroupRoot: this.options.cgroupRoot,
      log: this.log,
      watchPolicies: spec.watchPolicies ?? true,
    });
    this.nodeSafeMode = () => k8s.safeMode();
    // SIGHUP would end the process by default; with nothing to re-read it is only noted.
    process.on("SIGHUP", this.onSighupK8s);
    return k8s;
  }

  private safeMode(): SafeModeFlag {
    const flag = readSafeModeFlag(this.options.safeModeFile);
    if (flag.on) {
      return flag.reason ? flag : { on: true, reason: `flag file ${this.options.safeModeFile}` };
    }
    return this.nodeSafeMode?.() ?? flag;
  }

  /** An unload removes the pinned link: notice at once instead of at the next poll. */
  private watchPins(): void {
    if (this.pinWatcher !== null || this.stopping) return;
    try {
      this.pinWatcher = watch(this.options.loaderPaths.pinDir, { persistent: false }, () =>
        this.supervisor.wake(),
      );
      this.pinWatcher.on("error", () => {
        this.pinWatcher?.close();
        this.pinWatcher = null;
      });
    } catch {
      this.pinWatcher = null; // no pin folder yet: the 200 ms poll covers it
    }
  }

  // ------------------------------------------------------------------------------------------
  // Loader session: one `scx-slo-loader serve` child while the maps are pinned.

  private ensureSession(): LoaderSession | null {
    if (this.supervisor.status().state === "unsupported") return null;
    let ino: bigint;
    try {
      ino = statSync(path.join(this.options.loaderPaths.pinDir, "slo_map"), { bigint: true }).ino;
    } catch {
      this.closeSession();
      return null; // never loaded on this boot, or purged
    }
    if (this.session?.alive && this.sessionMapIno === ino) return this.session;
    this.closeSession();
    const s = new LoaderSession(this.options.loaderPaths);
    s.on("miss", (ev: MissEvent) => this.onMiss(ev));
    s.on("stderr", (text: string) => this.log.debug(`loader: ${text.trim()}`));
    s.on("exit", (code: number | null, signal: string | null) => {
      if (this.session === s && !this.stopping) {
        this.log.warn(`loader session ended (code ${code}, signal ${signal}); restarting it`);
      }
    });
    this.session = s;
    this.sessionMapIno = ino;
    return s;
  }

  private loadOptions(): LoadOptions {
    const budget = this.options.defaultBudgetMs;
    return budget !== undefined ? { defaultBudgetMs: budget } : {};
  }

  /**
   * Attaches the standby copy when there is one (waiting a little for one still in the verifier,
   * rather than running a second verifier beside it), else loads the object afresh.
   */
  private async attachScheduler(): Promise<void> {
    const standby = this.standby;
    this.standby = null;
    if (standby && !standby.ready) await withTimeout(standby.prepared, STANDBY_WAIT_MS);
    if (standby?.ready) {
      try {
        await standby.attach();
        this.metrics.standbyAttaches.inc({ result: "ok" });
        return;
      } catch (err) {
        this.metrics.standbyAttaches.inc({ result: "failed" });
        this.log.warn(`attaching the standby copy failed (${errorMessage(err)}); loading afresh`);
      }
    }
    await standby?.close();
    await loadScheduler(this.options.loaderPaths, this.loadOptions());
  }

  /** Verifies the next copy in the background; a failure only means the slow path next time. */
  private prepareStandby(): void {
    void this.dropStandby();
    if (this.stopping) return;
    let standby: StandbyScheduler;
    try {
      standby = new StandbyScheduler(this.options.loaderPaths, this.loadOptions());
    } catch (err) {
      this.log.warn(`no standby copy of the scheduler: ${errorMessage(err)}`);
      return;
    }
    this.standby = standby;
    void standby.prepared.then((ok) => {
      if (ok) this.log.debug("standby copy of scx_slo verified; a re-attach will take one attach");
      else if (this.standby === standby)
        this.log.warn(`no standby copy of the scheduler: ${standby.error}`);
    });
  }

  private dropStandby(): Promise<void> {
    const standby = this.standby;
    this.standby = null;
    return standby?.close() ?? Promise.resolve();
  }

  private closeSession(): void {
    const s = this.session;
    this.session = null;
    this.sessionMapIno = null;
    if (s?.alive) void s.close();
  }

  private onMiss(ev: MissEvent): void {
    this.metrics.missEventsReceived.inc();
    const second = Math.floor(Date.now() / 1000);
    if (this.missLogBudget.second !== second) this.missLogBudget = { second, left: 10 };
    if (this.missLogBudget.left-- > 0) {
      const slo = this.desired.find((d) => d.cgroupId === ev.cgroupId);
      this.log.debug(
        `miss: ${slo?.cgroupPath ?? `cgroup ${ev.cgroupId}`} pid ${ev.pid} (${ev.comm}) waited ` +
          `${(ev.waitNs / 1e6).toFixed(2)} ms, budget ${(ev.budgetNs / 1e6).toFixed(2)} ms, cpu ${ev.cpu}`,
      );
    }
  }

  // ------------------------------------------------------------------------------------------
  // Rescan: resolve rules -> reconcile the map -> read stats. Coalesced: one at a time.

  requestRescan(reason: string): Promise<void> {
    if (this.stopping) return Promise.resolve();
    if (this.rescanning) {
      this.rescanAgain ??= reason;
      return this.rescanning;
    }
    this.rescanning = (async () => {
      let why: string | null = reason;
      try {
        while (why !== null && !this.stopping) {
          this.rescanAgain = null;
          await this.rescanOnce(why);
          why = this.rescanAgain;
        }
      } finally {
        this.rescanning = null;
      }
    })();
    return this.rescanning;
  }

  private async rescanOnce(reason: string): Promise<void> {
    try {
      const rules = this.source?.current() ?? null;
      const session = this.ensureSession();
      if (rules !== null) {
        const started = performance.now();
        const resolved = resolveRules(rules, { root: this.options.cgroupRoot });
        const resolveMs = performance.now() - started;
        this.unresolvedLog.update(resolved.warnings);
        this.unresolved = resolved.warnings;
        this.metrics.unresolvedRules.set(resolved.unresolved);
        this.desired = resolved.slos;
        if (session) {
          const r = await reconcile(session, resolved.slos);
          const ms = performance.now() - started;
          this.entries = r.entries;
          this.metrics.sloEntries.set(r.entries);
          this.metrics.reconcileSeconds.set(ms / 1000);
          this.metrics.sloUpdates.inc({ op: "set" }, r.set);
          this.metrics.sloUpdates.inc({ op: "del" }, r.deleted);
          this.lastReconcile = {
            ...r,
            durationMs: ms,
            resolveMs,
            at: new Date().toISOString(),
            reason,
          };
          if (r.set > 0 || r.deleted > 0) {
            this.lastChange = this.lastReconcile;
            this.log.info(
              `SLO map: ${r.set} set, ${r.deleted} removed, ${r.unchanged} unchanged ` +
                `(${r.entries} entries, ${ms.toFixed(1)} ms, ${reason})`,
            );
          }
        }
      }
      if (session) {
        const snap = await session.stats();
        this.counters = snap.counters;
        this.stats = new Map(snap.cgroups.map((c) => [c.cgroupId, c]));
        this.overload.record(
          Date.now(),
          this.desired.flatMap((d) => {
            const st = this.stats.get(d.cgroupId);
            return st ? [{ key: d.cgroupPath, runs: st.runs, misses: st.misses }] : [];
          }),
        );
      }
      this.samples = this.computeSamples();
      if (this.lastRescanError !== null) this.log.info("rescan: working again");
      this.lastRescanError = null;
    } catch (err) {
      const msg = errorMessage(err);
      if (msg !== this.lastRescanError) this.log.warn(`rescan (${reason}): ${msg}; retrying`);
      this.lastRescanError = msg;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Views for metrics and HTTP.

  /** Computed once per rescan (after the stats read), not once per metric per scrape. */
  private samples: SloSample[] = [];

  private computeSamples(): SloSample[] {
    return this.desired.map((d) => ({
      cgroup: d.cgroupPath,
      namespace: d.labels.namespace ?? "",
      pod: d.labels.pod ?? "",
      budgetNs: Math.round(d.budgetNs),
      importance: d.importance,
      stats: this.stats.get(d.cgroupId) ?? null,
      overloaded: this.overload.evaluate(d.cgroupPath).overloaded,
    }));
  }

  private metricsView(): MetricsView {
    return {
      slos: () => this.samples,
      counters: () => this.counters,
      schedulerState: () => this.supervisor.status().state,
      reattaches: () => this.supervisor.status().reattaches,
      unplannedDetaches: () => this.supervisor.status().unplannedDetaches,
      lastExit: () => this.supervisor.status().lastExit,
    };
  }

  ready(): { ready: boolean; reasons: string[] } {
    const reasons: string[] = [];
    if (this.source?.current() == null) {
      reasons.push(`no SLO config loaded yet from ${this.source?.description ?? "the source"}`);
    }
    const st = this.supervisor.status();
    if (st.state === "starting" || st.state === "fallen_back") {
      reasons.push(`scheduler ${st.state}: ${st.reason}`);
    }
    return { ready: reasons.length === 0, reasons };
  }

  private overloadReply(q: OverloadQuery): JsonReply {
    let keys: string[];
    if (q.cgroup !== undefined) {
      keys = this.desired.some((d) => d.cgroupPath === q.cgroup) ? [q.cgroup] : [];
      if (keys.length === 0) {
        return { status: 404, body: { error: `no SLO cgroup ${q.cgroup} on this node` } };
      }
    } else if (q.namespace !== undefined && q.pod !== undefined) {
      keys = this.desired
        .filter((d) => d.labels.namespace === q.namespace && d.labels.pod === q.pod)
        .map((d) => d.cgroupPath);
      if (keys.length === 0) {
        return {
          status: 404,
          body: { error: `no SLO for pod ${q.namespace}/${q.pod} on this node` },
        };
      }
    } else {
      return {
        status: 400,
        body: { error: "ask with ?cgroup=/path or ?namespace=NS&pod=NAME" },
      };
    }
    const v = this.overload.evaluateAll(keys);
    return {
      status: 200,
      body: { ...v, cgroups: keys },
      headers: v.overloaded ? { "Retry-After": String(v.retry_after_s) } : {},
    };
  }

  status(): AgentStatusJson {
    const sup = this.supervisor.status();
    const sys = readScxSysfs(this.options.scxSysfsDir ?? SCX_SYSFS);
    const safe = this.safeMode();
    return {
      version: packageVersion(),
      pid: process.pid,
      started_at: this.startedAt.toISOString(),
      ready: this.ready(),
      source: {
        kind: this.options.source.kind,
        description: this.source?.description ?? "",
        loaded: this.source?.current() != null,
        reloads_ok: this.reloads.ok,
        reloads_failed: this.reloads.failed,
      },
      scheduler: {
        state: sup.state,
        reason: sup.reason,
        adopted: sup.adopted,
        attached_since:
          sup.attachedSince === null ? null : new Date(sup.attachedSince).toISOString(),
        reattaches: sup.reattaches,
        unplanned_detaches: sup.unplannedDetaches,
        attach_failures: sup.attachFailures,
        last_exit: sup.lastExit,
        last_error: sup.lastError,
        kernel_state: sys.state,
        ops: sys.ops,
        enable_seq: sys.enableSeq,
        standby: this.standby === null ? "none" : this.standby.ready ? "ready" : "preparing",
      },
      safe_mode: { on: safe.on, reason: safe.reason, file: this.options.safeModeFile },
      slos: {
        desired: this.desired.length,
        applied: this.entries,
        unresolved: this.unresolved,
        last_reconcile: this.lastReconcile,
        last_change: this.lastChange,
      },
      cgroups: this.desired.map((d) => {
        const st = this.stats.get(d.cgroupId);
        return {
          cgroup_id: String(d.cgroupId),
          cgroup: d.cgroupPath,
          namespace: d.labels.namespace ?? null,
          pod: d.labels.pod ?? null,
          budget_ns: Math.round(d.budgetNs),
          importance: d.importance,
          runs: st?.runs ?? 0,
          misses: st?.misses ?? 0,
          wait_max_ns: st?.waitMaxNs ?? 0,
          hist: st?.hist ?? [],
          overloaded: this.overload.evaluate(d.cgroupPath).overloaded,
          origin: d.origin.source,
        };
      }),
    };
  }

  private httpView(): HttpView {
    return {
      metrics: async () => ({
        contentType: this.metrics.registry.contentType,
        body: await this.metrics.registry.metrics(),
      }),
      ready: () => this.ready(),
      overload: (q) => this.overloadReply(q),
      status: () => this.status(),
    };
  }
}

/** GET /status: what `scx-slo status` reads from a running agent. */
export interface AgentStatusJson {
  version: string;
  pid: number;
  started_at: string;
  ready: { ready: boolean; reasons: string[] };
  source: {
    kind: string;
    description: string;
    loaded: boolean;
    reloads_ok: number;
    reloads_failed: number;
  };
  scheduler: {
    state: string;
    reason: string;
    adopted: boolean;
    attached_since: string | null;
    reattaches: number;
    unplanned_detaches: number;
    attach_failures: number;
    last_exit: unknown;
    last_error: string | null;
    kernel_state: string;
    ops: string | null;
    enable_seq: number;
    /** The pre-verified copy kept for a fast re-attach. */
    standby: "none" | "preparing" | "ready";
  };
  safe_mode: { on: boolean; reason: string; file: string };
  slos: {
    desired: number;
    applied: number;
    unresolved: string[];
    last_reconcile: LastReconcile | null;
    /** The last reconcile that wrote or removed anything. */
    last_change: LastReconcile | null;
  };
  cgroups: {
    cgroup_id: string;
    cgroup: string;
    namespace: string | null;
    pod: string | null;
    budget_ns: number;
    importance: number;
    runs: number;
    misses: number;
    wait_max_ns: number;
    hist: number[];
    overloaded: boolean;
    origin: string;
  }[];
}
