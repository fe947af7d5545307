// The node agent: wires a rule source, the reconciler, the scheduler handle and its supervisor,
// the metrics and the HTTP endpoints together, and owns their start and stop. Each of those lives
// in its own module; control flows down from here, and what happens below comes back as events.
//
// The agent owns no scheduler state: the link and maps are pinned in bpffs, so the agent can die
// and restart at any time and the scheduler keeps running on the SLOs last written.

import type { AgentStatus } from "../api/status.js";
import { agentRoutes, type AgentView } from "../http/routes.js";
import { startHttpServer, type RunningServer } from "../http/server.js";
import { createAgentMetrics, type AgentMetrics, type SloSample } from "../metrics/agent-metrics.js";
import { DEFAULT_OVERLOAD, OverloadTracker, type OverloadThresholds } from "../metrics/overload.js";
import { SchedulerHandle } from "../sched/handle.js";
import { readAbi, type LoaderPaths, type LoadOptions, type MissEvent } from "../sched/loader.js";
import type { CounterDesc } from "../sched/replies.js";
import { ConfigFileSource } from "../sources/file/source.js";
import type { ReloadResult, RuleSource } from "../sources/rule-source.js";
import type { ListenAddress } from "../util/listen.js";
import { errorMessage, type Logger } from "../util/log.js";
import { packageVersion } from "../util/version.js";
import { MissLog } from "./miss-log.js";
import { Reconciler, type ReconcilerState } from "./reconciler.js";
import { safeModeSwitch, writeSafeModeFlag, type SafeModeFlag } from "./safe-mode.js";
import { buildStatus } from "./status.js";
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

export class Agent {
  private readonly log: Logger;
  private readonly overload: OverloadTracker;
  private readonly handle: SchedulerHandle;
  private readonly missLog: MissLog;
  private metrics!: AgentMetrics;
  private supervisor!: Supervisor;
  private reconciler!: Reconciler;
  private source: RuleSource | null = null;
  private nodeSafeMode: () => SafeModeFlag | null = () => null;
  private server: RunningServer | null = null;
  private reloads = { ok: 0, failed: 0 };
  private rescanTimer: NodeJS.Timeout | null = null;
  private readonly startedAt = new Date();

  constructor(private readonly options: AgentOptions) {
    this.log = options.log;
    this.overload = new OverloadTracker(options.overload ?? DEFAULT_OVERLOAD);
    const load: LoadOptions =
      options.defaultBudgetMs !== undefined ? { defaultBudgetMs: options.defaultBudgetMs } : {};
    this.handle = new SchedulerHandle({
      paths: options.loaderPaths,
      load,
      log: this.log,
      ...(options.scxSysfsDir !== undefined ? { scxSysfsDir: options.scxSysfsDir } : {}),
      onStandbyAttach: (result) => this.metrics.standbyAttaches.inc({ result }),
    });
    this.missLog = new MissLog(
      this.log,
      (id) => this.reconciler.state.desired.find((d) => d.cgroupId === id)?.cgroupPath,
    );
  }

  /** Starts everything; resolves with the HTTP URL once the first reconcile has run. */
  async start(): Promise<string> {
    const o = this.options;
    this.metrics = createAgentMetrics(this.metricsView(), { counters: await this.counterTable() });
    this.reconciler = new Reconciler({
      rules: () => this.source?.current() ?? null,
      session: () =>
        this.supervisor.status().state === "unsupported" ? null : this.handle.mapSession(),
      cgroupRoot: o.cgroupRoot,
      metrics: this.metrics,
      overload: this.overload,
      log: this.log,
    });
    this.supervisor = new Supervisor({
      ...o.supervisor,
      log: this.log,
      control: this.handle,
      safeMode: safeModeSwitch(o.safeModeFile, () => this.nodeSafeMode()),
      persistSafeMode: (reason) => writeSafeModeFlag(o.safeModeFile, reason),
    });
    this.supervisor.on("attached", () => {
      this.handle.watchPins();
      void this.reconciler.request("scheduler attached");
    });
    this.handle.on("pins", () => this.supervisor.wake());
    this.handle.on("miss", (ev: MissEvent) => {
      this.metrics.missEventsReceived.inc();
      this.missLog.note(ev);
    });

    this.server = await startHttpServer(agentRoutes(this.httpView()), o.listen);
    this.log.info(`scx-slo agent ${packageVersion()}: serving ${this.server.url}/metrics`);
    this.source = await this.createSource(o.source);
    await this.source.start(() => void this.reconciler.request("config change"));
    await this.supervisor.start();
    this.handle.watchPins();
    await this.reconciler.request("start");
    this.rescanTimer = setInterval(
      () => void this.reconciler.request("rescan"),
      o.rescanMs ?? 1000,
    );
    return this.server.url;
  }

  /** Re-reads the rules now (SIGHUP). */
  reload(why: string): Promise<void> {
    return this.source?.reload(why) ?? Promise.resolve();
  }

  async stop(): Promise<void> {
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    await this.supervisor?.stop();
    await this.source?.stop();
    await this.reconciler?.stop();
    // The scheduler stays attached: only the session child and the standby copy go.
    await this.handle.close();
    await this.server?.close();
  }

  /** The scheduler's counters as this build of the loader names them; none if it cannot say. */
  private async counterTable(): Promise<readonly CounterDesc[]> {
    try {
      return (await readAbi(this.options.loaderPaths)).counters;
    } catch (err) {
      this.log.warn(`the loader did not describe its counters (${errorMessage(err)})`);
      return [];
    }
  }

  private async createSource(spec: SourceSpec): Promise<RuleSource> {
    const onReload = (r: ReloadResult) => {
      this.reloads[r]++;
      this.metrics.configReloads.inc({ result: r });
    };
    if (spec.kind === "file") {
      return new ConfigFileSource({ file: spec.file, log: this.log, onReload });
    }
    // Loaded only in Kubernetes mode: the file-mode agent stays small.
    const { KubernetesRuleSource } = await import("../sources/kubernetes/source.js");
    const k8s = new KubernetesRuleSource({
      nodeName: spec.nodeName,
      cgroupRoot: this.options.cgroupRoot,
      log: this.log,
      watchPolicies: spec.watchPolicies ?? true,
    });
    this.nodeSafeMode = () => k8s.safeMode();
    return k8s;
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

  status(): AgentStatus {
    return buildStatus({
      startedAt: this.startedAt,
      ready: this.ready(),
      sourceKind: this.options.source.kind,
      source: this.source,
      reloads: this.reloads,
      supervisor: this.supervisor.status(),
      handle: this.handle,
      safeMode: safeModeSwitch(this.options.safeModeFile, () => this.nodeSafeMode())(),
      safeModeFile: this.options.safeModeFile,
      slos: this.reconciler.state,
      overload: this.overload,
    });
  }

  // ------------------------------------------------------------------------------------------
  // Views for metrics and HTTP.

  private samplesOf: ReconcilerState | null = null;
  private samples: SloSample[] = [];

  /** Computed once per reconciler pass, not once per metric per scrape. */
  private sloSamples(): SloSample[] {
    const st = this.reconciler.state;
    if (st === this.samplesOf) return this.samples;
    this.samplesOf = st;
    this.samples = st.desired.map((d) => ({
      cgroup: d.cgroupPath,
      namespace: d.labels.namespace ?? "",
      pod: d.labels.pod ?? "",
      budgetNs: Math.round(d.budgetNs),
      importance: d.importance,
      stats: st.stats.get(d.cgroupId) ?? null,
      overloaded: this.overload.evaluate(d.cgroupPath).overloaded,
    }));
    return this.samples;
  }

  private metricsView() {
    return {
      slos: () => this.sloSamples(),
      counters: () => this.reconciler.state.counters,
      schedulerState: () => this.supervisor.status().state,
      reattaches: () => this.supervisor.status().reattaches,
      unplannedDetaches: () => this.supervisor.status().unplannedDetaches,
      lastExit: () => this.supervisor.status().lastExit,
    };
  }

  private httpView(): AgentView {
    return {
      metrics: async () => ({
        contentType: this.metrics.registry.contentType,
        body: await this.metrics.registry.metrics(),
      }),
      ready: () => this.ready(),
      sloCgroups: () =>
        this.reconciler.state.desired.map((d) => ({
          cgroup: d.cgroupPath,
          ...(d.labels.namespace !== undefined ? { namespace: d.labels.namespace } : {}),
          ...(d.labels.pod !== undefined ? { pod: d.labels.pod } : {}),
        })),
      verdict: (cgroups) => this.overload.evaluateAll(cgroups),
      status: () => this.status(),
    };
  }
}
