// The agent's control loop: rules -> the cgroups they name now -> the difference written to the
// SLO map. It runs when something may have changed (the rules, a cgroup created or removed, the
// scheduler attached) and on a slow safety timer, never on a fast one. One pass at a time;
// requests during a pass fold into one more pass (util/coalesce.ts).

import type { ReconcileReport } from "../api/status.js";
import { IncrementalResolver, type LeftOutCgroup } from "../cgroup/resolve.js";
import type { AgentMetrics } from "../metrics/agent-metrics.js";
import type { SloEntry } from "../sched/loader.js";
import type { LoaderSession } from "../sched/session.js";
import { MAX_SLO_ENTRIES, type ResolvedSlo, type SloRule } from "../slo/model.js";
import { Coalescer } from "../util/coalesce.js";
import { errorMessage, OnceLog, type Logger } from "../util/log.js";
import { reconcile } from "./reconcile.js";

/** After a failed pass, the next one comes this much later even if nothing else asks. */
const RETRY_MS = 1000;

/** The reason of the slow pass that also re-reads the map, in case it was written around us. */
export const SAFETY_PASS = "safety rescan";
/**
 * The pass after an attach, which also re-reads the map: an attach may have brought other maps
 * (a hand-over from another build pins new, empty ones).
 */
export const ATTACHED_PASS = "scheduler attached";

export interface ReconcilerOptions {
  /** The rules in force; null until the source has a first good set. */
  readonly rules: () => readonly SloRule[] | null;
  /** The serve session for the pinned maps; null while there are none. */
  readonly session: () => LoaderSession | null;
  readonly cgroupRoot: string;
  readonly metrics: AgentMetrics;
  readonly log: Logger;
  /** After each resolve: the folders in which a cgroup change could change the result. */
  readonly onResolved?: (watchDirs: ReadonlySet<string>) => void;
}

/** What the last pass left behind, read by metrics, /overload and /status. */
export interface ReconcilerState {
  readonly desired: readonly ResolvedSlo[];
  /** Rules that name no cgroup yet, one line each. */
  readonly unresolved: readonly string[];
  /** Cgroups the rules name that get no SLO: the map is full of more important ones. */
  readonly leftOut: readonly LeftOutCgroup[];
  /** Entries in the SLO map after the last write. */
  readonly entries: number;
  readonly lastReconcile: ReconcileReport | null;
  /** The last pass that wrote or removed anything. */
  readonly lastChange: ReconcileReport | null;
}

/** Left-out cgroups named one per log line; past this, one line says how many more. */
const LEFT_OUT_LOG_LINES = 20;

function leftOutMessage(l: LeftOutCgroup): string {
  return (
    `cgroup ${l.cgroupPath} gets no SLO (${l.origin.source}, importance ${l.importance}): ` +
    `the rules name more cgroups than the SLO map holds (${MAX_SLO_ENTRIES}) and more important ` +
    `ones fill it (narrow the globs, or raise this rule's importance)`
  );
}

export class Reconciler {
  private readonly unresolvedLog: OnceLog;
  private readonly leftOutLog: OnceLog;
  private readonly passes: Coalescer;
  private readonly resolver: IncrementalResolver;
  /** Folders where cgroups were created or removed since the last pass. */
  private changed = new Set<string>();
  private stopped = false;
  private lastError: string | null = null;
  private retry: NodeJS.Timeout | null = null;
  /** What the map holds after our last write through `knownFor`; null: read it first. */
  private known: readonly SloEntry[] | null = null;
  private knownFor: LoaderSession | null = null;
  private s: ReconcilerState = {
    desired: [],
    unresolved: [],
    leftOut: [],
    entries: 0,
    lastReconcile: null,
    lastChange: null,
  };

  constructor(private readonly o: ReconcilerOptions) {
    this.unresolvedLog = new OnceLog(
      (m) => o.log.warn(m),
      (m) => o.log.info(`resolved now: ${m.split(": ")[0]}`),
    );
    this.leftOutLog = new OnceLog(
      (m) => o.log.warn(m),
      (m) => o.log.info(`has its SLO now: ${m.split(" gets no SLO")[0]}`),
      {
        lines: LEFT_OUT_LOG_LINES,
        more: (n) =>
          `... and ${n} more cgroups get no SLO (all are listed in /status slos.left_out)`,
        moreCleared: (n) => `... and ${n} more cgroups left out before have their SLO now`,
      },
    );
    this.passes = new Coalescer(
      (why) => this.pass(why),
      () => this.stopped,
    );
    this.resolver = new IncrementalResolver({ root: o.cgroupRoot });
  }

  /** A cgroup was created or removed in folder: the rules that depend on it are matched again. */
  cgroupChanged(folder: string): Promise<void> {
    this.changed.add(folder);
    return this.request("cgroup change");
  }

  get state(): ReconcilerState {
    return this.s;
  }

  /** Runs a pass now (or once more after the one under way); resolves when it is done. */
  request(reason: string): Promise<void> {
    return this.passes.request(reason);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    await this.passes.idle();
  }

  private async pass(reason: string): Promise<void> {
    const { metrics, log } = this.o;
    try {
      const rules = this.o.rules();
      if (rules === null) return;
      const session = this.o.session();
      const started = performance.now();
      const folders = reason === SAFETY_PASS ? "all" : this.changed;
      this.changed = new Set();
      const resolved = this.resolver.resolve(rules, folders);
      const resolveMs = performance.now() - started;
      this.o.onResolved?.(resolved.watchDirs);
      this.unresolvedLog.update(resolved.warnings);
      metrics.unresolvedRules.set(resolved.unresolved);
      this.leftOutLog.update(resolved.leftOut.map(leftOutMessage));
      metrics.cgroupsLeftOut.set(resolved.leftOut.length);
      this.s = {
        ...this.s,
        desired: resolved.slos,
        unresolved: resolved.warnings,
        leftOut: resolved.leftOut,
      };
      if (!session) return;
      const reread = reason === SAFETY_PASS || reason === ATTACHED_PASS;
      const trusted = this.knownFor === session && !reread ? this.known : null;
      this.known = null;
      const r = await reconcile(session, resolved.slos, trusted);
      this.known = r.after;
      this.knownFor = session;
      const ms = performance.now() - started;
      metrics.sloEntries.set(r.entries);
      metrics.reconcileSeconds.set(ms / 1000);
      metrics.sloUpdates.inc({ op: "set" }, r.set);
      metrics.sloUpdates.inc({ op: "del" }, r.deleted);
      const report: ReconcileReport = {
        set: r.set,
        deleted: r.deleted,
        unchanged: r.unchanged,
        entries: r.entries,
        phasesMs: r.phasesMs,
        durationMs: ms,
        resolveMs,
        at: new Date().toISOString(),
        reason,
      };
      const changed = r.set > 0 || r.deleted > 0;
      this.s = {
        ...this.s,
        entries: r.entries,
        lastReconcile: report,
        lastChange: changed ? report : this.s.lastChange,
      };
      if (changed) {
        log.info(
          `SLO map: ${r.set} set, ${r.deleted} removed, ${r.unchanged} unchanged ` +
            `(${r.entries} entries, ${ms.toFixed(1)} ms, ${reason})`,
        );
      }
      if (this.lastError !== null) log.info("reconcile: working again");
      this.lastError = null;
    } catch (err) {
      const msg = errorMessage(err);
      if (msg !== this.lastError) log.warn(`reconcile (${reason}): ${msg}; retrying`);
      this.lastError = msg;
      this.retry ??= setTimeout(() => {
        this.retry = null;
        void this.request("retry");
      }, RETRY_MS);
    }
  }
}
