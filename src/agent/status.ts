// GET /status, assembled from the parts that know each piece: the source, the supervisor, the
// scheduler handle, the reconciler and the overload tracker. Pure: it reads, never changes. The
// JSON is written one SLO cgroup at a time (util/text-chunks.ts): with thousands of them, no
// object tree or string of the whole is made.
import type { AgentStatus } from "../api/status.js";
import type { OverloadTracker } from "../metrics/overload.js";
import type { SchedulerHandle } from "../sched/handle.js";
import type { CgroupStats } from "../sched/loader.js";
import type { RuleSource } from "../sources/rule-source.js";
import { packageVersion } from "../util/version.js";
import type { CpuThrottling } from "../sched/observer.js";
import type { ModeReport } from "./mode.js";
import type { ReconcilerState } from "./reconciler.js";
import type { SafeModeFlag } from "./safe-mode.js";
import type { SupervisorStatus } from "./supervisor.js";
import type { ResolvedSlo } from "../slo/model.js";
import type { TextChunks } from "../util/text-chunks.js";

type StatusCgroup = AgentStatus["cgroups"][number];

export interface StatusParts {
  readonly startedAt: Date;
  readonly ready: { ready: boolean; reasons: string[] };
  readonly sourceKind: string;
  readonly source: RuleSource | null;
  readonly reloads: { readonly ok: number; readonly failed: number };
  readonly supervisor: SupervisorStatus;
  readonly handle: SchedulerHandle;
  readonly safeMode: SafeModeFlag;
  readonly safeModeFile: string;
  readonly slos: ReconcilerState;
  readonly stats: ReadonlyMap<bigint, CgroupStats>;
  readonly overload: OverloadTracker;
  readonly mode: ModeReport;
  /** The cgroups that held the CPU longest while this SLO cgroup waited (the observer's). */
  readonly neighbours: (sloCgroupId: bigint) => readonly { cgroup: string; waitNs: number }[];
  readonly throttling: (cgroupPath: string) => CpuThrottling | null;
}

export function buildStatus(p: StatusParts): AgentStatus {
  return { ...statusHead(p), cgroups: p.slos.desired.map((d) => statusCgroup(p, d)) };
}

/** The same as JSON and a newline, into out. */
export function writeStatusJson(p: StatusParts, out: TextChunks): void {
  // The head with an empty list last, written up to that list's "[".
  const head = JSON.stringify({ ...statusHead(p), cgroups: [] });
  out.write(head.slice(0, -2));
  p.slos.desired.forEach((d, i) =>
    out.write((i > 0 ? "," : "") + JSON.stringify(statusCgroup(p, d))),
  );
  out.write("]}\n");
}

function statusHead(p: StatusParts): Omit<AgentStatus, "cgroups"> {
  const sup = p.supervisor;
  const sys = p.handle.kernelState();
  return {
    version: packageVersion(),
    pid: process.pid,
    started_at: p.startedAt.toISOString(),
    ready: p.ready,
    source: {
      kind: p.sourceKind,
      description: p.source?.description ?? "",
      loaded: p.source?.current() != null,
      reloads_ok: p.reloads.ok,
      reloads_failed: p.reloads.failed,
    },
    scheduler: {
      state: sup.state,
      reason: sup.reason,
      adopted: sup.adopted,
      attached_since: sup.attachedSince === null ? null : new Date(sup.attachedSince).toISOString(),
      reattaches: sup.reattaches,
      unplanned_detaches: sup.unplannedDetaches,
      attach_failures: sup.attachFailures,
      last_exit: sup.lastExit,
      last_error: sup.lastError,
      kernel_state: sys.state,
      ops: sys.ops,
      enable_seq: sys.enableSeq,
      standby: p.handle.standbyState(),
      handover: p.handle.lastHandOver,
    },
    safe_mode: { on: p.safeMode.on, reason: p.safeMode.reason, file: p.safeModeFile },
    mode: p.mode,
    slos: {
      desired: p.slos.desired.length,
      applied: p.slos.entries,
      unresolved: [...p.slos.unresolved],
      left_out: p.slos.leftOut.map((l) => ({
        cgroup: l.cgroupPath,
        importance: l.importance,
        origin: l.origin.source,
      })),
      last_reconcile: p.slos.lastReconcile,
      last_change: p.slos.lastChange,
    },
  };
}

function statusCgroup(p: StatusParts, d: ResolvedSlo): StatusCgroup {
  const st = p.stats.get(d.cgroupId);
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
    overloaded: p.overload.evaluate(d.cgroupPath).overloaded,
    origin: d.origin.source,
    neighbours: p.neighbours(d.cgroupId).map((n) => ({ cgroup: n.cgroup, wait_ns: n.waitNs })),
    throttled_ns: p.throttling(d.cgroupPath)?.throttledNs ?? null,
  };
}
