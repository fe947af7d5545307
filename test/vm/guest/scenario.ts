// Shared by the in-guest scenario scripts: where results go, sched_ext's sysfs, CPU hogs.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { spawnInCgroup, waitFor, type Finished } from "../../../src/util/process.js";

/** The scenario's findings, written to $SCXVM_OUT/scenario.json on every save(). */
export function scenarioRecorder(): { out: Record<string, unknown>; save: () => void } {
  const out: Record<string, unknown> = {};
  const file = path.join(process.env.SCXVM_OUT ?? "/tmp", "scenario.json");
  return { out, save: () => writeFileSync(file, JSON.stringify(out, null, 1)) };
}

export const sysfs = (f: string) => readFileSync(`/sys/kernel/sched_ext/${f}`, "utf8").trim();

/** n stress-ng CPU hogs in the cgroup for the given seconds. */
/** `wrapper` runs stress-ng under another command, e.g. ["nice", "-n", "19"]. */
export function hogs(
  cgroup: string,
  n: number,
  seconds: number,
  wrapper: string[] = [],
): Promise<Finished> {
  return waitFor(
    spawnInCgroup(cgroup, [
      ...wrapper,
      "stress-ng",
      "--cpu",
      String(n),
      "--timeout",
      `${seconds}s`,
      "--temp-path",
      "/tmp",
      "-q",
    ]),
  );
}
