// What the loader answers, checked where it enters: every reply of scx-slo-loader (one-shot
// commands and the serve session) is parsed against these schemas, so a loader of another
// version, or a bug, shows up as an error naming the field instead of as undefined further on.
import { z } from "zod";
import { ExitInfoSchema, LayoutSchema } from "../api/status.js";

/** An array of finite numbers, checked in one pass (histograms are long and read often). */
const numbers = z.custom<number[]>(
  (v) => Array.isArray(v) && v.every((n) => typeof n === "number" && Number.isFinite(n)),
  { message: "expected an array of numbers" },
);
/** Cgroup ids travel as decimal strings (u64 does not fit a JSON number). */
const cgroupId = z
  .string()
  .regex(/^\d+$/)
  .transform((s) => BigInt(s));

export const SchedulerStatusSchema = z.object({
  sched_ext: z.boolean(),
  state: z.string(),
  ops: z.string().nullable(),
  attached: z.boolean(),
  link_pinned: z.boolean(),
  maps_pinned: z.boolean(),
  enable_seq: z.number(),
  gen: z.number().optional(),
  nr_attach: z.number().optional(),
  exit: ExitInfoSchema.optional(),
  /** Observer links pinned in the folder asked about (src/sched/observer.ts). */
  observer_links: z.number().optional(),
  /** Pinned identity, this build's, and whether they match (null: nothing pinned or unknown). */
  layout: z
    .object({
      pinned: LayoutSchema.nullable(),
      object: LayoutSchema.nullable(),
      compatible: z.boolean().nullable(),
    })
    .optional(),
});
export type SchedulerStatus = z.infer<typeof SchedulerStatusSchema>;

export const SloListSchema = z.object({
  slos: z.array(z.object({ cgroup_id: cgroupId, budget_ns: z.number(), importance: z.number() })),
});

export const StatsReplySchema = z.object({
  hist_buckets: z.number().int().positive(),
  counters: z.record(z.number()),
  cgroups: z.array(
    z.object({
      cgroup_id: cgroupId,
      runs: z.number(),
      wait_sum_ns: z.number(),
      wait_max_ns: z.number(),
      misses: z.number(),
      budget_ns: z.number(),
      importance: z.number(),
      hist: numbers,
    }),
  ),
});

export const MissEventSchema = z.object({
  event: z.literal("miss"),
  cgroup_id: cgroupId,
  wait_ns: z.number(),
  budget_ns: z.number(),
  at_ns: z.number(),
  pid: z.number(),
  cpu: z.number(),
  comm: z.string(),
});

/** The scheduler stopped (ops.exit), whatever the reason; exit_kind is enum scx_exit_kind. */
export const ExitEventSchema = z.object({
  event: z.literal("exit"),
  exit_kind: z.number(),
  at_ns: z.number(),
});

/** `get`: one SLO map entry, or null. */
export const GetReplySchema = z.object({
  slo: z.object({ cgroup_id: cgroupId, budget_ns: z.number(), importance: z.number() }).nullable(),
});

/** `counts`: runs and misses per SLO cgroup, without histograms. */
export const CountsReplySchema = z.object({
  cgroups: z.array(z.object({ cgroup_id: cgroupId, runs: z.number(), misses: z.number() })),
});

/** A reply line of the serve session: {"id":N,"ok":true,...} or {"id":N,"ok":false,"error":...}. */
export const SessionReplySchema = z.union([
  z.object({ id: z.number(), ok: z.literal(true) }).passthrough(),
  z.object({ id: z.number().nullable(), ok: z.literal(false), error: z.string() }),
]);

/** `scx-slo-loader abi`: the constants of bpf/scx_slo.h and the counters table. */
export const AbiSchema = z.object({
  name: z.string(),
  abi_version: z.number(),
  budget_min_ns: z.number(),
  budget_max_ns: z.number(),
  queue_budget_max_ns: z.number(),
  importance_min: z.number(),
  importance_max: z.number(),
  slo_map_max_entries: z.number(),
  max_cgroup_depth: z.number(),
  hist_min_shift: z.number(),
  hist_sub_bits: z.number(),
  hist_octaves: z.number(),
  hist_buckets: z.number(),
  miss_events_per_cpu_per_sec: z.number(),
  offender_idle: cgroupId,
  offender_unseen: cgroupId,
  observe_run_history: z.number(),
  counters: z.array(z.object({ name: z.string(), metric: z.string(), help: z.string() })),
});
export type Abi = z.infer<typeof AbiSchema>;
export type CounterDesc = Abi["counters"][number];

/** `scx-slo-loader observe`: the observer's programs are attached and their links pinned. */
export const ObserveReplySchema = z.object({
  ok: z.literal(true),
  observing: z.literal(true),
  pin_dir: z.string(),
  slo_pin_dir: z.string(),
  programs: z.array(z.string()),
});

/** `scx-slo-loader unobserve`: whether links were pinned, and whether the maps went too. */
export const UnobserveReplySchema = z.object({
  ok: z.literal(true),
  stopped: z.boolean(),
  purged: z.boolean(),
});

/** serve's `offenders`: CPU time cgroups held while an SLO cgroup's tasks waited (observer only). */
export const OffendersReplySchema = z.object({
  offenders: z.array(
    z.object({
      slo_cgroup_id: cgroupId,
      cgroup_id: cgroupId,
      waits: z.number(),
      wait_ns: z.number(),
      misses: z.number(),
      miss_ns: z.number(),
      last_wait_ns: z.number(),
    }),
  ),
});

/** What a load replaced when it found pins of another layout (native/loader.c). */
const HandOverReplySchema = z.object({
  from: LayoutSchema.nullable(),
  fallback_ms: z.number().nullable(),
  maps_replaced: z.number(),
  pins_dropped: z.number(),
});

/** `load`, `adopt` and a standby's attach: the build's layout, and a hand-over if one ran. */
export const LoadReplySchema = z.object({
  ok: z.literal(true),
  layout: LayoutSchema,
  handover: HandOverReplySchema.nullable(),
});
export type LoadReply = z.infer<typeof LoadReplySchema>;

/** A standby's lines: {"ready":true} once verified, then load's reply after "attach". */
export const StandbyLineSchema = z.object({
  ready: z.boolean().optional(),
  ok: z.boolean().optional(),
});

/** Parses one JSON line against schema; throws an Error naming what is wrong. */
export function parseLine<T extends z.ZodTypeAny>(
  schema: T,
  line: string,
  what: string,
): z.output<T> {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    throw new Error(`${what}: not JSON: ${line.slice(0, 200)}`);
  }
  return parseReply(schema, json, what);
}

/** Checks a parsed reply against schema; throws an Error naming the first field at fault. */
export function parseReply<T extends z.ZodTypeAny>(
  schema: T,
  json: unknown,
  what: string,
): z.output<T> {
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const at = issue?.path.length ? issue.path.join(".") : "(top)";
    throw new Error(`${what}: unexpected reply at ${at}: ${issue?.message ?? "invalid"}`);
  }
  return r.data as z.output<T>;
}
