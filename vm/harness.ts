// Runs a shell command as root inside a real sched_ext kernel under QEMU (software emulation),
// with the host's root filesystem shared read-only and a writable results folder shared back.
// See vm/guest-init for what the guest mounts; this module owns the host side.
import { execFileSync, spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { findProjectRoot } from "../src/util/project-root.js";
import { NAMED_THREADS_ARGS, serveTimersFirst, type HostPriority } from "./host-priority.js";

export const PROJECT_ROOT = findProjectRoot();
/** Downloads and builds live here; SCX_SLO_CACHE moves it (tests use that to fake a bare machine). */
const cacheDir = () => process.env.SCX_SLO_CACHE ?? path.join(PROJECT_ROOT, ".cache");

export interface VmOptions {
  /** Shell command (run by /bin/sh in the guest, cwd = project root unless `cwd` is given). */
  command: string;
  cpus?: number;
  memoryMiB?: number;
  /** Wall-clock limit for the whole VM, boot included. */
  timeoutMs?: number;
  /** Host folder the guest may write; created if missing. Default: a fresh folder under .cache/vm-runs. */
  outDir?: string;
  cwd?: string;
  env?: Record<string, string>;
  /** Extra kernel command-line words. */
  kernelArgs?: string[];
  /** Called with each chunk the guest prints on its serial console (progress for long runs). */
  onOutput?: (chunk: string) => void;
  /**
   * "timers-first" (the default) serves QEMU's main loop before its vCPU threads on the host, so
   * guest timer interrupts are not held up by the host's scheduler (see vm/host-priority.ts).
   */
  hostPriority?: HostPriority;
  /** QEMU -cpu value; DEFAULT_CPU_MODEL unless a test needs another. */
  cpuModel?: string;
  /**
   * A kernel folder (vmlinuz, modules/, initramfs built here) other than the cached sched_ext
   * kernel, e.g. an older LTS kernel from vm/fetch-lts-kernel.sh.
   */
  kernelDir?: string;
  /**
   * Which cached kernel boots: a name vm/fetch-kernel.sh keeps ("current", "sid") or a version
   * folder under .cache/kernel. Default: $SCX_SLO_KERNEL, else "current".
   */
  kernel?: string;
}

/**
 * Every feature TCG emulates, less 5-level paging. With la57 the guest kernel walks five page-table
 * levels; TCG's software TLB is refilled by such a walk after every address-space switch, with no
 * paging-structure caches as hardware has, so the fifth level adds a large share to each wake-up
 * path under emulation (bench/results/2026-11-24-proof-4level/NOTES.md has the A/B). No workload
 * here needs 57-bit addresses.
 */
export const DEFAULT_CPU_MODEL = "max,la57=off";

/**
 * Kernel command-line words every guest gets. TCG executes nothing speculatively, so the guest's
 * Spectre defences (retpolines on every indirect call, the return-stack refill at every context
 * switch) guard nothing here, yet they are emulated instruction by instruction on every wake-up
 * path. Hardware keeps its own mitigations; this is the emulator's cost only.
 */
export const DEFAULT_KERNEL_ARGS = ["mitigations=off"];

export interface VmResult {
  exitCode: number;
  /** The command's own stdout+stderr (without kernel console noise). */
  output: string;
  /** Folder on the host holding what the guest wrote (plus .output, .dmesg, .serial.log). */
  outDir: string;
  serialLog: string;
  dmesg: string;
  /** Guest uptime when the command started, in ms (kernel boot + init). */
  guestBootMs: number;
  /** Host wall time from starting QEMU to the command starting, in ms. */
  bootToCommandMs: number;
  wallMs: number;
  /** How QEMU's threads were prioritised on the host (see VmOptions.hostPriority). */
  hostPriority: string;
  /** The guest kernel's version (its folder under .cache/kernel). */
  kernel: string;
}

export class VmError extends Error {
  constructor(
    message: string,
    readonly serialLogPath?: string,
  ) {
    super(message);
    this.name = "VmError";
  }
}
/** The guest did not finish within its limit and was killed. */
export class VmTimeoutError extends VmError {
  override name = "VmTimeoutError";
}
/** The guest kernel oopsed or panicked: a platform fault, not a failure of the code under test. */
export class GuestKernelCrash extends VmError {
  override name = "GuestKernelCrash";
  constructor(
    message: string,
    serialLogPath: string,
    /** Whether the command had started: a crash before it cannot be the command's doing. */
    readonly commandStarted: boolean,
    /** Every oops is an int3 trap in kernel text: the emulator racing the kernel's code patching. */
    readonly codePatchingFault = false,
  ) {
    super(message, serialLogPath);
  }
}

export interface KernelImage {
  version: string;
  dir: string;
  vmlinuz: string;
  initramfs: string;
}

/**
 * A cached sched_ext kernel, or a VmError naming the setup command. `which` is a name that
 * vm/fetch-kernel.sh writes ("current": the default, "sid": the second kernel), whose file holds
 * a version, or a version folder itself.
 */
export function findKernel(which: string = process.env.SCX_SLO_KERNEL || "current"): KernelImage {
  const kdir = path.join(cacheDir(), "kernel");
  const named = path.join(kdir, which);
  let version = which;
  if (existsSync(named) && statSync(named).isFile()) {
    version = readFileSync(named, "utf8").trim();
  } else if (!existsSync(named) || which.includes("/")) {
    throw new VmError(
      which === "current"
        ? `no sched_ext kernel in ${kdir}: run \`make setup\` (as root)`
        : `no kernel "${which}" in ${kdir}: run \`make setup\` (as root), or name a version folder there`,
    );
  }
  return kernelIn(path.join(kdir, version), "run `make setup` (as root)");
}

function kernelIn(dir: string, fix: string): KernelImage {
  const version = path.basename(dir);
  const image = {
    version,
    dir,
    vmlinuz: path.join(dir, "vmlinuz"),
    initramfs: path.join(dir, "initramfs.cpio.gz"),
  };
  for (const f of [image.vmlinuz, image.initramfs]) {
    if (!existsSync(f)) throw new VmError(`missing ${f}: ${fix}`);
  }
  return image;
}

export function findQemu(): string {
  for (const dir of (process.env.PATH ?? "/usr/bin:/bin").split(":")) {
    const candidate = path.join(dir, "qemu-system-x86_64");
    if (existsSync(candidate)) return candidate;
  }
  throw new VmError("qemu-system-x86_64 not found: run `make setup` (as root)");
}

/** Every oops in the log is `Oops: int3` (a panic that follows one is its consequence). */
export function isCodePatchingFault(serial: string): boolean {
  const oopses = serial.match(/\bOops: [^\n]*/g) ?? [];
  const other = CRASH_PATTERNS.slice(2).some((re) => re.test(serial));
  return oopses.length > 0 && oopses.every((o) => o.startsWith("Oops: int3")) && !other;
}

const CRASH_PATTERNS = [
  /Kernel panic - not syncing/,
  /\bOops: /,
  /BUG: kernel NULL pointer/,
  /general protection fault/,
];

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function writeRunScript(opts: VmOptions, outDir: string): void {
  const env = {
    HOME: "/root",
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    LANG: "C.UTF-8",
    SCXVM: "1",
    SCXVM_OUT: outDir,
    ...opts.env,
  };
  const lines = [
    "#!/bin/sh",
    // The guest has no network and no terminal; keep tools from probing either.
    ...Object.entries(env).map(([k, v]) => `export ${k}=${shellQuote(v)}`),
    `cd ${shellQuote(opts.cwd ?? PROJECT_ROOT)} || exit 126`,
    `/bin/sh -c ${shellQuote(opts.command)}`,
    `echo $? > ${shellQuote(path.join(outDir, ".exit-status"))}`,
  ];
  writeFileSync(path.join(outDir, ".run.sh"), lines.join("\n") + "\n");
}

export function newRunDir(label = "run"): string {
  const base = path.join(cacheDir(), "vm-runs");
  mkdirSync(base, { recursive: true });
  return mkdtempSync(path.join(base, `${label}-`));
}

export async function runInVm(opts: VmOptions): Promise<VmResult> {
  const qemu = findQemu();
  const kernel =
    opts.kernelDir !== undefined
      ? kernelIn(opts.kernelDir, "run vm/fetch-lts-kernel.sh")
      : findKernel(opts.kernel);
  // Keep the initramfs in step with vm/guest-init (a no-op when it is current).
  execFileSync(path.join(PROJECT_ROOT, "vm", "make-initramfs.sh"), [kernel.dir], {
    stdio: "inherit",
  });
  // Without symlinks: the guest mounts the share at this path before it has the host's view of
  // them (a worktree's .cache is often a link to another checkout's).
  const wanted = path.resolve(opts.outDir ?? newRunDir());
  mkdirSync(wanted, { recursive: true });
  const outDir = realpathSync(wanted);
  writeRunScript(opts, outDir);
  try {
    return await boot(opts, qemu, kernel, outDir);
  } catch (err) {
    // Under emulation the guest kernel rarely trips over an int3 left by its own code patching
    // (static keys, which enabling or disabling sched_ext flips): QEMU's multi-threaded TCG
    // lets another vCPU run the patched site mid-patch. Before the command ran, any crash is
    // the platform's; after, only that one is retried, since nothing a BPF program or the
    // command does leaves an int3 in kernel text. Either way, once.
    if (!(err instanceof GuestKernelCrash) || (err.commandStarted && !err.codePatchingFault))
      throw err;
    const suffix = err.commandStarted ? "first-run" : "first-boot";
    renameSync(err.serialLogPath!, `${err.serialLogPath}.${suffix}`);
    opts.onOutput?.(
      `[vm] the guest kernel crashed ${err.commandStarted ? "on an int3 of its own code patching" : "while booting"} (${err.serialLogPath}.${suffix}); booting again\n`,
    );
    return await boot(opts, qemu, kernel, outDir);
  }
}

async function boot(
  opts: VmOptions,
  qemu: string,
  kernel: KernelImage,
  outDir: string,
): Promise<VmResult> {
  const serialLogPath = path.join(outDir, ".serial.log");
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const cpus = opts.cpus ?? 2;
  const memoryMiB = opts.memoryMiB ?? 2048;

  const append = [
    "console=ttyS0",
    "quiet",
    "panic=-1",
    "psi=1",
    `scxvm.out=${outDir}`,
    `scxvm.root=${PROJECT_ROOT}`,
    ...DEFAULT_KERNEL_ARGS,
    ...(opts.kernelArgs ?? []),
  ].join(" ");
  const args = [
    ...NAMED_THREADS_ARGS,
    ...[
      "-accel",
      "tcg,thread=multi",
      "-cpu",
      opts.cpuModel ?? DEFAULT_CPU_MODEL,
      "-smp",
      String(cpus),
      "-m",
      String(memoryMiB),
    ],
    ...["-kernel", kernel.vmlinuz, "-initrd", kernel.initramfs, "-append", append],
    ...["-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on"],
    ...["-virtfs", `local,path=${outDir},mount_tag=results,security_model=none`],
    ...["-display", "none", "-serial", "stdio", "-monitor", "none", "-nic", "none", "-no-reboot"],
  ];

  const started = Date.now();
  let serial = "";
  let commandStartedAt = 0;
  const child = spawn(qemu, args, { stdio: ["ignore", "pipe", "pipe"] });
  const onChunk = (buf: Buffer) => {
    const text = buf.toString("utf8");
    serial += text;
    if (!commandStartedAt && serial.includes("@@SCXVM-START")) commandStartedAt = Date.now();
    opts.onOutput?.(text);
  };
  child.stdout.on("data", onChunk);
  child.stderr.on("data", onChunk);
  const hostPriority =
    (opts.hostPriority ?? "timers-first") === "timers-first" && child.pid
      ? serveTimersFirst(child.pid, cpus)
      : Promise.resolve("default");

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, timeoutMs);
  const code: number | null = await new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (c) => resolve(c));
  });
  clearTimeout(timer);
  const wallMs = Date.now() - started;
  writeFileSync(serialLogPath, serial);

  if (CRASH_PATTERNS.some((re) => re.test(serial))) {
    throw new GuestKernelCrash(
      `guest kernel crashed (oops/panic) - a platform fault, not a test failure; serial log: ${serialLogPath}`,
      serialLogPath,
      commandStartedAt > 0,
      isCodePatchingFault(serial),
    );
  }
  if (timedOut) {
    throw new VmTimeoutError(
      `guest exceeded its time limit of ${Math.round(timeoutMs / 1000)} s and was killed; serial log: ${serialLogPath}`,
      serialLogPath,
    );
  }
  const initFailure = /@@SCXVM-INIT-FAILED (.*)/.exec(serial);
  if (initFailure) {
    throw new VmError(
      `guest init failed: ${initFailure[1]}; serial log: ${serialLogPath}`,
      serialLogPath,
    );
  }
  const statusFile = path.join(outDir, ".exit-status");
  if (!existsSync(statusFile)) {
    throw new VmError(
      `guest ended (qemu exit ${code}) without the command's exit status; serial log: ${serialLogPath}`,
      serialLogPath,
    );
  }
  const readOr = (f: string) => (existsSync(f) ? readFileSync(f, "utf8") : "");
  const startMatch = /@@SCXVM-START ([0-9.]+)/.exec(serial);
  return {
    exitCode: Number(readFileSync(statusFile, "utf8").trim()),
    output: readOr(path.join(outDir, ".output")),
    outDir,
    serialLog: serialLogPath,
    dmesg: readOr(path.join(outDir, ".dmesg")),
    guestBootMs: startMatch ? Math.round(Number(startMatch[1]) * 1000) : NaN,
    bootToCommandMs: commandStartedAt ? commandStartedAt - started : NaN,
    wallMs,
    hostPriority: await hostPriority,
    kernel: kernel.version,
  };
}
