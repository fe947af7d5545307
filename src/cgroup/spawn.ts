// Child processes placed in a cgroup before they exec, so not one instruction runs outside it.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { CGROUP_ROOT, cgroupDir } from "./cgroupfs.js";

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
