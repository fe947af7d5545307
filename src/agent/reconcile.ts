// Desired SLOs vs what the BPF SLO map holds: only the difference is written, through the one
// loader session, as map updates. The scheduler is never reloaded for an SLO change.

import type { SloEntry } from "../sched/loader.js";
import type { LoaderSession } from "../sched/session.js";
import type { ResolvedSlo } from "../slo/model.js";

export interface SloDiff {
  /** New cgroups and cgroups whose budget or importance changed. */
  readonly set: SloEntry[];
  /** Map entries no desired SLO names (cgroup gone, rule removed). */
  readonly del: bigint[];
  readonly unchanged: number;
}

/** The budget as the map stores it (whole nanoseconds, as LoaderSession.set writes it). */
function mapBudget(budgetNs: number): number {
  return Math.round(budgetNs);
}

/** Pure: what to write so that the map holds exactly `desired`. Duplicate ids: the first wins. */
export function diffSlos(desired: readonly ResolvedSlo[], current: readonly SloEntry[]): SloDiff {
  const have = new Map<bigint, SloEntry>();
  for (const e of current) have.set(e.cgroupId, e);
  const want = new Set<bigint>();
  const set: SloEntry[] = [];
  let unchanged = 0;
  for (const d of desired) {
    if (want.has(d.cgroupId)) continue;
    want.add(d.cgroupId);
    const budgetNs = mapBudget(d.budgetNs);
    const cur = have.get(d.cgroupId);
    if (cur !== undefined && cur.budgetNs === budgetNs && cur.importance === d.importance) {
      unchanged++;
    } else {
      set.push({ cgroupId: d.cgroupId, budgetNs, importance: d.importance });
    }
  }
  const del = current.map((e) => e.cgroupId).filter((id) => !want.has(id));
  return { set, del, unchanged };
}

export interface ReconcileResult {
  readonly set: number;
  readonly deleted: number;
  readonly unchanged: number;
  /** Entries in the map afterwards. */
  readonly entries: number;
  readonly durationMs: number;
  /** Where the time went: reading the map, removing, writing. */
  readonly phasesMs: { readonly list: number; readonly del: number; readonly set: number };
}

export type SloMapClient = Pick<LoaderSession, "list" | "set" | "del">;

/**
 * Applies the difference between desired and the map (deletes first, freeing room in a full
 * map). The map is read first unless the caller knows what it holds (known: the entries after its
 * own last write).
 */
export async function reconcile(
  client: SloMapClient,
  desired: readonly ResolvedSlo[],
  known: readonly SloEntry[] | null = null,
  now: () => number = () => performance.now(),
): Promise<ReconcileResult & { readonly after: SloEntry[] }> {
  const started = now();
  const current = known ?? (await client.list());
  const listed = now();
  const diff = diffSlos(desired, current);
  if (diff.del.length > 0) await client.del(diff.del);
  const deleted = now();
  if (diff.set.length > 0) await client.set(diff.set);
  const done = now();
  const after = new Map(current.map((e) => [e.cgroupId, e]));
  for (const id of diff.del) after.delete(id);
  for (const e of diff.set) after.set(e.cgroupId, e);
  return {
    after: [...after.values()],
    set: diff.set.length,
    deleted: diff.del.length,
    unchanged: diff.unchanged,
    entries: diff.unchanged + diff.set.length,
    durationMs: done - started,
    phasesMs: { list: listed - started, del: deleted - listed, set: done - deleted },
  };
}
