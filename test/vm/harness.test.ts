// The VM harness against a real sched_ext kernel: what the guest provides, and its failure paths.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { GuestKernelCrash, newRunDir, runInVm, VmTimeoutError } from "../../vm/harness.js";

test("guest: sched_ext kernel >= 6.12, cgroup2, bpffs, PSI, 4-level paging, no Spectre mitigations, and files come back to the host", async () => {
  const script = [
    "set -e",
    "uname -r > $SCXVM_OUT/uname",
    "cat /sys/kernel/sched_ext/state > $SCXVM_OUT/scx-state",
    "mkdir /sys/fs/cgroup/harness-probe",
    "sleep 30 & pid=$!",
    "echo $pid > /sys/fs/cgroup/harness-probe/cgroup.procs",
    "cat /proc/$pid/cgroup > $SCXVM_OUT/moved",
    "kill $pid",
    "grep ' /sys/fs/bpf bpf ' /proc/mounts > $SCXVM_OUT/bpffs",
    "cat /proc/pressure/cpu > $SCXVM_OUT/psi",
    "grep ' /dev/shm tmpfs ' /proc/mounts > $SCXVM_OUT/shm",
    "nproc > $SCXVM_OUT/nproc",
    "grep -m1 '^flags' /proc/cpuinfo > $SCXVM_OUT/cpuflags",
    "cat /sys/devices/system/cpu/vulnerabilities/spectre_v2 > $SCXVM_OUT/spectre-v2",
    "echo written-in-guest > $SCXVM_OUT/hello",
  ].join("\n");
  const r = await runInVm({ command: script, cpus: 2, memoryMiB: 1024, timeoutMs: 90_000 });
  const read = (f: string) => readFileSync(path.join(r.outDir, f), "utf8").trim();
  assert.equal(r.exitCode, 0, r.output);
  const [major, minor] = read("uname").split(".").map(Number);
  assert.ok(
    major! > 6 || (major === 6 && minor! >= 12),
    `kernel ${read("uname")} is older than 6.12`,
  );
  assert.match(read("scx-state"), /^(disabled|enabled)$/);
  assert.equal(read("moved"), "0::/harness-probe");
  assert.match(read("bpffs"), /bpf/);
  assert.match(read("psi"), /^some avg10=/);
  assert.match(read("shm"), /tmpfs/);
  assert.equal(read("nproc"), "2");
  const flags = read("cpuflags").split(/\s+/);
  assert.ok(flags.includes("x2apic"), "the emulated CPU is QEMU's max model");
  assert.ok(!flags.includes("la57"), "5-level paging is off (vm/harness.ts DEFAULT_CPU_MODEL)");
  assert.match(
    read("spectre-v2"),
    /^Vulnerable/,
    "no retpolines in the guest (vm/harness.ts DEFAULT_KERNEL_ARGS)",
  );
  assert.equal(read("hello"), "written-in-guest");
  assert.ok(r.guestBootMs > 0 && r.bootToCommandMs > 0);
  console.log(
    `# boot to command: ${r.bootToCommandMs} ms host wall, guest uptime ${r.guestBootMs} ms`,
  );
});

/** The QEMU process whose command line names `outDir` (unique per run), read from /proc. */
function qemuFor(outDir: string): number | undefined {
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (cmdline.includes("qemu-system") && cmdline.includes(outDir)) return Number(pid);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

function hostThreads(pid: number): { name: string; policy: string; cpus: string }[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
    return {
      name: readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim(),
      policy: execFileSync("chrt", ["--pid", tid], { encoding: "utf8" }),
      cpus: /Cpus_allowed_list:\s*(\S+)/.exec(status)![1]!,
    };
  });
}

test("host: QEMU's main loop (guest timers) is served first and vCPU n runs on host core n", async () => {
  const outDir = newRunDir("priority");
  let seen: ReturnType<typeof hostThreads> | undefined;
  // The console arrives in arbitrary chunks: the start marker can be split across two.
  let consoleText = "";
  const r = await runInVm({
    command: "sleep 2",
    outDir,
    timeoutMs: 60_000,
    onOutput: (chunk) => {
      consoleText += chunk;
      const pid = !seen && consoleText.includes("@@SCXVM-START") ? qemuFor(outDir) : undefined;
      if (pid) seen = hostThreads(pid);
    },
  });
  assert.equal(r.exitCode, 0, r.output);
  assert.match(r.hostPriority, /^timers-first/);
  assert.ok(seen, "QEMU's threads were seen while the guest ran");
  const main = seen.find((t) => t.name.startsWith("qemu-system"));
  assert.match(main!.policy, /SCHED_FIFO/);
  assert.match(main!.policy, /priority: 1/);
  const vcpus = seen.filter((t) => /^CPU \d+\/TCG/.test(t.name));
  assert.equal(vcpus.length, 2);
  for (const v of vcpus) {
    assert.match(v.policy, /SCHED_OTHER/);
    assert.equal(v.cpus, /^CPU (\d+)/.exec(v.name)![1]);
  }
});

test("guest: the command's exit status and output come back", async () => {
  const r = await runInVm({
    command: "echo to-stdout; echo to-stderr >&2; exit 7",
    timeoutMs: 60_000,
  });
  assert.equal(r.exitCode, 7);
  assert.match(r.output, /to-stdout/);
  assert.match(r.output, /to-stderr/);
});

test("guest: over its time limit it is killed and the error names the limit", async () => {
  const started = Date.now();
  await assert.rejects(runInVm({ command: "sleep 600", timeoutMs: 15_000 }), (err: unknown) => {
    assert.ok(err instanceof VmTimeoutError, String(err));
    assert.match(err.message, /time limit of 15 s/);
    assert.ok(err.serialLogPath && existsSync(err.serialLogPath), "serial log kept");
    assert.match(readFileSync(err.serialLogPath, "utf8"), /@@SCXVM-START/);
    return true;
  });
  assert.ok(Date.now() - started < 25_000, "killed promptly at the limit");
});

test("guest: a kernel crash while booting is booted again once; a crash after the command started is reported, not retried", async () => {
  // No init at all: the kernel panics before the command could start, on every boot.
  const progress: string[] = [];
  await assert.rejects(
    runInVm({
      command: "true",
      timeoutMs: 60_000,
      kernelArgs: ["rdinit=/nonexistent", "root=/dev/nonexistent"],
      onOutput: (chunk) => progress.push(chunk),
    }),
    (err: unknown) => {
      assert.ok(err instanceof GuestKernelCrash, String(err));
      assert.equal(err.commandStarted, false);
      assert.ok(existsSync(`${err.serialLogPath}.first-boot`), "the first boot's log is kept");
      assert.match(readFileSync(`${err.serialLogPath}.first-boot`, "utf8"), /Kernel panic/);
      assert.match(progress.join(""), /crashed while booting .*; booting again/);
      return true;
    },
  );
  // The command itself crashes the kernel: one boot, reported as a crash.
  await assert.rejects(
    runInVm({ command: "echo c > /proc/sysrq-trigger; sleep 30", timeoutMs: 60_000 }),
    (err: unknown) => {
      assert.ok(err instanceof GuestKernelCrash, String(err));
      assert.equal(err.commandStarted, true);
      assert.ok(!existsSync(`${err.serialLogPath}.first-boot`), "not booted again");
      return true;
    },
  );
});
