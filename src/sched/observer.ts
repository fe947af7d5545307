// The observer (bpf/observe.bpf.c): SLO tails and noisy neighbours on kernels without sched_ext,
// or beside scx_slo to cross-check it. Tracing programs measure each SLO cgroup's run-queue wait
// into the same stats the scheduler keeps (so a LoaderSession on the observer's pin folder serves
// set/del/list/stats unchanged) and name the cgroups that held the CPU meanwhile (offenders).
// Its links and maps are pinned, so it keeps measuring when the agent is gone.
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { findProjectRoot } from "../util/project-root.js";
import { DEFAULT_PIN_DIR, runLoader, type LoaderPaths } from "./loader.js";
import {
  ObserveReplySchema,
  OffendersReplySchema,
  parseLine,
  parseReply,
  SchedulerStatusSchema,
  UnobserveReplySchema,
} from "./replies.js";
import { LoaderSession } from "./session.js";

export const DEFAULT_OBSERVE_PIN_DIR = "/sys/fs/bpf/scx_slo_observe";
/** Offender ids that are no cgroup (OFFENDER_* in bpf/scx_slo.h; the loader's abi prints them). */
export const OFFENDER_IDLE = 0n;
export const OFFENDER_UNSEEN = (1n << 64n) - 1n;
/** How many programs the observer attaches (one link pin each, link_<program>). */
export const OBSERVER_PROGRAMS = 4;
const LINK_PREFIX = "link_";

export function defaultObserverPaths(): LoaderPaths {
  const root = findProjectRoot();
  return {
    binary: process.env.SCX_SLO_LOADER ?? path.join(root, "build", "scx-slo-loader"),
    object: process.env.SCX_SLO_OBSERVE_OBJ ?? path.join(root, "build", "observe.bpf.o"),
    pinDir: process.env.SCX_SLO_OBSERVE_PIN_DIR ?? DEFAULT_OBSERVE_PIN_DIR,
  };
}

export interface StartObserverOptions {
  /**
   * Read the SLOs pinned in this folder (the scheduler's, DEFAULT_PIN_DIR) instead of the
   * observer's own: for running beside scx_slo, where both must measure the same SLOs.
   */
  readonly sloPinDir?: string;
}

export interface ObserverStarted {
  readonly pinDir: string;
  /** Where the SLOs it reads are pinned (its own folder unless StartObserverOptions.sloPinDir). */
  readonly sloPinDir: string;
  readonly programs: readonly string[];
}

/** Loads and attaches the observer; its links and maps are pinned under paths.pinDir. */
export async function startObserver(
  paths: LoaderPaths,
  opts: StartObserverOptions = {},
): Promise<ObserverStarted> {
  const args = ["observe", "--obj", paths.object];
  if (opts.sloPinDir !== undefined) args.push("--slo-pin-dir", opts.sloPinDir);
  const r = parseLine(ObserveReplySchema, await runLoader(paths, args), "loader observe");
  return { pinDir: r.pin_dir, sloPinDir: r.slo_pin_dir, programs: r.programs };
}

/**
 * Detaches the observer (removes its link pins); with purge its maps go too. Resolves to
 * whether it was attached.
 */
export async function stopObserver(paths: LoaderPaths, purge = false): Promise<boolean> {
  const out = await runLoader(paths, purge ? ["unobserve", "--purge"] : ["unobserve"]);
  return parseLine(UnobserveReplySchema, out, "loader unobserve").stopped;
}

/** How many of the observer's links are pinned now (a cheap folder read; 0 when none). */
export function observerLinksPinned(pinDir: string): number {
  try {
    return readdirSync(pinDir).filter((f) => f.startsWith(LINK_PREFIX)).length;
  } catch {
    return 0;
  }
}

export interface ObserverStatus {
  /** Every program's link is pinned, so every one is attached. */
  readonly attached: boolean;
  readonly links: number;
  readonly mapsPinned: boolean;
  /** control.gen of the SLO map it reads; absent without pinned maps. */
  readonly gen?: number;
  /** The kernel has sched_ext (then scx_slo itself could run instead). */
  readonly schedExt: boolean;
}

export async function observerStatus(paths: LoaderPaths): Promise<ObserverStatus> {
  const s = parseLine(SchedulerStatusSchema, await runLoader(paths, ["status"]), "loader status");
  const links = s.observer_links ?? 0;
  return {
    attached: links === OBSERVER_PROGRAMS,
    links,
    mapsPinned: s.maps_pinned,
    ...(s.gen !== undefined ? { gen: s.gen } : {}),
    schedExt: s.sched_ext,
  };
}

/** One {SLO cgroup, cgroup} pair: what the cgroup held of the SLO cgroup's waits. */
export interface Offender {
  /** The cgroup that waited (the one carrying the SLO). */
  readonly sloCgroupId: bigint;
  /** The cgroup that held the CPU meanwhile, or OFFENDER_IDLE / OFFENDER_UNSEEN. */
  readonly cgroupId: bigint;
  /** Waits during which it held the CPU at some point. */
  readonly waits: number;
  /** CPU time it held inside those waits. */
  readonly waitNs: number;
  /** Of those waits, the ones over the budget. */
  readonly misses: number;
  readonly missNs: number;
  /** Start of the last wait it was charged for (the kernel's monotonic clock, ns). */
  readonly lastWaitNs: number;
}

/** A serve session on the observer's pins: the LoaderSession verbs plus `offenders`. */
export class ObserverSession extends LoaderSession {
  constructor(paths: LoaderPaths = defaultObserverPaths()) {
    super(paths);
  }

  async offenders(): Promise<Offender[]> {
    const reply = parseReply(
      OffendersReplySchema,
      await this.request("offenders"),
      "loader offenders",
    );
    return reply.offenders.map((o) => ({
      sloCgroupId: o.slo_cgroup_id,
      cgroupId: o.cgroup_id,
      waits: o.waits,
      waitNs: o.wait_ns,
      misses: o.misses,
      missNs: o.miss_ns,
      lastWaitNs: o.last_wait_ns,
    }));
  }
}

/**
 * The n cgroups that held the CPU longest while sloCgroupId waited, longest first. The idle and
 * unseen pseudo-cgroups are left out unless includePseudo: they name no neighbour.
 */
export function topOffenders(
  all: readonly Offender[],
  sloCgroupId: bigint,
  n = 5,
  includePseudo = false,
): Offender[] {
  return all
    .filter(
      (o) =>
        o.sloCgroupId === sloCgroupId &&
        (includePseudo || (o.cgroupId !== OFFENDER_IDLE && o.cgroupId !== OFFENDER_UNSEEN)),
    )
    .sort((a, b) => b.waitNs - a.waitNs || Number(a.cgroupId - b.cgroupId))
    .slice(0, n);
}

/** "idle" / "unseen" for the pseudo-cgroups, null for a real cgroup (resolve it to a path). */
export function pseudoOffenderName(cgroupId: bigint): "idle" | "unseen" | null {
  if (cgroupId === OFFENDER_IDLE) return "idle";
  if (cgroupId === OFFENDER_UNSEEN) return "unseen";
  return null;
}

/** A cgroup's own cpu.max throttling, from its cpu.stat. */
export interface CpuThrottling {
  readonly periods: number;
  readonly throttledPeriods: number;
  readonly throttledNs: number;
}

/**
 * Throttling from a parsed cpu.stat (src/cgroup/cgroupfs.ts readCpuStat), either hierarchy:
 * cgroup v2 counts throttled_usec, the v1 cpu controller throttled_time in ns. null when the
 * file has no bandwidth fields (no cpu controller there). A wait the observer charges to
 * neighbours while the SLO cgroup was throttled is its own limit's doing, not theirs.
 */
export function throttlingFrom(cpuStat: Readonly<Record<string, number>>): CpuThrottling | null {
  const periods = cpuStat.nr_periods;
  const throttled = cpuStat.nr_throttled;
  const ns =
    cpuStat.throttled_usec !== undefined ? cpuStat.throttled_usec * 1000 : cpuStat.throttled_time;
  if (periods === undefined || throttled === undefined || ns === undefined) return null;
  return { periods, throttledPeriods: throttled, throttledNs: ns };
}

/** The scheduler's pin folder holds SLO maps the observer can read (for --slo-pin-dir). */
export function schedulerMapsPinned(pinDir = DEFAULT_PIN_DIR): boolean {
  return existsSync(path.join(pinDir, "slo_map")) && existsSync(path.join(pinDir, "control_map"));
}

/**
 * The agent's handle on the observer: start and stop it, one serve session on its pins (renewed
 * when the pins are replaced), its offenders read when asked for.
 */
export class ObserverHandle {
  private session: ObserverSession | null = null;
  private sessionFor: string | null = null;
  private started: ObserverStarted | null = null;

  constructor(readonly paths: LoaderPaths = defaultObserverPaths()) {}

  /** Every program attached (its links pinned). */
  get attached(): boolean {
    return observerLinksPinned(this.paths.pinDir) === OBSERVER_PROGRAMS;
  }

  /** Where the SLOs it measures against are pinned; null while it is not running. */
  get sloPinDir(): string | null {
    return this.attached ? (this.started?.sloPinDir ?? this.paths.pinDir) : null;
  }

  /**
   * Attaches it, reading the SLOs pinned in sloPinDir (the scheduler's, when they exist) or its
   * own. Already attached with the same SLO folder: nothing to do.
   */
  async start(sloPinDir?: string): Promise<void> {
    const want = sloPinDir ?? this.paths.pinDir;
    if (this.attached && this.started?.sloPinDir === want) return;
    if (this.attached) await stopObserver(this.paths);
    this.started = await startObserver(this.paths, sloPinDir !== undefined ? { sloPinDir } : {});
  }

  async stop(): Promise<void> {
    this.closeSession();
    this.started = null;
    if (observerLinksPinned(this.paths.pinDir) > 0) await stopObserver(this.paths);
  }

  /** The serve session on the observer's own pins (its stats and offenders); null if unpinned. */
  mapSession(): ObserverSession | null {
    let key: string;
    try {
      key = String(statSync(path.join(this.paths.pinDir, "stats_map"), { bigint: true }).ino);
    } catch {
      this.closeSession();
      return null;
    }
    if (this.session?.alive && this.sessionFor === key) return this.session;
    this.closeSession();
    this.session = new ObserverSession(this.paths);
    this.sessionFor = key;
    return this.session;
  }

  /** Closes the session; the observer itself keeps running on its pins. */
  async close(): Promise<void> {
    const s = this.session;
    this.session = null;
    await s?.close();
  }

  private closeSession(): void {
    const s = this.session;
    this.session = null;
    this.sessionFor = null;
    if (s?.alive) void s.close();
  }
}
