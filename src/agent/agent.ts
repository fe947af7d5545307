// The node agent: wires a rule source, the reconciler, the scheduler handle and its supervisor,
// the metrics and the HTTP endpoints together, and owns their start and stop. Each of those lives
// in its own module; control flows down from here, and what happens below comes back as events.
//
// At rest it does nothing: the rules, the cgroup folders they depend on, the pins, the safe-mode
// flag and the scheduler's exit all arrive as events; stats are read when asked for; only a slow
// safety pass runs on a timer.
//
// The agent owns no scheduler state: the link and maps are pinned in bpffs, so the agent can die
// and restart at any time and the scheduler keeps running on the SLOs last written.

import { mkdirSync, watch, type FSWatcher } from "node:fs";
import path from "node:path";
import type { AgentStatus } from "../api/status.js";
import { CgroupWatcher } from "../cgroup/watch.js";
import { agentRoutes, type AgentView } from "../http/routes.js";
import { startHttpServer, type RunningServer } from "../http/server.js";
import { createAgentMetrics, type AgentMetrics, type SloSample } from "../metrics/agent-metrics.js";
import { DEFAULT_OVERLOAD, OverloadTracker, type OverloadThresholds } from "../metrics/overload.js";
import { SchedulerHandle } from "../sched/handle.js";
import {
  defaultObserverPaths,
  ObserverHandle,
  pseudoOffenderName,
  throttlingFrom,
  topOffenders,
} from "../sched/observer.js";
import { readCpuStat } from "../cgroup/cgroupfs.js";
import { cgroupPathsById } from "../cgroup/resolve.js";
import { readAbi, type LoaderPaths, type LoadOptions, type MissEvent } from "../sched/loader.js";
import type { CounterDesc } from "../sched/replies.js";
import type { SloRule } from "../slo/model.js";
import { ConfigFileSource } from "../sources/file/source.js";
import type { ReloadResult, RuleSource } from "../sources/rule-source.js";
import type { ListenAddress } from "../util/listen.js";
import { errorMessage, type Logger } from "../util/log.js";
import { SharedResult } from "../util/shared-result.js";
import { ChunkPool, TextChunks, type PooledText } from "../util/text-chunks.js";
import { packageVersion } from "../util/version.js";
import { MissLog } from "./miss-log.js";
import { ModeControl, type ModeRequest } from "./mode.js";
import { ATTACHED_PASS, Reconciler, SAFETY_PASS, type ReconcilerState } from "./reconciler.js";
import { safeModeSwitch, writeSafeModeFlag, type SafeModeFlag } from "./safe-mode.js";
import { DEFAULT_SELF_BUDGET_MS, selfSloRule } from "./self-slo.js";
import { StatsReader } from "./stats.js";
import { buildStatus, writeStatusJson, type StatusParts } from "./status.js";
import { Supervisor, type SupervisorOptions } from "./supervisor.js";

/** Unknown neighbour cgroup ids are looked up (a walk of the tree) at most this often. */
const NEIGHBOUR_LOOKUP_MS = 10_000;
/**
 * The safety pass re-resolves every rule and re-reads the map, catching what no event told: an
 * inotify queue overflow (which fs.watch drops silently) or a map written around the agent. It
 * is what the agent costs at rest, in proportion to the SLO cgroups (a stat each, the map listed),
 * so it runs every 5 minutes, not every minute; events carry everything else at once.
 */
const SAFETY_PASS_MS = 300_000;

/** /metrics and /status show stats at most this old (concurrent scrapes share one read). */
const STATS_MAX_AGE_MS = 1000;
/** /overload judges on runs and misses at most this old. */
const OVERLOAD_SAMPLE_MAX_AGE_MS = 250;

export type SourceSpec =
  | { readonly kind: "file"; readonly file: string }
  | {
      readonly kind: "kubernetes";
      readonly nodeName: string;
      readonly watchPolicies?: boolean;
      /** A kubeconfig file; default: the pod's in-cluster config. */
      readonly kubeconfig?: string;
    };

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
  /** The safety pass: resolve and re-read the map even though no event said so. */
  readonly rescanMs?: number;
  /** How often runs and misses are sampled for the overload window while there are SLOs. */
  readonly overloadSampleMs?: number;
  /**
   * The agent's own latency budget: its cgroup gets an SLO (at the highest importance) so that
   * the control path keeps answering on a saturated node. 0 turns it off.
   */
  readonly selfBudgetMs?: number;
  /** The agent's own cgroup ("0::/path" in /proc/self/cgroup); tests name another. */
  readonly selfCgroup?: string | null;
  /** scx_slo, the observer, or whichever the kernel allows (mode.ts); default auto. */
  readonly mode?: ModeRequest;
  /** The observer beside scx_slo as well. */
  readonly observe?: boolean;
  /** The observer's loader, object and pin folder (tests give another pin folder). */
  readonly observerPaths?: LoaderPaths;
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
  private readonly observer: ObserverHandle;
  private readonly missLog: MissLog;
  private modes!: ModeControl;
  /** Cgroup paths of the neighbours the observer names, by id (looked up once each). */
  private readonly neighbourPaths = new Map<bigint, string>();
  private neighbourLookupAt = 0;
  private metrics!: AgentMetrics;
  private supervisor!: Supervisor;
  private reconciler!: Reconciler;
  private stats!: StatsReader;
  private cgroups!: CgroupWatcher;
  private flagWatch: FSWatcher | null = null;
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
    this.observer = new ObserverHandle(options.observerPaths ?? defaultObserverPaths());
    this.missLog = new MissLog(
      this.log,
      (id) => this.reconciler.state.desired.find((d) => d.cgroupId === id)?.cgroupPath,
    );
  }

  /** Starts everything; resolves with the HTTP URL once the first reconcile has run. */
  async start(): Promise<string> {
    const o = this.options;
    this.metrics = createAgentMetrics(this.metricsView(), { counters: await this.counterTable() });
    this.modes = new ModeControl({
      request: o.mode ?? "auto",
      beside: o.observe ?? false,
      scheduler: this.handle,
      observer: this.observer,
      schedulerState: () => this.supervisor.status().state,
      log: this.log,
      onChange: () => void this.reconciler.request("observer changed"),
    });
    this.cgroups = new CgroupWatcher({
      root: o.cgroupRoot,
      onChange: (folder) => void this.reconciler.cgroupChanged(folder),
      onOverflow: (wanted) =>
        this.log.warn(
          `the rules depend on ${wanted} cgroup folders, more than are watched; ` +
            `cgroups in the others are picked up by the safety pass`,
        ),
    });
    const self = this.selfRule();
    this.reconciler = new Reconciler({
      rules: () => {
        const rules = this.source?.current() ?? null;
        // Last, so a rule of the operator's own for the agent's cgroup comes first and wins.
        return rules === null || self === null ? rules : [...rules, self];
      },
      session: () => this.modes.sloSession(),
      cgroupRoot: o.cgroupRoot,
      metrics: this.metrics,
      log: this.log,
      onResolved: (dirs) => this.cgroups.setFolders(dirs),
    });
    this.stats = new StatsReader({
      session: () => this.modes.statsSession(),
      observer: () => (this.observer.attached ? this.observer.mapSession() : null),
      desired: () => this.reconciler.state.desired,
      overload: this.overload,
      log: this.log,
      ...(o.overloadSampleMs !== undefined ? { sampleMs: o.overloadSampleMs } : {}),
    });
    this.supervisor = new Supervisor({
      ...o.supervisor,
      log: this.log,
      control: this.handle,
      safeMode: safeModeSwitch(o.safeModeFile, () => this.otherSafeMode()),
      persistSafeMode: (reason) => writeSafeModeFlag(o.safeModeFile, reason),
    });
    this.supervisor.on("attached", () => {
      this.handle.watchPins();
      void this.reconciler.request(ATTACHED_PASS);
    });
    this.supervisor.on("state", () => void this.modes.apply());
    this.handle.on("pins", () => this.supervisor.wake());
    this.handle.on("pins-checked", () => void this.reconciler.request(ATTACHED_PASS));
    this.handle.on("exit", () => this.supervisor.wake());
    this.handle.on("miss", (ev: MissEvent) => {
      this.metrics.missEventsReceived.inc();
      this.missLog.note(ev);
    });

    this.server = await startHttpServer(agentRoutes(this.httpView()), o.listen);
    this.log.info(`scx-slo agent ${packageVersion()}: serving ${this.server.url}/metrics`);
    this.source = await this.createSource(o.source);
    await this.source.start(() => void this.reconciler.request("config change"));
    this.watchSafeModeFlag();
    await this.supervisor.start();
    this.handle.watchPins();
    await this.modes.apply();
    await this.reconciler.request("start");
    this.stats.start();
    this.rescanTimer = setInterval(() => {
      void this.modes.apply();
      void this.reconciler.request(SAFETY_PASS);
    }, o.rescanMs ?? SAFETY_PASS_MS);
    return this.server.url;
  }

  /** Re-reads the rules now (SIGHUP). */
  reload(why: string): Promise<void> {
    return this.source?.reload(why) ?? Promise.resolve();
  }

  async stop(): Promise<void> {
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    this.flagWatch?.close();
    this.cgroups?.close();
    this.stats?.stop();
    await this.supervisor?.stop();
    await this.modes?.stop();
    await this.source?.stop();
    await this.reconciler?.stop();
    // The scheduler and the observer stay attached: only the session children and the standby
    // copy go.
    await this.handle.close();
    await this.observer.close();
    await this.server?.close();
  }

  /** Safe mode's other switches: the node annotation, and --mode observe (scx_slo kept off). */
  private otherSafeMode(): SafeModeFlag | null {
    const node = this.nodeSafeMode();
    if (node?.on) return node;
    return this.modes.keepsSchedulerDetached()
      ? { on: true, reason: "--mode observe: the observer measures, scx_slo stays detached" }
      : node;
  }

  private selfRule(): SloRule | null {
    const rule = selfSloRule(
      this.options.selfBudgetMs ?? DEFAULT_SELF_BUDGET_MS,
      this.options.selfCgroup,
    );
    if (rule === "root") {
      this.log.info(
        "the agent runs in the root cgroup, which cannot carry an SLO: run it in a service or a " +
          "pod so that it keeps its latency on a saturated node",
      );
      return null;
    }
    return rule;
  }

  /** The safe-mode flag written or removed: the supervisor looks at once, not at its next poll. */
  private watchSafeModeFlag(): void {
    const dir = path.dirname(this.options.safeModeFile);
    const base = path.basename(this.options.safeModeFile);
    try {
      mkdirSync(dir, { recursive: true });
      this.flagWatch = watch(dir, { persistent: false }, (_event, name) => {
        if (name === null || name === base) this.supervisor.wake();
      });
      this.flagWatch.on("error", () => this.flagWatch?.close());
    } catch (err) {
      this.log.warn(
        `cannot watch ${dir} (${errorMessage(err)}): a safe-mode switch is seen at the next poll`,
      );
    }
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
      ...(spec.kubeconfig !== undefined ? { kubeconfig: spec.kubeconfig } : {}),
      // The supervisor looks at once, not at its next poll.
      onSafeModeChange: () => this.supervisor.wake(),
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
    return buildStatus(this.statusParts());
  }

  private statusParts(): StatusParts {
    return {
      startedAt: this.startedAt,
      ready: this.ready(),
      sourceKind: this.options.source.kind,
      source: this.source,
      reloads: this.reloads,
      supervisor: this.supervisor.status(),
      handle: this.handle,
      safeMode: safeModeSwitch(this.options.safeModeFile, () => this.otherSafeMode())(),
      mode: this.modes.report(),
      neighbours: (id) => this.neighbours(id),
      throttling: (p) => this.throttling(p),
      safeModeFile: this.options.safeModeFile,
      slos: this.reconciler.state,
      stats: this.stats.stats,
      overload: this.overload,
    };
  }

  // ------------------------------------------------------------------------------------------
  // Views for metrics and HTTP.

  /** The observer's five cgroups that held the CPU longest while this SLO cgroup waited. */
  private neighbours(sloCgroupId: bigint): { cgroup: string; waitNs: number }[] {
    const top = topOffenders(this.stats.offenders, sloCgroupId, 5, true);
    const unknown = top.filter(
      (o) => pseudoOffenderName(o.cgroupId) === null && !this.neighbourPaths.has(o.cgroupId),
    );
    // A walk of the cgroup tree, so at most once in a while, for ids not seen before.
    if (unknown.length > 0 && Date.now() - this.neighbourLookupAt > NEIGHBOUR_LOOKUP_MS) {
      this.neighbourLookupAt = Date.now();
      const found = cgroupPathsById(
        unknown.map((o) => o.cgroupId),
        this.options.cgroupRoot,
      );
      for (const o of unknown) this.neighbourPaths.set(o.cgroupId, found.get(o.cgroupId) ?? "");
    }
    return top.map((o) => ({
      cgroup:
        pseudoOffenderName(o.cgroupId) ??
        (this.neighbourPaths.get(o.cgroupId) || `cgroup id ${o.cgroupId}`),
      waitNs: o.waitNs,
    }));
  }

  /** The SLO cgroup's own cpu.max throttling (cpu.stat), null where it has no cpu controller. */
  private throttling(cgroupPath: string) {
    try {
      return throttlingFrom(readCpuStat(cgroupPath, this.options.cgroupRoot));
    } catch {
      return null;
    }
  }

  private samplesOf: [ReconcilerState, ReadonlyMap<bigint, unknown>] | null = null;
  private samples: SloSample[] = [];

  /** Computed once per pass or stats read, not once per metric per scrape. */
  private sloSamples(): SloSample[] {
    const st = this.reconciler.state;
    const stats = this.stats.stats;
    if (this.samplesOf?.[0] === st && this.samplesOf[1] === stats) return this.samples;
    this.samplesOf = [st, stats];
    this.samples = st.desired.map((d) => ({
      cgroup: d.cgroupPath,
      namespace: d.labels.namespace ?? "",
      pod: d.labels.pod ?? "",
      budgetNs: Math.round(d.budgetNs),
      importance: d.importance,
      stats: stats.get(d.cgroupId) ?? null,
      overloaded: this.overload.evaluate(d.cgroupPath).overloaded,
      neighbours: this.stats.offenders.length > 0 ? this.neighbours(d.cgroupId) : [],
      throttling: this.throttling(d.cgroupPath),
    }));
    return this.samples;
  }

  private metricsView() {
    return {
      slos: () => this.sloSamples(),
      counters: () => this.stats.counters,
      schedulerState: () => this.supervisor.status().state,
      mode: () => this.modes.report().mode,
      reattaches: () => this.supervisor.status().reattaches,
      unplannedDetaches: () => this.supervisor.status().unplannedDetaches,
      lastExit: () => this.supervisor.status().lastExit,
    };
  }

  private httpView(): AgentView {
    // One render a second at most, shared by every reader in it. Each reader holds the text until
    // its response is sent, the cache until it is too old; then its chunks serve the next render.
    const shared = (render: (pool: ChunkPool) => Promise<PooledText>) => {
      const pool = new ChunkPool();
      const result = new SharedResult(
        async () => {
          await this.stats.fresh(STATS_MAX_AGE_MS);
          return render(pool);
        },
        STATS_MAX_AGE_MS,
        (text) => text.release(),
      );
      return async () => {
        const text = (await result.get()).retain();
        return { body: text.chunks, sent: () => text.release() };
      };
    };
    const exposition = shared((pool) => this.metrics.renderText(pool));
    const statusJson = shared(async (pool) => {
      const out = new TextChunks(pool);
      writeStatusJson(this.statusParts(), out);
      return out.finish();
    });
    return {
      metrics: async () => ({
        contentType: this.metrics.registry.contentType,
        ...(await exposition()),
      }),
      ready: () => this.ready(),
      sloCgroups: () =>
        this.reconciler.state.desired.map((d) => ({
          cgroup: d.cgroupPath,
          ...(d.labels.namespace !== undefined ? { namespace: d.labels.namespace } : {}),
          ...(d.labels.pod !== undefined ? { pod: d.labels.pod } : {}),
        })),
      verdict: async (cgroups) => {
        this.stats.noteOverloadDemand();
        await this.stats.sample(OVERLOAD_SAMPLE_MAX_AGE_MS);
        return this.overload.evaluateAll(cgroups);
      },
      status: () => statusJson(),
    };
  }
}
