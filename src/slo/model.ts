// The SLO vocabulary every part of the agent shares. Limits mirror the BPF side's clamps
// (bpf/scx_slo.h): user space rejects what the kernel would clamp, so nothing is silently changed.

export const BUDGET_MIN_MS = 1;
export const BUDGET_MAX_MS = 10_000;
export const IMPORTANCE_MIN = 1;
export const IMPORTANCE_MAX = 100;
/** Capacity of the BPF SLO map (SLO_MAP_MAX_ENTRIES in bpf/scx_slo.h). */
export const MAX_SLO_ENTRIES = 4096;

export const NS_PER_MS = 1_000_000;

/**
 * The one check every SLO source applies to a budget in milliseconds: in range, and a whole number
 * of nanoseconds (the kernel counts those; rounding a finer budget would silently change it).
 */
export function isValidBudgetMs(ms: number): boolean {
  return (
    Number.isFinite(ms) &&
    ms >= BUDGET_MIN_MS &&
    ms <= BUDGET_MAX_MS &&
    Math.round(ms * NS_PER_MS) / NS_PER_MS === ms
  );
}

/** The one range check every SLO source applies to an importance. */
export function isValidImportance(n: number): boolean {
  return Number.isInteger(n) && n >= IMPORTANCE_MIN && n <= IMPORTANCE_MAX;
}

/** Where a rule came from, for error messages and metrics labels. */
export interface Origin {
  /** "file:/etc/scx-slo/config:12", "k8s:pod/default/api-7d9", ... */
  readonly source: string;
}

/** Identity of a workload, for metrics labels (bounded: pods on one node). */
export interface WorkloadLabels {
  readonly namespace?: string;
  readonly pod?: string;
}

/**
 * A rule as a source declares it: one cgroup path, or a glob over cgroup paths.
 * Paths are relative to the cgroup2 mount and start with "/", e.g. "/kubepods/critical/payment-api".
 */
export interface SloRule {
  readonly match:
    | { readonly kind: "path"; readonly path: string }
    | { readonly kind: "glob"; readonly pattern: string };
  readonly budgetNs: number;
  readonly importance: number;
  readonly labels: WorkloadLabels;
  readonly origin: Origin;
}

/** A rule resolved to one existing cgroup: what the reconciler writes to the BPF map. */
export interface ResolvedSlo {
  readonly cgroupId: bigint;
  readonly cgroupPath: string;
  readonly budgetNs: number;
  readonly importance: number;
  readonly labels: WorkloadLabels;
  readonly origin: Origin;
}
