// GET /overload?cgroup=/path or ?namespace=NS&pod=NAME: whether the workload misses its budget too
// often right now, and how long a load shedder should tell clients to wait. The agent answers
// with this; the sidecar and the middleware read it back through parseVerdict.

/** The longest sliding window the agent accepts (`--overload-window`), in seconds. */
export const MAX_OVERLOAD_WINDOW_S = 3600;

export interface OverloadVerdict {
  readonly overloaded: boolean;
  readonly misses: number;
  readonly runs: number;
  readonly window_s: number;
  /** 0 when not overloaded; else seconds until the window would clear without new misses. */
  readonly retry_after_s: number;
}

export type OverloadQuery =
  { readonly cgroup: string } | { readonly namespace: string; readonly pod: string };

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0;
}

/** The verdict in a parsed JSON body, or a description of what is wrong with it. */
export function parseVerdict(body: unknown): OverloadVerdict | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return "answer is not a JSON object";
  }
  const o = body as Record<string, unknown>;
  if (typeof o.overloaded !== "boolean") return "answer has no boolean 'overloaded'";
  for (const k of ["misses", "runs", "window_s", "retry_after_s"] as const) {
    if (!isCount(o[k])) return `answer has no non-negative number '${k}'`;
  }
  return {
    overloaded: o.overloaded,
    misses: o.misses as number,
    runs: o.runs as number,
    window_s: o.window_s as number,
    retry_after_s: o.retry_after_s as number,
  };
}
