// Shared by the in-guest scenario scripts: where results go, sched_ext's sysfs, CPU hogs.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { readCpuStat } from "../../../src/cgroup/cgroupfs.js";
import { spawnInCgroup } from "../../../src/cgroup/spawn.js";
import { sleep, waitFor, type Finished } from "../../../src/util/process.js";

/** The scenario's findings, written to $SCXVM_OUT/scenario.json on every save(). */
export function scenarioRecorder(): { out: Record<string, unknown>; save: () => void } {
  const out: Record<string, unknown> = {};
  const file = path.join(process.env.SCXVM_OUT ?? "/tmp", "scenario.json");
  return { out, save: () => writeFileSync(file, JSON.stringify(out, null, 1)) };
}

export const sysfs = (f: string) => readFileSync(`/sys/kernel/sched_ext/${f}`, "utf8").trim();

/**
 * n stress-ng CPU hogs in the cgroup for the given seconds; `wrapper` runs stress-ng under another
 * command, e.g. ["nice", "-n", "19"].
 */
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

export interface HogGroup {
  cgroup: string;
  hogs: number;
  wrapper?: string[];
}

/**
 * CPU each cgroup used, in microseconds, over a 2 s window while the hogs of every group run (4 s
 * in all; the window starts after 1 s, once all are queued). A starved hog only exits once it has
 * run, so totals taken after the exits would hide who waited.
 */
export async function cpuOverWindow(
  groups: HogGroup[],
): Promise<{ exits: number[]; cpuUsec: number[] }> {
  const runs = Promise.all(groups.map((g) => hogs(g.cgroup, g.hogs, 4, g.wrapper)));
  await sleep(1000);
  const cpuUsec = await cpuOver2s(groups);
  const exits = (await runs).map((r) => r.code ?? -1);
  return { exits, cpuUsec };
}

/** CPU each cgroup uses over the next 2 s, in microseconds (cpu.stat usage_usec). */
export async function cpuOver2s(groups: HogGroup[]): Promise<number[]> {
  const usage = () => groups.map((g) => readCpuStat(g.cgroup).usage_usec!);
  const start = usage();
  await sleep(2000);
  return usage().map((u, i) => u - start[i]!);
}
