// Timer interrupts in QEMU's software emulation are raised by the emulator's main-loop thread. When
// both vCPU threads spin (the guest is CPU-saturated) on a host with as many cores as vCPUs, that
// thread waits for the host's fair scheduler to preempt a vCPU thread: milliseconds of delay added to
// every guest timer, for every guest scheduler alike, that real hardware does not have. Serving the
// main loop first (SCHED_FIFO on the host) brings timer delivery back near hardware behaviour;
// the vCPU threads keep their normal policy, each pinned to its own host core so the host does not
// shuffle them (a guest CPU that changes host core mid-run sees a pause no real CPU has). The
// kernel's RT throttling (95% by default) still bounds the main loop if it ever spun. Measured on
// this project's 2-core host (bench/results/2026-11-24-proof/NOTES.md): with the default priority
// a guest under 8 CPU hogs sees cyclictest p99 of ~2-3 ms under either scheduler, mostly this delay.
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import { promisify } from "node:util";

const run = promisify(execFile);

/** QEMU arguments that give vCPU threads recognisable names ("CPU 0/TCG"). */
export const NAMED_THREADS_ARGS = ["-name", "scxvm,debug-threads=on"];

export type HostPriority = "timers-first" | "default";

/** vCPU index -> host thread id. */
function vcpuThreads(pid: number): Map<number, number> {
  const found = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const m = /^CPU (\d+)\/TCG/.exec(readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8"));
      if (m) found.set(Number(m[1]), Number(tid));
    } catch {
      // the thread ended between listing and reading
    }
  }
  return found;
}

/**
 * Waits until QEMU has created its vCPU threads (so they do not inherit the policy), then moves the
 * main-loop thread to SCHED_FIFO priority 1 and pins vCPU n to host core n. Returns what was done, for the run's record; never
 * throws (a host that refuses RT just runs at default priority and says so).
 */
export async function serveTimersFirst(pid: number, vcpus: number): Promise<string> {
  const deadline = Date.now() + 15_000;
  try {
    let threads = vcpuThreads(pid);
    while (threads.size < vcpus) {
      if (Date.now() > deadline) return `default (QEMU's ${vcpus} vCPU threads not seen in 15 s)`;
      await new Promise((r) => setTimeout(r, 20));
      threads = vcpuThreads(pid);
    }
    await run("chrt", ["--fifo", "--pid", "1", String(pid)]);
    if (os.availableParallelism() < vcpus) {
      return "timers-first (QEMU main loop SCHED_FIFO 1; vCPU threads not pinned: fewer host cores than vCPUs)";
    }
    for (const [index, tid] of threads) {
      await run("taskset", ["--cpu-list", "--pid", String(index), String(tid)]);
    }
    return "timers-first (QEMU main loop SCHED_FIFO 1; vCPU threads SCHED_OTHER, one per host core)";
  } catch (err) {
    return `default (could not raise the QEMU main loop: ${(err as Error).message.split("\n")[0]})`;
  }
}
