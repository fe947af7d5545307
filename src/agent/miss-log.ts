// Deadline misses in the agent's debug log: each names the cgroup, the task and the wait, at most
// PER_SECOND lines a second however many the ring buffer brings (the scheduler already counts
// them all; the log is for a person reading along).
import type { MissEvent } from "../sched/loader.js";
import type { Logger } from "../util/log.js";

const PER_SECOND = 10;

export class MissLog {
  private second = 0;
  private left = 0;

  constructor(
    private readonly log: Logger,
    /** The cgroup path of an SLO cgroup id, when known. */
    private readonly pathOf: (cgroupId: bigint) => string | undefined,
  ) {}

  note(ev: MissEvent): void {
    const second = Math.floor(Date.now() / 1000);
    if (this.second !== second) {
      this.second = second;
      this.left = PER_SECOND;
    }
    if (this.left-- <= 0) return;
    this.log.debug(
      `miss: ${this.pathOf(ev.cgroupId) ?? `cgroup ${ev.cgroupId}`} pid ${ev.pid} (${ev.comm}) ` +
        `waited ${(ev.waitNs / 1e6).toFixed(2)} ms, budget ${(ev.budgetNs / 1e6).toFixed(2)} ms, cpu ${ev.cpu}`,
    );
  }
}
