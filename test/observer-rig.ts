// A latency workload in an SLO cgroup and CPU hogs in another, on one CPU, with the observer
// measuring: shared by the host test (test/unit/observer-host.test.ts, on this machine's own
// kernel) and the VM scenarios (test/vm/guest/observer-scenario.ts).
//
// Both cgroups sit under one parent. The workload (cyclictest, a 1 ms timer loop at nice 0) and
// the hogs (stress-ng) also share one heavy CPU group (cpu.shares 262144 on a v1 cpu controller,
// cpu.weight 10000 on cgroup v2), so on a busy shared machine they compete with each other on
// their CPU rather than with everything else: the hogs are then the neighbour the observer must
// name. (Without it, a host with autogroups gives every session an equal share, and the waits go
// to whichever sessions run there.)
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { sleep, waitFor, type Finished } from "../src/util/process.js";
import type { CgroupStats, StatsSnapshot } from "../src/sched/loader.js";
import type { Offender } from "../src/sched/observer.js";

/** The cgroup2 mount: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host. */
export function cgroup2Root(): string {
  const mounts = readFileSync("/proc/mounts", "utf8").split("\n");
  const v2 = mounts.map((l) => l.split(" ")).filter((f) => f[2] === "cgroup2");
  const dir = v2.find((f) => f[1] === "/sys/fs/cgroup")?.[1] ?? v2[0]?.[1];
  if (!dir) throw new Error("no cgroup2 mount");
  return dir;
}

/** Mounts bpffs at /sys/fs/bpf when nothing is mounted there (systemd does so at boot). */
export function ensureBpffs(): void {
  const mounted = readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .some((l) => l.split(" ")[1] === "/sys/fs/bpf" && l.split(" ")[2] === "bpf");
  if (!mounted) {
    const r = spawnSyncOk("mount", ["-t", "bpf", "bpf", "/sys/fs/bpf"]);
    if (r) throw new Error(`mounting bpffs: ${r}`);
  }
}

function spawnSyncOk(cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return r.status === 0 ? null : (r.stderr || `exit ${r.status}`).trim();
}

export interface ObserveRig {
  readonly root: string;
  /** Absolute directories of the two cgroups. */
  readonly sloDir: string;
  readonly hogsDir: string;
  readonly sloId: bigint;
  readonly hogsId: bigint;
  /** The CPU both run on. */
  readonly cpu: number;
  /** cgroup.procs files every process of the rig joins besides its own cgroup (the CPU group). */
  readonly extraProcs: readonly string[];
  /** Kills what is left and removes every cgroup the rig made; safe to call twice. */
  cleanup(): void;
}

const V1_CPU = "/sys/fs/cgroup/cpu";

export function makeRig(name: string, cpu: number): ObserveRig {
  const root = cgroup2Root();
  const base = path.join(root, name);
  const made: string[] = [];
  const mk = (dir: string) => {
    if (!existsSync(dir)) {
      mkdirSync(dir);
      made.push(dir);
    }
  };
  const extraProcs: string[] = [];
  mk(base);
  if (existsSync(path.join(V1_CPU, "cpu.shares"))) {
    const group = path.join(V1_CPU, name);
    mk(group);
    writeFileSync(path.join(group, "cpu.shares"), "262144");
    // cyclictest raises its main thread to SCHED_FIFO, which a v1 group refuses without RT time.
    const rt = path.join(group, "cpu.rt_runtime_us");
    if (existsSync(rt)) writeFileSync(rt, "10000");
    extraProcs.push(path.join(group, "cgroup.procs"));
  } else if (readFileSync(path.join(root, "cgroup.controllers"), "utf8").includes("cpu")) {
    try {
      writeFileSync(path.join(root, "cgroup.subtree_control"), "+cpu");
    } catch {
      // already on, or the root cannot delegate: then the rig runs without a heavy group
    }
    if (existsSync(path.join(base, "cpu.weight")))
      writeFileSync(path.join(base, "cpu.weight"), "10000");
  }
  const sloDir = path.join(base, "slo");
  const hogsDir = path.join(base, "hogs");
  mk(sloDir);
  mk(hogsDir);
  const ino = (d: string) => statSync(d, { bigint: true }).ino;
  let cleaned = false;
  return {
    root,
    sloDir,
    hogsDir,
    sloId: ino(sloDir),
    hogsId: ino(hogsDir),
    cpu,
    extraProcs,
    cleanup() {
      if (cleaned) return;
      cleaned = true;
      for (const dir of [...made].reverse()) removeDir(dir);
    },
  };
}

/** Kills the cgroup's processes (cgroup.kill on v2, SIGKILL by pid on v1) and removes it. */
function removeDir(dir: string): void {
  if (!existsSync(dir)) return;
  const procs = (): number[] => {
    try {
      return readFileSync(path.join(dir, "cgroup.procs"), "utf8")
        .split("\n")
        .filter(Boolean)
        .map(Number);
    } catch {
      return [];
    }
  };
  for (let i = 0; i < 200; i++) {
    for (const pid of procs()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY") throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
  rmdirSync(dir);
}

/** Runs argv pinned to the rig's CPU, in cgroupDir and the rig's CPU group. */
export function runInRig(
  rig: ObserveRig,
  cgroupDir: string,
  argv: readonly string[],
): Promise<Finished> {
  const procs = [path.join(cgroupDir, "cgroup.procs"), ...rig.extraProcs];
  const script = 'for f in $PROCS; do echo $$ > "$f" || exit 125; done; exec "$@"';
  return waitFor(
    spawn("/bin/sh", ["-c", script, "sh", "taskset", "-c", String(rig.cpu), ...argv], {
      cwd: "/tmp",
      env: { ...process.env, PROCS: procs.join(" ") },
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
}

export interface CyclictestSummary {
  cycles: number;
  minUs: number;
  avgUs: number;
  maxUs: number;
}

/** cyclictest -q's summary line: "T: 0 (  123) P: 0 I:1000 C:   2990 Min: 29 Act: 109 Avg: 110 Max: 9817". */
export function parseCyclictest(stdout: string): CyclictestSummary | null {
  const m = /C:\s*(\d+)\s+Min:\s*(\d+)\s+Act:\s*\d+\s+Avg:\s*(\d+)\s+Max:\s*(\d+)/.exec(stdout);
  if (!m) return null;
  return { cycles: Number(m[1]), minUs: Number(m[2]), avgUs: Number(m[3]), maxUs: Number(m[4]) };
}

export interface PhaseResult {
  hogs: number;
  cyclictest: CyclictestSummary | null;
  cyclictestExit: number | null;
  hogsExit: number | null;
  /** CPU the hogs' cgroup used while the workload ran, in microseconds. */
  hogsCpuUs: number;
  /** The SLO cgroup's stats after the phase (the SLO was set afresh before it). */
  stats: CgroupStats | null;
  /** The SLO cgroup's offenders after the phase. */
  offenders: Offender[];
}

export interface PhaseOptions {
  hogs: number;
  seconds: number;
  /** Called before the phase starts: set the SLO afresh (stats and offenders start from zero). */
  reset: () => Promise<void>;
  stats: () => Promise<StatsSnapshot>;
  offenders: () => Promise<Offender[]>;
}

function usageUs(dir: string): number {
  const m = /^usage_usec (\d+)$/m.exec(readFileSync(path.join(dir, "cpu.stat"), "utf8"));
  return m ? Number(m[1]) : 0;
}

/**
 * One phase: `hogs` stress-ng hogs (none: a quiet CPU) and cyclictest with a 1 ms interval for
 * `seconds`, both on the rig's CPU; then the observer's stats and offenders for the SLO cgroup.
 */
export async function runPhase(rig: ObserveRig, o: PhaseOptions): Promise<PhaseResult> {
  await o.reset();
  const hogRun =
    o.hogs > 0
      ? runInRig(rig, rig.hogsDir, [
          "stress-ng",
          "--cpu",
          String(o.hogs),
          "--timeout",
          `${o.seconds + 1}s`,
          "--temp-path",
          "/tmp",
          "-q",
        ])
      : null;
  if (hogRun) await sleep(300);
  const before = usageUs(rig.hogsDir);
  const ct = await runInRig(rig, rig.sloDir, [
    "cyclictest",
    "-t1",
    "-i1000",
    `-D${o.seconds}`,
    "-q",
    "-m",
  ]);
  const hogsCpuUs = usageUs(rig.hogsDir) - before;
  const hogsExit = hogRun ? (await hogRun).code : null;
  const snap = await o.stats();
  const offenders = (await o.offenders()).filter((x) => x.sloCgroupId === rig.sloId);
  return {
    hogs: o.hogs,
    cyclictest: parseCyclictest(ct.stdout),
    cyclictestExit: ct.code,
    hogsExit,
    hogsCpuUs,
    stats: snap.cgroups.find((c) => c.cgroupId === rig.sloId) ?? null,
    offenders,
  };
}
