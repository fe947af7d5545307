// The TypeScript side of native/loader.c's one-shot commands (load, unload, status, abi), and the
// shapes of what the scheduler reports. The long-running `serve` session is session.ts.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { findProjectRoot } from "../util/project-root.js";
import type { HandOver } from "../api/status.js";
import {
  AbiSchema,
  LoadReplySchema,
  parseLine,
  SchedulerStatusSchema,
  type Abi,
  type LoadReply,
  type SchedulerStatus,
} from "./replies.js";

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

/** The scheduler's counters by name (SLO_COUNTERS in bpf/scx_slo.h), summed over CPUs. */
export type SchedulerCounters = Readonly<Record<string, number>>;

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

/** Runs one loader command with the folder of paths; resolves to its stdout. */
export async function runLoader(paths: LoaderPaths, args: string[]): Promise<string> {
  if (!existsSync(paths.binary)) {
    throw new LoaderError(`${paths.binary} is missing: run \`make build\``);
  }
  const pinArgs = args[0] === "abi" ? [] : ["--pin-dir", paths.pinDir];
  try {
    const { stdout } = await execFileAsync(paths.binary, [...args, ...pinArgs], {
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

/** The hand-over a load, adopt or standby attach reports; null when the pins were its own. */
export function handOverOf(reply: LoadReply): HandOver | null {
  const h = reply.handover;
  if (h === null) return null;
  return {
    at: new Date().toISOString(),
    from: h.from,
    to: reply.layout,
    fallback_ms: h.fallback_ms,
    maps_replaced: h.maps_replaced,
    pins_dropped: h.pins_dropped,
  };
}

/** Loads and attaches; over pins of another build's layout it replaces them (the hand-over). */
export async function loadScheduler(
  paths: LoaderPaths,
  opts: LoadOptions = {},
): Promise<HandOver | null> {
  const out = await runLoader(paths, ["load", ...loadArgs(paths, opts)]);
  return handOverOf(parseLine(LoadReplySchema, out, "loader load"));
}

/**
 * scx_slo is attached: keeps it when its pins are of this build's layout (null), else hands over
 * to this build (new object attached at once, maps replaced) and says what that took.
 */
export async function adoptScheduler(
  paths: LoaderPaths,
  opts: LoadOptions = {},
): Promise<HandOver | null> {
  const out = await runLoader(paths, ["adopt", ...loadArgs(paths, opts)]);
  return handOverOf(parseLine(LoadReplySchema, out, "loader adopt"));
}

export async function unloadScheduler(paths: LoaderPaths, purge = false): Promise<void> {
  await runLoader(paths, purge ? ["unload", "--purge"] : ["unload"]);
}

export async function schedulerStatus(paths: LoaderPaths): Promise<SchedulerStatus> {
  const out = await runLoader(paths, ["status", "--obj", paths.object]);
  return parseLine(SchedulerStatusSchema, out, "loader status");
}

const abiCache = new Map<string, Promise<Abi>>();

/** The constants and counters table the loader was built with (read once per binary). */
export function readAbi(paths: LoaderPaths): Promise<Abi> {
  let abi = abiCache.get(paths.binary);
  if (abi === undefined) {
    abi = runLoader(paths, ["abi"]).then((out) => parseLine(AbiSchema, out, "loader abi"));
    abi.catch(() => abiCache.delete(paths.binary));
    abiCache.set(paths.binary, abi);
  }
  return abi;
}
