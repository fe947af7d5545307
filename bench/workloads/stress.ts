// The noisy neighbour: stress-ng CPU hogs, with their throughput (bogo ops/s) as the cost side.
import { readFileSync, rmSync } from "node:fs";
import { parse } from "yaml";
import { spawnInCgroup } from "../../src/cgroup/spawn.js";
import { waitFor, type Finished } from "../../src/util/process.js";

export interface StressHandle {
  done: Promise<number | null>;
}

/** Starts N hogs for durationS; `done` resolves to bogo ops/s (real time), null when N = 0. */
export function startHogs(
  cgroup: string,
  hogs: number,
  durationS: number,
  idle = false,
): StressHandle {
  if (hogs === 0) return { done: Promise.resolve(null) };
  const yamlPath = `/tmp/stress-${process.pid}-${Date.now()}.yaml`;
  const argv = [
    "stress-ng",
    "--cpu",
    String(hogs),
    "--cpu-method",
    "int64",
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
    const cpu = doc.metrics?.find((m) => m.stressor === "cpu");
    return cpu?.["bogo-ops-per-second-real-time"] ?? null;
  });
  return { done };
}
