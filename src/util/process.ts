// Child processes placed in a cgroup before they exec, so not one instruction runs outside it.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { CGROUP_ROOT, cgroupDir } from "../cgroup/cgroupfs.js";

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs argv inside the cgroup (via a tiny sh wrapper that joins it, then execs). */
export function spawnInCgroup(
  cgroupPath: string,
  argv: readonly string[],
  opts: { cwd?: string; root?: string } = {},
): ChildProcess {
  const procs = path.join(cgroupDir(cgroupPath, opts.root ?? CGROUP_ROOT), "cgroup.procs");
  return spawn("/bin/sh", ["-c", 'echo $$ > "$0" && exec "$@"', procs, ...argv], {
    cwd: opts.cwd ?? "/tmp",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

export function waitFor(child: ChildProcess): Promise<Finished> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits for p at most ms; undefined when the time ran out first (p keeps running). */
export async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
