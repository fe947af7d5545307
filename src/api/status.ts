// GET /status: the agent's view as JSON, what `scx-slo status` reads. The schema is the contract:
// the agent builds values of this type and the CLI checks what it receives against it.
import { z } from "zod";

export const SCHEDULER_STATES = [
  "starting",
  "attached",
  "fallen_back",
  "safe_mode",
  "unsupported",
] as const;
export type SchedulerState = (typeof SCHEDULER_STATES)[number];

export const AGENT_MODES = ["enforce", "observe", "unsupported"] as const;
export type AgentMode = (typeof AGENT_MODES)[number];

/** Why the scheduler last stopped, from the kernel's exit record (the loader's exit_map). */
export const ExitInfoSchema = z.object({
  kind: z.number(),
  kind_name: z.string(),
  code: z.number(),
  reason: z.string(),
  msg: z.string(),
});
export type ExitInfo = z.infer<typeof ExitInfoSchema>;

/** A build's layout identity (native/layout.c): ABI version and the hash of its pinned maps. */
export const LayoutSchema = z.object({ abi: z.number(), hash: z.string() });
export type Layout = z.infer<typeof LayoutSchema>;

/**
 * The scheduler pinned by another build (another layout) was replaced by this agent's: its maps
 * got new pins, the SLOs were written again, and the kernel's fair class ran for fallback_ms
 * (null when nothing was attached to detach).
 */
export const HandOverSchema = z.object({
  at: z.string(),
  from: LayoutSchema.nullable(),
  to: LayoutSchema,
  fallback_ms: z.number().nullable(),
  maps_replaced: z.number(),
  pins_dropped: z.number(),
});
export type HandOver = z.infer<typeof HandOverSchema>;

const ReconcileSchema = z.object({
  set: z.number(),
  deleted: z.number(),
  unchanged: z.number(),
  entries: z.number(),
  durationMs: z.number(),
  phasesMs: z.object({ list: z.number(), del: z.number(), set: z.number() }),
  at: z.string(),
  reason: z.string(),
  /** Resolving the rules against the cgroup tree (part of durationMs). */
  resolveMs: z.number(),
});
export type ReconcileReport = z.infer<typeof ReconcileSchema>;

export const StatusCgroupSchema = z.object({
  cgroup_id: z.string(),
  cgroup: z.string(),
  namespace: z.string().nullable(),
  pod: z.string().nullable(),
  budget_ns: z.number(),
  importance: z.number(),
  runs: z.number(),
  misses: z.number(),
  wait_max_ns: z.number(),
  hist: z.array(z.number()),
  overloaded: z.boolean(),
  origin: z.string(),
  /** The cgroups that held the CPU longest while this one waited (observer only; else empty). */
  neighbours: z.array(z.object({ cgroup: z.string(), wait_ns: z.number() })),
  /** Time its own cpu.max held it back (cpu.stat); null without a cpu controller there. */
  throttled_ns: z.number().nullable(),
});

export const AgentStatusSchema = z.object({
  version: z.string(),
  pid: z.number(),
  started_at: z.string(),
  ready: z.object({ ready: z.boolean(), reasons: z.array(z.string()) }),
  source: z.object({
    kind: z.string(),
    description: z.string(),
    loaded: z.boolean(),
    reloads_ok: z.number(),
    reloads_failed: z.number(),
  }),
  scheduler: z.object({
    state: z.enum(SCHEDULER_STATES),
    reason: z.string(),
    adopted: z.boolean(),
    attached_since: z.string().nullable(),
    reattaches: z.number(),
    unplanned_detaches: z.number(),
    attach_failures: z.number(),
    last_exit: ExitInfoSchema.nullable(),
    last_error: z.string().nullable(),
    kernel_state: z.string(),
    ops: z.string().nullable(),
    enable_seq: z.number(),
    /** The pre-verified copy kept for a fast re-attach. */
    standby: z.enum(["none", "preparing", "ready"]),
    /** The last hand-over from a scheduler pinned by another build; null if none. */
    handover: HandOverSchema.nullable(),
  }),
  safe_mode: z.object({ on: z.boolean(), reason: z.string(), file: z.string() }),
  /** enforce (scx_slo), observe (the tracing observer) or unsupported, and why. */
  mode: z.object({
    mode: z.enum(AGENT_MODES),
    reason: z.string(),
    observer: z.enum(["off", "instead", "beside"]),
  }),
  slos: z.object({
    desired: z.number(),
    applied: z.number(),
    unresolved: z.array(z.string()),
    /** Cgroups the rules name that get no SLO: the map is full of more important ones. */
    left_out: z.array(z.object({ cgroup: z.string(), importance: z.number(), origin: z.string() })),
    last_reconcile: ReconcileSchema.nullable(),
    /** The last reconcile that wrote or removed anything. */
    last_change: ReconcileSchema.nullable(),
  }),
  cgroups: z.array(StatusCgroupSchema),
});
export type AgentStatus = z.infer<typeof AgentStatusSchema>;
