// The TypeScript side of native/loader.c: one-shot commands (load, unload, status) and the
// long-running `serve` session that applies SLOs, reads stats and streams deadline misses.
import { execFile, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { findProjectRoot } from "../util/project-root.js";

const execFileAsync = promisify(execFile);

export const DEFAULT_PIN_DIR = "/sys/fs/bpf/scx_slo";

export interface LoaderPaths {
  /** The scx-slo-loader binary. */
  binary: string;
  /** The compiled BPF object. */
  object: string;
  pinDir: string;
}

export function defaultLoaderPaths(): LoaderPaths {
  const root = findProjectRoot();
  return {
    binary: process.env.SCX_SLO_LOADER ?? path.join(root, "build", "scx-slo-loader"),
    object: process.env.SCX_SLO_BPF_OBJ ?? path.join(root, "build", "scx_slo.bpf.o"),
    pinDir: process.env.SCX_SLO_PIN_DIR ?? DEFAULT_PIN_DIR,
  };
}

export interface LoadOptions {
  defaultBudgetMs?: number;
  defaultImportance?: number;
  maxSliceUs?: number;
}

export interface ExitInfo {
  kind: number;
  kind_name: string;
  code: number;
  reason: string;
  msg: string;
}

export interface SchedulerStatus {
  sched_ext: boolean;
  state: string;
  ops: string | null;
  attached: boolean;
  link_pinned: boolean;
  maps_pinned: boolean;
  enable_seq: number;
  gen?: number;
  nr_attach?: number;
  exit?: ExitInfo;
}

export interface CgroupStats {
  cgroupId: bigint;
  runs: number;
  waitSumNs: number;
  waitMaxNs: number;
  misses: number;
  budgetNs: number;
  importance: number;
  /** Counts per histogram bucket (see src/sched/histogram.ts), padded to the full length. */
  hist: number[];
}

export interface SchedulerCounters {
  miss_events: number;
  miss_drops: number;
  preempt_kicks: number;
  direct_idle: number;
  kthread_local: number;
  idle_kicks: number;
  no_victim: number;
  /** Tasks held back because their cgroup had used its cpu.max quota for the period. */
  throttled: number;
}

export interface StatsSnapshot {
  counters: SchedulerCounters;
  cgroups: CgroupStats[];
}

export interface MissEvent {
  cgroupId: bigint;
  waitNs: number;
  budgetNs: number;
  atNs: number;
  pid: number;
  cpu: number;
  comm: string;
}

export interface SloEntry {
  cgroupId: bigint;
  budgetNs: number;
  importance: number;
}

/** A loader command failed; the message is the loader's own one-line error. */
export class LoaderError extends Error {
  override name = "LoaderError";
}

async function runLoader(paths: LoaderPaths, args: string[]): Promise<string> {
  if (!existsSync(paths.binary)) {
    throw new LoaderError(`${paths.binary} is missing: run \`make build\``);
  }
  try {
    const { stdout } = await execFileAsync(paths.binary, [...args, "--pin-dir", paths.pinDir], {
      maxBuffer: 16 << 20,
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    const line = (e.stderr ?? "").trim().split("\n")[0] || e.message;
    throw new LoaderError(line.replace(/^scx-slo-loader: error: /, ""));
  }
}

/** The loader's load options, as arguments for `load` and `standby`. */
export function loadArgs(paths: LoaderPaths, opts: LoadOptions = {}): string[] {
  const args = ["--obj", paths.object];
  if (opts.defaultBudgetMs !== undefined)
    args.push("--default-budget-ms", String(opts.defaultBudgetMs));
  if (opts.defaultImportance !== undefined)
    args.push("--default-importance", String(opts.defaultImportance));
  if (opts.maxSliceUs !== undefined) args.push("--max-slice-us", String(opts.maxSliceUs));
  // Test builds only (build/scx_slo_test.bpf.o): the cgroup whose tasks the scheduler never
  // dispatches, so the VM tests can make the kernel's watchdog eject it under a running agent.
  const stall = process.env.SCX_SLO_TEST_STALL_CGROUP;
  if (stall) args.push("--test-stall-cgroup", stall);
  // cpu.max is enforced by scx_slo unless turned off: the kernel does not while it is attached.
  if (process.env.SCX_SLO_ENFORCE_CPU_MAX === "0") args.push("--no-enforce-cpu-max");
  return args;
}

export async function loadScheduler(paths: LoaderPaths, opts: LoadOptions = {}): Promise<void> {
  await runLoader(paths, ["load", ...loadArgs(paths, opts)]);
}

export async function unloadScheduler(paths: LoaderPaths, purge = false): Promise<void> {
  await runLoader(paths, purge ? ["unload", "--purge"] : ["unload"]);
}

export async function schedulerStatus(paths: LoaderPaths): Promise<SchedulerStatus> {
  return JSON.parse(await runLoader(paths, ["status"])) as SchedulerStatus;
}

interface Pending {
  resolve: (reply: Record<string, unknown>) => void;
  reject: (err: Error) => void;
}

/**
 * One `scx-slo-loader serve` child. Requests are answered in order; misses arrive as "miss"
 * events. The child holds no scheduler state of its own: if it dies, a new session picks up the
 * pinned maps where it left off.
 */
export class LoaderSession extends EventEmitter {
  private child: ChildProcessWithoutNullStreams;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private closed = false;

  constructor(paths: LoaderPaths) {
    super();
    if (!existsSync(paths.binary)) {
      throw new LoaderError(`${paths.binary} is missing: run \`make build\``);
    }
    this.child = spawn(paths.binary, ["serve", "--pin-dir", paths.pinDir], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    const lines = createInterface({ input: this.child.stdout });
    lines.on("line", (line) => this.onLine(line));
    this.child.stderr.on("data", (d: Buffer) => this.emit("stderr", d.toString()));
    this.child.on("exit", (code, signal) => {
      this.closed = true;
      const err = new LoaderError(`loader session ended (code ${code}, signal ${signal})`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      this.emit("exit", code, signal);
    });
    this.child.on("error", (err) => {
      // e.g. the binary exists but cannot be executed: reported like an exit, never thrown
      this.closed = true;
      for (const p of this.pending.values())
        p.reject(new LoaderError(`loader session failed: ${err.message}`));
      this.pending.clear();
      this.emit("exit", null, null);
    });
    this.child.stdin.on("error", () => {
      /* reported through "exit" */
    });
  }

  get alive(): boolean {
    return !this.closed;
  }

  private onLine(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.emit("stderr", `unparsable loader line: ${line}`);
      return;
    }
    if (msg.event === "miss") {
      const ev: MissEvent = {
        cgroupId: BigInt(msg.cgroup_id as string),
        waitNs: msg.wait_ns as number,
        budgetNs: msg.budget_ns as number,
        atNs: msg.at_ns as number,
        pid: msg.pid as number,
        cpu: msg.cpu as number,
        comm: msg.comm as string,
      };
      this.emit("miss", ev);
      return;
    }
    const id = msg.id as number;
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (msg.ok) p.resolve(msg);
    else p.reject(new LoaderError(String(msg.error)));
  }

  private request(words: string): Promise<Record<string, unknown>> {
    if (this.closed) return Promise.reject(new LoaderError("loader session is closed"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin.write(`${id} ${words}\n`);
    });
  }

  /** Adds or changes SLOs in one request (validated as a whole by the loader). */
  async set(entries: readonly SloEntry[]): Promise<void> {
    // Chunked so no request line grows without bound; each chunk is all-or-nothing.
    for (let i = 0; i < entries.length; i += 512) {
      const chunk = entries.slice(i, i + 512);
      await this.request(
        "set " +
          chunk.map((e) => `${e.cgroupId} ${Math.round(e.budgetNs)} ${e.importance}`).join(" "),
      );
    }
  }

  async del(cgroupIds: readonly bigint[]): Promise<void> {
    for (let i = 0; i < cgroupIds.length; i += 1024) {
      await this.request("del " + cgroupIds.slice(i, i + 1024).join(" "));
    }
  }

  async list(): Promise<SloEntry[]> {
    const reply = await this.request("list");
    return (reply.slos as { cgroup_id: string; budget_ns: number; importance: number }[]).map(
      (s) => ({
        cgroupId: BigInt(s.cgroup_id),
        budgetNs: s.budget_ns,
        importance: s.importance,
      }),
    );
  }

  async stats(): Promise<StatsSnapshot> {
    const reply = await this.request("stats");
    const buckets = reply.hist_buckets as number;
    type Raw = {
      cgroup_id: string;
      runs: number;
      wait_sum_ns: number;
      wait_max_ns: number;
      misses: number;
      budget_ns: number;
      importance: number;
      hist: number[];
    };
    return {
      counters: reply.counters as SchedulerCounters,
      cgroups: (reply.cgroups as Raw[]).map((c) => ({
        cgroupId: BigInt(c.cgroup_id),
        runs: c.runs,
        waitSumNs: c.wait_sum_ns,
        waitMaxNs: c.wait_max_ns,
        misses: c.misses,
        budgetNs: c.budget_ns,
        importance: c.importance,
        hist: [...c.hist, ...new Array<number>(Math.max(0, buckets - c.hist.length)).fill(0)],
      })),
    };
  }

  async status(): Promise<SchedulerStatus> {
    return (await this.request("status")) as unknown as SchedulerStatus;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await new Promise<void>((resolve) => {
      this.child.once("exit", () => resolve());
      this.child.stdin.end();
    });
  }
}
