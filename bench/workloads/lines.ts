// Line-oriented talk with a benchmark child process: wait for a line, or for it to end.
import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

export interface LineReader {
  /** Resolves with the first line (from now on) that `match` accepts; rejects on exit or timeout. */
  next(match: (line: string) => boolean, timeoutMs: number, what: string): Promise<string>;
  stderr(): string;
}

export function readLines(child: ChildProcess, name: string): LineReader {
  const queue: string[] = [];
  let err = "";
  let exited: string | null = null;
  let wake: (() => void) | null = null;
  child.stderr?.on("data", (d: Buffer) => {
    // Bounded: only the tail matters for an error message.
    err = (err + d.toString()).slice(-4000);
  });
  if (child.stdout) {
    createInterface({ input: child.stdout }).on("line", (line) => {
      queue.push(line);
      wake?.();
    });
  }
  child.on("exit", (code, signal) => {
    exited = `${name} exited (code ${code}, signal ${signal})`;
    wake?.();
  });
  return {
    stderr: () => err,
    async next(match, timeoutMs, what) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        while (queue.length) {
          const line = queue.shift()!;
          if (match(line)) return line;
        }
        if (exited) throw new Error(`${exited} before ${what}: ${err.trim()}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`${name}: no ${what} within ${timeoutMs / 1000} s`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = null;
      }
    },
  };
}

/** SIGTERM, then SIGKILL if it lingers; resolves once it is gone. */
export async function stopChild(child: ChildProcess, graceMs = 2000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await gone;
  clearTimeout(timer);
}
