// The agent's own SLO. On a saturated node the agent, the loader children it starts and whoever
// asks it (/overload) are queued behind the very work they manage, unless the agent's cgroup has
// an SLO the scheduler honours. It gets one, at the highest importance, appended after the
// operator's rules so that a rule of the operator's own for that cgroup wins.
import { readFileSync } from "node:fs";
import { IMPORTANCE_MAX, NS_PER_MS, type SloRule } from "../slo/model.js";

/** The agent's own budget unless told otherwise: well above what its work needs at once. */
export const DEFAULT_SELF_BUDGET_MS = 10;

/** The agent's cgroup on the unified hierarchy, from /proc/self/cgroup; null when unknown. */
export function ownCgroupPath(): string | null {
  try {
    const line = readFileSync("/proc/self/cgroup", "utf8")
      .split("\n")
      .find((l) => l.startsWith("0::"));
    return line ? line.slice(3).trim() || null : null;
  } catch {
    return null;
  }
}

/**
 * The rule for the agent's cgroup (its own, or `cgroup` when given); null when turned off
 * (budget 0) or unknown, "root" when the agent runs in the root cgroup, which cannot carry one.
 */
export function selfSloRule(
  budgetMs: number,
  cgroup: string | null = ownCgroupPath(),
): SloRule | null | "root" {
  if (budgetMs === 0 || cgroup === null) return null;
  if (cgroup === "/") return "root";
  return {
    match: { kind: "path", path: cgroup },
    budgetNs: budgetMs * NS_PER_MS,
    importance: IMPORTANCE_MAX,
    labels: {},
    origin: { source: "agent: its own cgroup (--self-budget-ms)" },
  };
}
