// The production schedulers of the sched-ext/scx project as benchmark arms, started as an
// operator would start them (bench/peers/README.md says why each runs as it does): the binary
// from the crates.io build cache (`make peers`), from the root cgroup, with its documented
// options; ready once the kernel names it; stopped with SIGINT.
import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readFileSync } from "node:fs";
import { release } from "node:os";
import path from "node:path";
import { spawnInCgroup } from "../src/cgroup/spawn.js";
import { findProjectRoot } from "../src/util/project-root.js";
import { sleep } from "../src/util/process.js";

export const PEER_ARMS = ["lavd", "lavd-bw", "bpfland", "flash", "layered"] as const;
export type PeerArm = (typeof PEER_ARMS)[number];
/** The peer arm that enforces cpu.max; it runs only where a workload sets one. */
export const CPU_BW_ARM: PeerArm = "lavd-bw";

export function isPeerArm(arm: string): arm is PeerArm {
  return (PEER_ARMS as readonly string[]).includes(arm);
}

export function peerBinDir(): string {
  return path.join(process.env.SCX_SLO_CACHE_ROOT ?? "/var/cache/scx-slo", "scx-peers", "bin");
}

/** scx_layered's layer config: the critical (and load generator's) cgroup in a preempting layer. */
export function layeredConfigPath(root = findProjectRoot()): string {
  return path.join(root, "bench", "peers", "layered-critical.json");
}

export interface PeerCommand {
  argv: string[];
  /** What /sys/kernel/sched_ext/root/ops starts with while it is attached. */
  opsPrefix: string;
}

export function peerCommand(arm: PeerArm, root = findProjectRoot()): PeerCommand {
  const bin = (name: string) => path.join(peerBinDir(), name);
  switch (arm) {
    case "lavd":
      return { argv: [bin("scx_lavd")], opsPrefix: "lavd_" };
    case "lavd-bw":
      return { argv: [bin("scx_lavd"), "--enable-cpu-bw"], opsPrefix: "lavd_" };
    case "bpfland":
      return { argv: [bin("scx_bpfland")], opsPrefix: "bpfland_" };
    case "flash":
      return { argv: [bin("scx_flash")], opsPrefix: "flash_" };
    case "layered":
      return {
        argv: [bin("scx_layered"), `f:${layeredConfigPath(root)}`],
        opsPrefix: "layered_",
      };
  }
}

const SCX = "/sys/kernel/sched_ext";

/**
 * The kernel's sched_ext state ("disabled", "enabled", ...), the attached scheduler's name, and
 * how many times a scheduler has been enabled since boot (null where the kernel does not say).
 */
export function kernelSchedState(): {
  state: string;
  ops: string | null;
  enableSeq: number | null;
} {
  const read = (f: string) => {
    try {
      return readFileSync(path.join(SCX, f), "utf8").trim();
    } catch {
      return null;
    }
  };
  const state = read("state") ?? "missing";
  const seq = read("enable_seq");
  return {
    state,
    ops: state === "enabled" ? (read("root/ops") ?? read("ops")) : null,
    enableSeq: seq === null ? null : Number(seq),
  };
}

/**
 * libbpf resolves scx_lavd's and scx_layered's __kconfig externs from /boot/config-<release> or
 * /proc/config.gz and refuses to load them without either. A Debian node has the former; the
 * guest sees the host's /boot, which has none for the guest's kernel, so the cached kernel's
 * config goes on a tmpfs mounted over /boot, in this boot only (the guest's mounts die with it).
 */
export function ensureKernelConfig(root = findProjectRoot()): void {
  const rel = release();
  if (existsSync(`/boot/config-${rel}`) || existsSync("/proc/config.gz")) return;
  const cached = path.join(root, ".cache", "kernel", rel, "config");
  if (!existsSync(cached)) throw new Error(`no kernel config for ${rel} at ${cached}`);
  execFileSync("mount", ["-t", "tmpfs", "-o", "mode=755", "tmpfs", "/boot"]);
  execFileSync("cp", [cached, `/boot/config-${rel}`]);
}

/** Minutes for scx_lavd and scx_layered under emulation: almost all of it the BPF verifier. */
export const ATTACH_TIMEOUT_S = Number(process.env.SCX_PEER_ATTACH_TIMEOUT_S ?? 600);

export interface RunningPeer {
  arm: PeerArm;
  argv: string[];
  opsPrefix: string;
  ops: string;
  attachS: number;
  stop(): Promise<{ exitCode: number | null; detachS: number }>;
}

/** Starts the peer and waits until the kernel has it attached; its output goes to logFile. */
export async function startPeer(arm: PeerArm, logFile: string): Promise<RunningPeer> {
  const { state } = kernelSchedState();
  if (state !== "disabled") throw new Error(`sched_ext is ${state} before ${arm} starts`);
  ensureKernelConfig();
  const { argv, opsPrefix } = peerCommand(arm);
  mkdirSync(path.dirname(logFile), { recursive: true });
  const log = createWriteStream(logFile, { flags: "a" });
  log.write(`# ${new Date().toISOString()} ${argv.join(" ")}\n`);
  let tail = "";
  const child: ChildProcess = spawnInCgroup("/", argv);
  for (const s of [child.stdout, child.stderr]) {
    s?.on("data", (d: Buffer) => {
      log.write(d);
      tail = (tail + d.toString()).slice(-3000);
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  const t0 = Date.now();
  let beat = 30_000;
  for (;;) {
    const k = kernelSchedState();
    if (k.state === "enabled" && k.ops?.startsWith(opsPrefix) && child.exitCode === null) {
      const attachS = (Date.now() - t0) / 1000;
      console.log(`  ${arm}: attached as ${k.ops} after ${attachS.toFixed(1)} s`);
      return {
        arm,
        argv,
        opsPrefix,
        ops: k.ops,
        attachS,
        stop: () => stopPeer(child, exited, log),
      };
    }
    const waited = Date.now() - t0;
    if (child.exitCode !== null || child.signalCode !== null || waited > ATTACH_TIMEOUT_S * 1000) {
      await stopPeer(child, exited, log).catch(() => null);
      const why =
        child.exitCode !== null || child.signalCode !== null
          ? `exited (${child.exitCode ?? child.signalCode})`
          : `not attached within ${ATTACH_TIMEOUT_S} s (state ${k.state})`;
      throw new Error(`${arm} ${why}:\n${tail}`);
    }
    if (waited >= beat) {
      console.log(
        `  ${arm}: waiting for the attach, ${Math.round(waited / 1000)} s, state ${k.state}`,
      );
      beat += 30_000;
    }
    await sleep(100);
  }
}

/** SIGINT as an operator stops it, SIGKILL after 15 s; then the kernel must be back on fair. */
async function stopPeer(
  child: ChildProcess,
  exited: Promise<number | null>,
  log: NodeJS.WritableStream,
): Promise<{ exitCode: number | null; detachS: number }> {
  const t0 = Date.now();
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGINT");
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  }
  const exitCode = await exited;
  log.end();
  while (kernelSchedState().state !== "disabled") {
    if (Date.now() - t0 > 25_000) {
      throw new Error(`sched_ext still ${kernelSchedState().state} after the peer exited`);
    }
    await sleep(50);
  }
  return { exitCode, detachS: (Date.now() - t0) / 1000 };
}
