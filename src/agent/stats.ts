// The scheduler's measurements, read when someone needs them rather than on a timer: a scrape,
// /status or /overload asks for stats no older than it can use, and concurrent askers share one
// read. The overload window needs a history of runs and misses: scrapes feed it, and while
// someone polls /overload (a sidecar on the HTTP signal) runs and misses alone are also sampled
// at a low rate in between. With nobody asking, nothing runs.

import type { OverloadTracker } from "../metrics/overload.js";
import type { CgroupStats, SchedulerCounters, StatsSnapshot } from "../sched/loader.js";
import type { ObserverSession, Offender } from "../sched/observer.js";
import type { LoaderSession } from "../sched/session.js";
import type { ResolvedSlo } from "../slo/model.js";
import { errorMessage, type Logger } from "../util/log.js";

/** After an /overload request, the window keeps being sampled this long. */
const OVERLOAD_DEMAND_MS = 60_000;

export interface StatsReaderOptions {
  /** The serve session for the pinned maps; null while there are none. */
  readonly session: () => LoaderSession | null;
  /** The observer's session while it runs (its offenders are read with the stats). */
  readonly observer?: () => ObserverSession | null;
  /** The SLO cgroups wanted now: the keys of the overload window. */
  readonly desired: () => readonly ResolvedSlo[];
  readonly overload: OverloadTracker;
  readonly log: Logger;
  /** How often runs and misses are sampled while there are SLO cgroups. */
  readonly sampleMs?: number;
  readonly now?: () => number;
}

export class StatsReader {
  private snapshot: StatsSnapshot | null = null;
  private byId: ReadonlyMap<bigint, CgroupStats> = new Map();
  private offenderList: readonly Offender[] = [];
  private readAt = -Infinity;
  private sampledAt = -Infinity;
  private reading: Promise<void> | null = null;
  private sampling: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private overloadAskedAt = -Infinity;
  private lastError: string | null = null;
  private readonly now: () => number;

  constructor(private readonly o: StatsReaderOptions) {
    this.now = o.now ?? Date.now;
  }

  /** The last stats read, per SLO cgroup id. */
  get stats(): ReadonlyMap<bigint, CgroupStats> {
    return this.byId;
  }

  get counters(): SchedulerCounters | null {
    return this.snapshot?.counters ?? null;
  }

  /** Who held the CPU while SLO cgroups waited, from the last read (the observer's only). */
  get offenders(): readonly Offender[] {
    return this.offenderList;
  }

  start(): void {
    this.timer ??= setInterval(() => {
      const asked = this.now() - this.overloadAskedAt < OVERLOAD_DEMAND_MS;
      if (asked && this.o.desired().length > 0) void this.sample(0);
    }, this.o.sampleMs ?? 2000);
    this.timer.unref();
  }

  /** Someone asked /overload: keep the window sampled for a while. */
  noteOverloadDemand(): void {
    this.overloadAskedAt = this.now();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Makes the stats no older than maxAgeMs (one read shared by concurrent callers). */
  fresh(maxAgeMs: number): Promise<void> {
    if (this.now() - this.readAt <= maxAgeMs) return Promise.resolve();
    this.reading ??= this.readStats().finally(() => (this.reading = null));
    return this.reading;
  }

  /** Samples runs and misses into the overload window unless a sample is younger than maxAgeMs. */
  sample(maxAgeMs: number): Promise<void> {
    if (this.now() - this.sampledAt <= maxAgeMs) return Promise.resolve();
    this.sampling ??= this.readCounts().finally(() => (this.sampling = null));
    return this.sampling;
  }

  private async readStats(): Promise<void> {
    const session = this.o.session();
    if (!session) return;
    try {
      const snap = await session.stats();
      const observer = this.o.observer?.() ?? null;
      this.offenderList = observer ? await observer.offenders() : [];
      const t = this.now();
      this.snapshot = snap;
      this.byId = new Map(snap.cgroups.map((c) => [c.cgroupId, c]));
      this.readAt = t;
      this.record(t, this.byId);
      this.ok();
    } catch (err) {
      this.failed(err);
    }
  }

  private async readCounts(): Promise<void> {
    const session = this.o.session();
    if (!session) return;
    try {
      const counts = await session.counts();
      this.record(this.now(), new Map(counts.map((c) => [c.cgroupId, c])));
      this.ok();
    } catch (err) {
      this.failed(err);
    }
  }

  private record(t: number, byId: ReadonlyMap<bigint, { runs: number; misses: number }>): void {
    this.sampledAt = t;
    this.o.overload.record(
      t,
      this.o.desired().flatMap((d) => {
        const st = byId.get(d.cgroupId);
        return st ? [{ key: d.cgroupPath, runs: st.runs, misses: st.misses }] : [];
      }),
    );
  }

  private ok(): void {
    if (this.lastError !== null) this.o.log.info("reading the scheduler's stats works again");
    this.lastError = null;
  }

  private failed(err: unknown): void {
    const msg = errorMessage(err);
    if (msg !== this.lastError) this.o.log.warn(`reading the scheduler's stats: ${msg}`);
    this.lastError = msg;
  }
}
