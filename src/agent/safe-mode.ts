// Safe mode: the scheduler detached (the kernel's fair class runs everything) and kept detached
// until an operator turns it off. The flag file is the switch everyone shares: `scx-slo safe-mode
// on|off` writes and removes it, an operator may touch it by hand, and the agent writes it itself
// when the scheduler keeps failing, so a restarted agent does not start flapping again. It lives
// on /run (tmpfs): a reboot clears it.

import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

export const DEFAULT_SAFE_MODE_FILE = "/run/scx-slo/safe-mode";

export interface SafeModeFlag {
  readonly on: boolean;
  /** The file's first line (who turned it on and why); "" for an empty file. */
  readonly reason: string;
}

export function readSafeModeFlag(file: string = DEFAULT_SAFE_MODE_FILE): SafeModeFlag {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return { on: false, reason: "" };
    // Present but unreadable still means present: safe mode is the cautious reading.
    return { on: true, reason: `${file} exists but cannot be read (${code})` };
  }
  const first = text.split("\n", 1)[0] ?? "";
  return { on: true, reason: first.trim().slice(0, 300) };
}

/** Turns safe mode on: writes the flag file (atomically) with the reason on its first line. */
export function writeSafeModeFlag(file: string, reason: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${reason.replace(/[\r\n]+/g, " ")}\n`, { mode: 0o644 });
  renameSync(tmp, file);
}

/** Turns safe mode off; true when the flag was there. */
export function clearSafeModeFlag(file: string): boolean {
  const was = readSafeModeFlag(file).on;
  rmSync(file, { force: true });
  return was;
}

/**
 * The switch the supervisor reads: the flag file first (an operator's, or the agent's own after
 * repeated failures), then any other source (the node's annotation in Kubernetes mode).
 */
export function safeModeSwitch(
  file: string,
  other: () => SafeModeFlag | null = () => null,
): () => SafeModeFlag {
  return () => {
    const flag = readSafeModeFlag(file);
    if (flag.on) return flag.reason ? flag : { on: true, reason: `flag file ${file}` };
    const o = other();
    return o?.on ? o : flag;
  };
}
