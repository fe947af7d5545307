// What the kernel says about sched_ext, read straight from sysfs: cheap enough to poll every
// 200 ms, and true even when the loader or the agent is gone.
import { readFileSync } from "node:fs";
import path from "node:path";

export const SCX_SYSFS = "/sys/kernel/sched_ext";
/** sched_ext_ops.name of our scheduler (SCX_SLO_NAME in bpf/scx_slo.h). */
export const SCHEDULER_NAME = "scx_slo";

export interface ScxSysfs {
  /** The kernel has sched_ext at all (state file present). */
  supported: boolean;
  /** "enabled", "disabled", "enabling", "disabling"; "unsupported" without sched_ext. */
  state: string;
  /** Name of the attached scheduler; null when none. */
  ops: string | null;
  /** Bumped by the kernel on every scheduler enable: unchanged means nothing was reloaded. */
  enableSeq: number;
}

function read(file: string): string | null {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return null;
  }
}

export function readScxSysfs(dir = SCX_SYSFS): ScxSysfs {
  const state = read(path.join(dir, "state"));
  if (state === null) return { supported: false, state: "unsupported", ops: null, enableSeq: 0 };
  const live = state === "enabled" || state === "enabling";
  const ops = live ? read(path.join(dir, "root", "ops")) || null : null;
  return {
    supported: true,
    state,
    ops,
    enableSeq: Number(read(path.join(dir, "enable_seq")) ?? 0),
  };
}

export function isScxSloAttached(s: ScxSysfs): boolean {
  return s.supported && s.state === "enabled" && s.ops === SCHEDULER_NAME;
}
