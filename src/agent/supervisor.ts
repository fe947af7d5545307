// Keeps scx_slo attached, or deliberately not. It looks when told to (the scheduler's exit event,
// a pin removed, the safe-mode flag changed) and, as a safety net, every 5 s; it re-attaches
// with back-off when the scheduler is gone, and after too many failures in a short window stops
// trying and enters safe mode instead of flapping between schedulers. An agent that finds scx_slo
// already attached adopts it: no reload.
//
// Nothing here ever takes the scheduler down on the agent's own exit: the link is pinned in bpffs,
// so it outlives this process. Only safe mode unloads it.

import { EventEmitter } from "node:events";
import type { ExitInfo, SchedulerState } from "../api/status.js";
import { isScxSloAttached, SCHEDULER_NAME, type ScxSysfs } from "../sched/scx-sysfs.js";
import { Coalescer } from "../util/coalesce.js";
import { errorMessage, silentLogger, type Logger } from "../util/log.js";
import type { SafeModeFlag } from "./safe-mode.js";

/** The kernel and loader operations the supervisor needs (sched/handle.ts); injectable for tests. */
export interface SchedulerControl {
  kernelState(): ScxSysfs;
  /** The pinned link is present (the loader's unload removes it; the kernel then detaches). */
  linkPinned(): boolean;
  attach(): Promise<void>;
  /**
   * Called when scx_slo is found attached and this agent did not attach it: keep it (false) or,
   * when it is another build's, hand over to this one (true). Throwing keeps the old one running.
   */
  adopt?(): Promise<boolean>;
  unload(): Promise<void>;
  /** Why the scheduler last stopped; read before a re-attach resets it. */
  lastExit(): Promise<ExitInfo | null>;
  /** Told each time the scheduler is seen attached (it may prepare for the next re-attach). */
  onAttached?(): void;
  /** Told when safe mode takes the scheduler down and keeps it down. */
  onParked?(): void;
}

export interface SupervisorOptions {
  readonly control: SchedulerControl;
  /** The operator's switch: flag file, node annotation. */
  readonly safeMode: () => SafeModeFlag;
  /** Makes automatic safe mode stick (writes the flag file); throwing keeps it in memory only. */
  readonly persistSafeMode: (reason: string) => void;
  readonly log?: Logger;
  readonly pollMs?: number;
  /** Poll interval while the kernel is between states (enabling, disabling, link just unpinned). */
  readonly fastPollMs?: number;
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  /** Failures (attach errors, unplanned detaches) within failureWindowMs that mean safe mode. */
  readonly maxFailures?: number;
  readonly failureWindowMs?: number;
  readonly now?: () => number;
}

export interface SupervisorStatus {
  readonly state: SchedulerState;
  /** Why the scheduler is in this state, in words for an operator. */
  readonly reason: string;
  /** ms timestamp (options.now clock) of the current attachment; null when not attached. */
  readonly attachedSince: number | null;
  /** The running scheduler was found attached at start and adopted, not loaded by this agent. */
  readonly adopted: boolean;
  /** Successful attaches after the scheduler had been attached once (re-attaches). */
  readonly reattaches: number;
  /** Times the scheduler went away without the agent asking. */
  readonly unplannedDetaches: number;
  readonly attachFailures: number;
  readonly lastExit: ExitInfo | null;
  readonly lastError: string | null;
}

export const DEFAULT_SUPERVISOR = {
  pollMs: 5000,
  fastPollMs: 10,
  backoffInitialMs: 100,
  backoffMaxMs: 5000,
  maxFailures: 3,
  failureWindowMs: 60_000,
} as const;

/** How long an attached scheduler whose link pin vanished is watched closely (an unload in flight). */
const UNPINNED_WATCH_MS = 3000;

/** Delay before attach attempt n+1 after n consecutive failed attempts: 0, then doubling. */
export function backoffDelay(
  consecutiveFailures: number,
  initialMs: number,
  maxMs: number,
): number {
  if (consecutiveFailures <= 0) return 0;
  return Math.min(maxMs, initialMs * 2 ** (consecutiveFailures - 1));
}

export class Supervisor extends EventEmitter {
  private readonly o: Required<Omit<SupervisorOptions, "log" | "now">> & {
    log: Logger;
    now: () => number;
  };
  private state: SchedulerState = "starting";
  private reason = "starting up";
  private attachedSince: number | null = null;
  private adopted = false;
  private everAttached = false;
  private loadedByUs = false;
  private exitPending = false;
  private reattaches = 0;
  private unplannedDetaches = 0;
  private attachFailures = 0;
  private consecutiveFailures = 0;
  private failureTimes: number[] = [];
  private nextAttemptAt = 0;
  private unpinnedSince: number | null = null;
  private lastExit: ExitInfo | null = null;
  private lastError: string | null = null;
  private memorySafeMode: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private firstStep: Promise<void> | null = null;
  private readonly checks = new Coalescer(
    () => this.check(),
    () => this.stopped,
  );

  constructor(options: SupervisorOptions) {
    super();
    this.o = {
      ...DEFAULT_SUPERVISOR,
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
      log: options.log ?? silentLogger,
      now: options.now ?? Date.now,
    } as typeof this.o;
  }

  status(): SupervisorStatus {
    return {
      state: this.state,
      reason: this.reason,
      attachedSince: this.attachedSince,
      adopted: this.adopted,
      reattaches: this.reattaches,
      unplannedDetaches: this.unplannedDetaches,
      attachFailures: this.attachFailures,
      lastExit: this.lastExit,
      lastError: this.lastError,
    };
  }

  /** Starts supervising; resolves once the first check (adopt, load or safe mode) is done. */
  start(): Promise<void> {
    this.firstStep ??= this.checks.request("start");
    return this.firstStep;
  }

  /** Checks now instead of at the next poll (a pin changed, the safe-mode flag changed). */
  wake(): void {
    void this.checks.request("wake");
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.checks.idle();
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.checks.request("poll");
    }, delayMs);
  }

  /** One check, then the next one scheduled (a wake during it runs it again at once). */
  private async check(): Promise<void> {
    let delay: number;
    try {
      delay = await this.step();
    } catch (err) {
      this.o.log.error(`scheduler supervision: ${errorMessage(err)}`);
      delay = this.o.pollMs;
    }
    if (delay < 0 || this.stopped) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      return;
    }
    this.schedule(delay);
  }

  private setState(state: SchedulerState, reason: string): void {
    const changed = state !== this.state || reason !== this.reason;
    const prev = this.state;
    this.state = state;
    this.reason = reason;
    if (state !== "attached") this.attachedSince = null;
    if (changed) this.emit("state", this.status(), prev);
  }

  private safeMode(): SafeModeFlag {
    const flag = this.o.safeMode();
    if (flag.on) return flag;
    if (this.memorySafeMode !== null) return { on: true, reason: this.memorySafeMode };
    return flag;
  }

  private recordFailure(now: number, what: string): boolean {
    this.lastError = what;
    this.failureTimes = this.failureTimes.filter((t) => now - t < this.o.failureWindowMs);
    this.failureTimes.push(now);
    if (this.failureTimes.length < this.o.maxFailures) return false;
    const reason =
      `auto: ${this.failureTimes.length} scheduler failures within ` +
      `${Math.round(this.o.failureWindowMs / 1000)} s (last: ${what}); ` +
      "turn off with `scx-slo safe-mode off`";
    this.o.log.error(
      `entering safe mode instead of flapping: ${reason}; the kernel's fair class runs everything`,
    );
    try {
      this.o.persistSafeMode(reason);
    } catch (err) {
      this.memorySafeMode = reason;
      this.o.log.error(
        `cannot write the safe-mode flag (${errorMessage(err)}): safe mode holds until the agent restarts`,
      );
    }
    return true;
  }

  private async readExit(): Promise<void> {
    let exit: ExitInfo | null = null;
    try {
      exit = await this.o.control.lastExit();
    } catch {
      exit = null;
    }
    if (exit === null || exit.kind === 0) return;
    this.lastExit = exit;
    const why = `${exit.kind_name}${exit.reason ? `: ${exit.reason}` : ""}${exit.msg ? ` (${exit.msg})` : ""}`;
    this.o.log.warn(`scx_slo exit reason: ${why}`);
    if (this.lastError === "detached") this.lastError = `detached (${why})`;
    this.setState(this.state, `detached (${why})`);
  }

  /** One check; returns the delay until the next (negative: stop polling). */
  private async step(): Promise<number> {
    const { control, log } = this.o;
    const now = this.o.now();
    const sys = control.kernelState();
    if (!sys.supported) {
      if (this.state !== "unsupported") {
        log.warn(
          "this kernel has no sched_ext (/sys/kernel/sched_ext/state is missing; it needs Linux >= 6.12 " +
            "with CONFIG_SCHED_CLASS_EXT=y): the node keeps its stock scheduler, the agent serves " +
            "metrics and health only",
        );
      }
      this.setState("unsupported", "the kernel has no sched_ext");
      return -1; // a kernel does not gain sched_ext while running
    }
    const attached = isScxSloAttached(sys);

    const safe = this.safeMode();
    if (safe.on) {
      const reason = `safe mode: ${safe.reason || "flag set"}`;
      if (!attached && this.state !== "safe_mode") {
        log.warn(`${reason}: scx_slo stays detached; the kernel's fair class runs everything`);
      }
      if (attached) {
        log.warn(`${reason}: detaching scx_slo; the kernel's fair class takes over`);
        try {
          await control.unload();
        } catch (err) {
          log.error(`safe mode: unloading scx_slo failed: ${errorMessage(err)}`);
        }
      }
      if (this.state !== "safe_mode") control.onParked?.();
      this.setState("safe_mode", reason);
      return attached ? this.o.fastPollMs : this.o.pollMs;
    }
    if (this.state === "safe_mode") {
      log.info("safe mode is off: attaching scx_slo");
      this.failureTimes = [];
      this.consecutiveFailures = 0;
      this.nextAttemptAt = 0;
      this.setState("fallen_back", "safe mode turned off; attaching");
    }

    if (attached) {
      if (this.state !== "attached") {
        let how: "adopted" | "loaded" | "handed over" =
          !this.everAttached && !this.loadedByUs ? "adopted" : "loaded";
        if (how === "adopted" && control.adopt) {
          try {
            if (await control.adopt()) how = "handed over";
          } catch (err) {
            this.lastError = `adopting the running scx_slo failed: ${errorMessage(err)}`;
            log.error(`${this.lastError}; it keeps running as it is`);
          }
          if (!isScxSloAttached(control.kernelState())) return this.o.fastPollMs;
        }
        if (how === "adopted") {
          this.adopted = true;
          log.info(
            `scx_slo is already attached (enable_seq ${sys.enableSeq}): adopting it without a reload`,
          );
        } else if (this.everAttached) {
          this.reattaches++;
        }
        this.everAttached = true;
        this.loadedByUs = false;
        this.consecutiveFailures = 0;
        this.setState(
          "attached",
          how === "adopted"
            ? "adopted at start"
            : how === "handed over"
              ? "handed over at start from another build's scheduler"
              : "attached by the agent",
        );
        this.attachedSince = now;
        control.onAttached?.();
        this.emit("attached", how === "adopted" ? how : "loaded");
      }
      if (!control.linkPinned()) {
        // An unload removed the pin; the kernel detaches a moment later. Watch closely.
        this.unpinnedSince ??= now;
        if (now - this.unpinnedSince < UNPINNED_WATCH_MS) return this.o.fastPollMs;
      } else {
        this.unpinnedSince = null;
      }
      return this.o.pollMs;
    }
    this.unpinnedSince = null;

    if (this.state === "attached") {
      this.unplannedDetaches++;
      this.exitPending = true;
      log.warn(
        `scx_slo is no longer attached (sched_ext ${sys.state}); the kernel's fair class runs everything until it is re-attached`,
      );
      this.setState("fallen_back", `detached (sched_ext ${sys.state})`);
      if (this.recordFailure(now, "detached")) return 0;
    }

    if (sys.state === "enabling" || sys.state === "disabling") return this.o.fastPollMs;
    if (sys.state === "enabled" && sys.ops === SCHEDULER_NAME) return this.o.fastPollMs;
    // The scheduler's exit callback has run once the kernel reports "disabled". The next attach
    // resets the record (ops.init), and with a standby copy it takes tens of ms: read it first.
    if (this.exitPending) {
      this.exitPending = false;
      await this.readExit();
    }
    if (now < this.nextAttemptAt) return Math.min(this.o.pollMs, this.nextAttemptAt - now);

    try {
      await control.attach();
      this.loadedByUs = true;
      this.lastError = null;
      log.info(
        this.everAttached ? "scx_slo re-attached" : "scx_slo attached (the scheduler is loaded)",
      );
      return 0; // the next step sees it attached and reports it
    } catch (err) {
      const msg = errorMessage(err);
      this.attachFailures++;
      this.consecutiveFailures++;
      log.warn(`attaching scx_slo failed: ${msg}`);
      if (this.recordFailure(this.o.now(), `attach failed: ${msg}`)) return 0;
      const delay = backoffDelay(
        this.consecutiveFailures,
        this.o.backoffInitialMs,
        this.o.backoffMaxMs,
      );
      this.nextAttemptAt = this.o.now() + delay;
      this.setState("fallen_back", `attach failed: ${msg}; retrying in ${delay} ms`);
      return delay;
    }
  }
}
