// Which of the agent's two instruments runs: scx_slo (enforce: it schedules and measures) or the
// tracing observer (observe: it only measures, on any kernel with BTF), or neither (unsupported).
//
//   --mode auto (default)  scx_slo where the kernel has sched_ext; the observer where it has not,
//                          and while safe mode keeps scx_slo detached
//   --mode enforce         scx_slo only
//   --mode observe         the observer only; scx_slo is kept detached
//   --observe              the observer beside scx_slo as well, to cross-check its numbers
//
// The observer reads the SLOs the scheduler's maps hold when those are pinned (so one map write
// serves both), its own otherwise. This module keeps the observer in the state the mode asks for
// and says which session holds the SLOs and which the measurements.

import type { AgentMode, SchedulerState } from "../api/status.js";
import type { SchedulerHandle } from "../sched/handle.js";
import type { LoaderSession } from "../sched/session.js";
import { schedulerMapsPinned, type ObserverHandle } from "../sched/observer.js";
import { Coalescer } from "../util/coalesce.js";
import { errorMessage, type Logger } from "../util/log.js";

export const MODE_REQUESTS = ["auto", "enforce", "observe"] as const;
export type ModeRequest = (typeof MODE_REQUESTS)[number];

export interface ModeOptions {
  readonly request: ModeRequest;
  /** The observer beside scx_slo too. */
  readonly beside: boolean;
  readonly scheduler: SchedulerHandle;
  readonly observer: ObserverHandle;
  readonly schedulerState: () => SchedulerState;
  readonly log: Logger;
  /** Told when the observer started or stopped (the SLOs must be written where it reads them). */
  readonly onChange?: () => void;
}

export interface ModeReport {
  readonly mode: AgentMode;
  readonly reason: string;
  /** off, instead of scx_slo, or beside it. */
  readonly observer: "off" | "instead" | "beside";
}

export class ModeControl {
  private readonly updates: Coalescer;
  private lastError: string | null = null;
  private stopped = false;

  constructor(private readonly o: ModeOptions) {
    this.updates = new Coalescer(
      () => this.update(),
      () => this.stopped,
    );
  }

  /** Brings the observer in line with the mode and the scheduler's state (coalesced). */
  apply(): Promise<void> {
    return this.updates.request("apply");
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.updates.idle();
  }

  /** Whether the mode keeps scx_slo detached (--mode observe): read by the safe-mode switch. */
  keepsSchedulerDetached(): boolean {
    return this.o.request === "observe";
  }

  report(): ModeReport {
    const state = this.o.schedulerState();
    const observing = this.o.observer.attached;
    const scheduling = state === "attached";
    if (scheduling) {
      return {
        mode: "enforce",
        reason: "scx_slo is attached",
        observer: observing ? "beside" : "off",
      };
    }
    if (observing) {
      return { mode: "observe", reason: this.observeReason(state), observer: "instead" };
    }
    if (state === "starting" || state === "fallen_back") {
      return { mode: "enforce", reason: `scx_slo is ${state.replace("_", " ")}`, observer: "off" };
    }
    return {
      mode: "unsupported",
      reason:
        this.lastError !== null
          ? `the observer cannot run: ${this.lastError}`
          : state === "unsupported"
            ? "the kernel has no sched_ext and the observer is not running"
            : `scx_slo is ${state.replace("_", " ")} and the observer is not running`,
      observer: "off",
    };
  }

  /** Where the SLOs are written: the scheduler's maps when pinned, else the observer's own. */
  sloSession(): LoaderSession | null {
    if (
      this.o.schedulerState() !== "unsupported" &&
      schedulerMapsPinned(this.o.scheduler.paths.pinDir)
    ) {
      return this.o.scheduler.mapSession();
    }
    return this.o.observer.attached ? this.o.observer.mapSession() : null;
  }

  /** Where the measurements come from: scx_slo while attached, else the observer running instead. */
  statsSession(): LoaderSession | null {
    if (this.o.schedulerState() === "attached") return this.o.scheduler.mapSession();
    if (this.o.observer.attached) return this.o.observer.mapSession();
    return this.o.schedulerState() === "unsupported" ? null : this.o.scheduler.mapSession();
  }

  private observeReason(state: SchedulerState): string {
    if (this.o.request === "observe") return "requested (--mode observe)";
    if (state === "unsupported") return "the kernel has no sched_ext";
    if (state === "safe_mode") return "safe mode keeps scx_slo detached";
    return `scx_slo is ${state.replace("_", " ")}`;
  }

  private wanted(): boolean {
    const state = this.o.schedulerState();
    if (this.o.request === "observe" || this.o.beside) return true;
    if (this.o.request === "enforce") return false;
    return state === "unsupported" || state === "safe_mode";
  }

  private async update(): Promise<void> {
    const { observer, log } = this.o;
    const want = this.wanted();
    try {
      if (want) {
        const shared = schedulerMapsPinned(this.o.scheduler.paths.pinDir)
          ? this.o.scheduler.paths.pinDir
          : undefined;
        const was = observer.sloPinDir;
        await observer.start(shared);
        if (was !== observer.sloPinDir) {
          log.info(
            `observer attached: measuring SLO cgroups (${this.report().reason}), SLOs read from ${observer.sloPinDir}`,
          );
          this.o.onChange?.();
        }
      } else if (observer.attached) {
        await observer.stop();
        log.info("observer detached: scx_slo measures");
        this.o.onChange?.();
      }
      if (this.lastError !== null) log.info("the observer runs again");
      this.lastError = null;
    } catch (err) {
      const msg = errorMessage(err);
      if (msg !== this.lastError) log.warn(`observer: ${msg}`);
      this.lastError = msg;
    }
  }
}
