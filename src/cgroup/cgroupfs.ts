// Plain cgroup v2 filesystem operations. A cgroup's id (what the BPF maps are keyed by) is the
// inode number of its directory.
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";

export const CGROUP_ROOT = "/sys/fs/cgroup";

/** Absolute directory of a cgroup given its path relative to the mount ("/a/b"). */
export function cgroupDir(cgroupPath: string, root = CGROUP_ROOT): string {
  return path.join(root, cgroupPath);
}

export function cgroupId(cgroupPath: string, root = CGROUP_ROOT): bigint {
  return statSync(cgroupDir(cgroupPath, root), { bigint: true }).ino;
}

/** Creates the cgroup (and its parents), enabling the cpu controller on the way down. */
export function createCgroup(cgroupPath: string, root = CGROUP_ROOT): bigint {
  const parts = cgroupPath.split("/").filter(Boolean);
  let dir = root;
  for (const part of parts) {
    enableControllers(dir, ["cpu"]);
    dir = path.join(dir, part);
    if (!existsSync(dir)) mkdirSync(dir);
  }
  return cgroupId(cgroupPath, root);
}

function enableControllers(dir: string, controllers: string[]): void {
  const available = readFileSync(path.join(dir, "cgroup.controllers"), "utf8").split(/\s+/);
  const wanted = controllers.filter((c) => available.includes(c));
  if (wanted.length === 0) return;
  try {
    writeFileSync(path.join(dir, "cgroup.subtree_control"), wanted.map((c) => `+${c}`).join(" "));
  } catch {
    // A cgroup with processes of its own cannot delegate controllers (no-internal-process rule);
    // the SLO still applies to its children, only cpu.weight/cpu.max tuning would be missing.
  }
}

export function moveToCgroup(pid: number, cgroupPath: string, root = CGROUP_ROOT): void {
  writeFileSync(path.join(cgroupDir(cgroupPath, root), "cgroup.procs"), String(pid));
}

export function writeCgroupFile(
  cgroupPath: string,
  file: string,
  value: string,
  root = CGROUP_ROOT,
): void {
  writeFileSync(path.join(cgroupDir(cgroupPath, root), file), value);
}

/** cpu.stat as numbers (usage_usec, user_usec, nr_throttled, ...). */
export function readCpuStat(cgroupPath: string, root = CGROUP_ROOT): Record<string, number> {
  const out: Record<string, number> = {};
  const text = readFileSync(path.join(cgroupDir(cgroupPath, root), "cpu.stat"), "utf8");
  for (const line of text.split("\n")) {
    const [k, v] = line.split(" ");
    if (k && v !== undefined) out[k] = Number(v);
  }
  return out;
}

/** Kills what is left in the cgroup and removes it, child cgroups first. */
export function removeCgroup(cgroupPath: string, root = CGROUP_ROOT): void {
  const dir = cgroupDir(cgroupPath, root);
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) removeCgroup(path.posix.join(cgroupPath, e.name), root);
  }
  try {
    writeFileSync(path.join(dir, "cgroup.kill"), "1");
  } catch {
    // cgroup.kill exists since 5.14; older kernels leave processes for the caller.
  }
  for (let i = 0; i < 100; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EBUSY") throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
  rmdirSync(dir);
}
