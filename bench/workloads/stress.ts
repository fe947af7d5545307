// The noisy neighbour: stress-ng hogs of one kind, with their throughput (bogo ops/s) as the cost
// side. Kinds differ in what the batch work touches besides the CPU's integer units:
//   int64  integer arithmetic in registers (--cpu-method int64): CPU time and nothing else.
//   mix    stress-ng's default CPU method mix (--cpu with no method: it cycles through every one,
//          floating point, bit ops, hashing, matrix and sort work among them).
//   cache  --cache: random reads and writes spread over memory, thrashing the caches a
//          latency-critical task would otherwise find warm. --cache-no-affinity, because by
//          default each worker moves itself to another CPU every round, which batch work does not.
//   vm     --vm with --vm-keep: each worker keeps one 64 MiB mapping and writes and checks it over
//          and over (memory bandwidth and TLB pressure; 8 workers take 512 MiB of the 2 GiB guest).
//          Without --vm-keep it would unmap and map again each round, mostly page-fault work.
// Bogo ops of different kinds are different units: throughput compares arms within one kind.
import { readFileSync, rmSync } from "node:fs";
import { parse } from "yaml";
import { spawnInCgroup } from "../../src/cgroup/spawn.js";
import { waitFor, type Finished } from "../../src/util/process.js";

export const HOG_KINDS = ["int64", "mix", "cache", "vm"] as const;
export type HogKind = (typeof HOG_KINDS)[number];
/** What the ladder ran before hog kinds were a dimension, and what a record without one means. */
export const DEFAULT_HOG_KIND: HogKind = "int64";
/** The hog_kind of a cell without hogs (bg=0): one such cell serves every kind's ladder. */
export const NO_HOGS = "none";
/** Each vm hog's mapping. */
export const VM_HOG_BYTES = "64M";

export function isHogKind(s: string): s is HogKind {
  return (HOG_KINDS as readonly string[]).includes(s);
}

/** stress-ng's arguments for n hogs of a kind, and the stressor name its metrics use. */
export function hogArgs(kind: HogKind, n: number | "N"): { args: string[]; stressor: string } {
  switch (kind) {
    case "int64":
      return { args: ["--cpu", String(n), "--cpu-method", "int64"], stressor: "cpu" };
    case "mix":
      return { args: ["--cpu", String(n)], stressor: "cpu" };
    case "cache":
      return { args: ["--cache", String(n), "--cache-no-affinity"], stressor: "cache" };
    case "vm":
      return {
        args: ["--vm", String(n), "--vm-bytes", VM_HOG_BYTES, "--vm-keep"],
        stressor: "vm",
      };
  }
}

export interface StressHandle {
  done: Promise<number | null>;
}

/** Starts N hogs for durationS; `done` resolves to bogo ops/s (real time), null when N = 0. */
export function startHogs(
  cgroup: string,
  hogs: number,
  durationS: number,
  idle = false,
  kind: HogKind = DEFAULT_HOG_KIND,
): StressHandle {
  if (hogs === 0) return { done: Promise.resolve(null) };
  const yamlPath = `/tmp/stress-${process.pid}-${Date.now()}.yaml`;
  const { args, stressor } = hogArgs(kind, hogs);
  const argv = [
    "stress-ng",
    ...args,
    "--timeout",
    `${durationS}s`,
    "--metrics",
    "--temp-path",
    "/tmp",
    "-Y",
    yamlPath,
  ];
  const child = spawnInCgroup(cgroup, idle ? ["chrt", "--idle", "0", ...argv] : argv);
  const done = waitFor(child).then((r: Finished) => {
    if (r.code !== 0) throw new Error(`stress-ng failed (${r.code}): ${r.stderr.trim()}`);
    const doc = parse(readFileSync(yamlPath, "utf8")) as {
      metrics?: { stressor: string; "bogo-ops-per-second-real-time"?: number }[];
    };
    rmSync(yamlPath, { force: true });
    const m = doc.metrics?.find((x) => x.stressor === stressor);
    return m?.["bogo-ops-per-second-real-time"] ?? null;
  });
  return { done };
}
