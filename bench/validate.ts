// The results.json schema (../shared/notes/bench-results.md), checked for shape, not figures:
// CI runs a tiny ladder whose latencies mean nothing but whose record must be well-formed.
import type { ResultsFile } from "./results.js";

const isNum = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);
const isCount = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0;

function checkRecord(r: unknown, at: string, errors: string[]): void {
  if (typeof r !== "object" || r === null || Array.isArray(r)) {
    errors.push(`${at}: not an object`);
    return;
  }
  const rec = r as Record<string, unknown>;
  for (const k of ["arm", "workload"]) {
    if (typeof rec[k] !== "string" || rec[k] === "") errors.push(`${at}.${k}: not a name`);
  }
  for (const k of ["bg", "rep", "samples"]) {
    if (!isCount(rec[k])) errors.push(`${at}.${k}: not a count (${JSON.stringify(rec[k])})`);
  }
  // No samples has no percentiles: JSON turns the NaN into null.
  const empty = rec.samples === 0;
  for (const k of ["p50_us", "p99_us", "p999_us"]) {
    const v = rec[k];
    if (!(isNum(v) && v >= 0) && !(empty && v === null)) {
      errors.push(`${at}.${k}: not a latency (${JSON.stringify(v)})`);
    }
  }
  if (isNum(rec.p50_us) && isNum(rec.p99_us) && isNum(rec.p999_us)) {
    if (!(rec.p50_us <= rec.p99_us && rec.p99_us <= rec.p999_us)) {
      errors.push(`${at}: percentiles out of order (p50 <= p99 <= p999)`);
    }
  }
  if (!("batch_ops_per_s" in rec)) errors.push(`${at}.batch_ops_per_s: missing`);
  else if (
    rec.batch_ops_per_s !== null &&
    !(isNum(rec.batch_ops_per_s) && rec.batch_ops_per_s >= 0)
  )
    errors.push(`${at}.batch_ops_per_s: neither null nor a rate`);
  if ("hog_kind" in rec && (typeof rec.hog_kind !== "string" || rec.hog_kind === "")) {
    errors.push(`${at}.hog_kind: not a name`);
  }
  for (const k of ["critical_cpu_usec", "batch_cpu_usec", "window_s"]) {
    if (k in rec && !(isNum(rec[k]) && (rec[k] as number) >= 0)) {
      errors.push(`${at}.${k}: not a non-negative number`);
    }
  }
}

/** Every way obj departs from the results schema; empty when it is a valid results file. */
export function validateResults(obj: unknown): string[] {
  const errors: string[] = [];
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) return ["not an object"];
  const f = obj as Record<string, unknown>;
  if (f.schema !== 1) errors.push(`schema: expected 1, got ${JSON.stringify(f.schema)}`);
  if (typeof f.machine !== "string" || f.machine === "") errors.push("machine: not a string");
  if (typeof f.started !== "string" || Number.isNaN(Date.parse(f.started))) {
    errors.push("started: not an ISO-8601 time");
  }
  if (!Array.isArray(f.records)) {
    errors.push("records: not an array");
    return errors;
  }
  f.records.forEach((r, i) => checkRecord(r, `records[${i}]`, errors));
  // Interleaving: rep 0 of every arm and step ran before rep 1 of any, so reps never go back
  // within a boot (a run split over boots has its records tagged with theirs).
  const lastRep = new Map<unknown, number>();
  for (const r of f.records as Record<string, unknown>[]) {
    const boot = r?.boot ?? 0;
    const last = lastRep.get(boot) ?? -1;
    if (isCount(r?.rep) && r.rep < last) {
      errors.push(`records out of rep order (rep ${r.rep} after rep ${last}): not interleaved`);
      break;
    }
    if (isCount(r?.rep)) lastRep.set(boot, r.rep);
  }
  const seen = new Set<string>();
  for (const r of f.records as Record<string, unknown>[]) {
    const kind = r?.bg === 0 ? "none" : (r?.hog_kind ?? "int64");
    const key = JSON.stringify([r?.workload, r?.arm, r?.bg, kind, r?.rep]);
    if (seen.has(key))
      errors.push(`duplicate record for (workload, arm, bg, hog kind, rep) ${key}`);
    seen.add(key);
  }
  return errors;
}

export function assertValidResults(obj: unknown): asserts obj is ResultsFile {
  const errors = validateResults(obj);
  if (errors.length) throw new Error(`invalid results: ${errors.slice(0, 10).join("; ")}`);
}
