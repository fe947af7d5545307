// scx_slo on a real sched_ext kernel: verifier, attach, policy effects, live SLO changes,
// pinning, fallback, and the loader's errors. One VM boot runs test/vm/guest/scheduler-scenario.ts;
// scheduler.test.ts runs it on the default kernel, scheduler-sid.test.ts on Debian sid's.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { findKernel, runInVm } from "../../vm/harness.js";

type Scenario = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The scheduler's VM tests on one cached kernel (a name vm/fetch-kernel.sh keeps, or a version). */
export function schedulerSuite(kernel = "current"): void {
  describe(`scx_slo on kernel ${findKernelVersion(kernel)}`, () => schedulerTests(kernel));
}

function findKernelVersion(kernel: string): string {
  try {
    return findKernel(kernel).version;
  } catch {
    return kernel;
  }
}

function schedulerTests(kernel: string): void {
  let scenario: Scenario;

  test("scheduler scenario runs in the VM", async () => {
    const r = await runInVm({
      command: "node dist/test/vm/guest/scheduler-scenario.js",
      timeoutMs: 180_000,
      kernel,
    });
    console.log(`# kernel ${r.kernel}`);
    const file = path.join(r.outDir, "scenario.json");
    scenario = JSON.parse(readFileSync(file, "utf8")) as Scenario;
    assert.equal(r.exitCode, 0, r.output);
    assert.doesNotMatch(
      r.dmesg,
      /sched_ext: .*(error|stall)/i,
      "kernel log shows no scheduler error",
    );
  });

  test("verifier accepts the object and scx_slo attaches", () => {
    assert.equal(scenario.stateBefore, "disabled");
    assert.equal(scenario.stateLoaded, "enabled");
    assert.equal(scenario.opsLoaded, "scx_slo");
  });

  test("a second load is refused with one clear line", () => {
    assert.match(scenario.secondLoadError, /already loaded/);
  });

  test("SLO and non-SLO cgroups both get CPU while both burn it", () => {
    assert.deepEqual(scenario.hogExit, { slo: 0, batch: 0 });
    const { slo, batch } = scenario.cpuUsec as { slo: number; batch: number };
    console.log(
      `# cpu over 4 s: SLO cgroup ${(slo / 1e6).toFixed(2)} s, batch ${(batch / 1e6).toFixed(2)} s`,
    );
    assert.ok(slo > 1e6, `SLO cgroup ran ${slo} us`);
    assert.ok(batch > 0.3e6, `batch was starved: ${batch} us`);
    assert.equal(scenario.stateAfterLoad, "enabled", "watchdog did not eject the scheduler");
  });

  test("nice and SCHED_IDLE hogs yield to nice-0 ones as under the fair class, and still run", () => {
    assert.deepEqual(scenario.weightedExit, [0, 0, 0]);
    const cpu = scenario.weightedCpuUsec as { nice0: number; nice19: number; idle: number };
    console.log(
      `# cpu over 2 s: nice 0 ${(cpu.nice0 / 1e6).toFixed(2)} s, nice 19 ${(cpu.nice19 / 1e6).toFixed(2)} s, SCHED_IDLE ${(cpu.idle / 1e6).toFixed(2)} s`,
    );
    // The kernel's weights give nice 0 about 68x nice 19; ask for a clear margin, not the ratio.
    assert.ok(cpu.nice0 > 8 * cpu.nice19, `nice 0 ran ${cpu.nice0} us, nice 19 ${cpu.nice19} us`);
    assert.ok(cpu.nice0 > 8 * cpu.idle, `nice 0 ran ${cpu.nice0} us, SCHED_IDLE ${cpu.idle} us`);
    assert.ok(cpu.nice19 > 0 && cpu.idle > 0, "a low-weight task was starved");
    assert.equal(scenario.stateAfterWeighted, "enabled", "watchdog did not eject the scheduler");
  });

  test("cpu.weight divides CPU between cgroups as under the fair class, tasks running at attach included", () => {
    const fair = scenario.cgroupWeightsFair as { cpuUsec: number[] };
    const slo = scenario.cgroupWeights as {
      exits: number[];
      cpuUsec: number[];
      windowInsideRun: boolean;
    };
    const changed = scenario.cgroupWeightsChanged as { exits: number[]; cpuUsec: number[] };
    assert.deepEqual(slo.exits, [0, 0, 0]);
    assert.equal(slo.windowInsideRun, true, "the hogs ended before the scx_slo window did");
    assert.deepEqual(changed.exits, [0, 0]);
    const fractions = (cpu: number[]) => cpu.map((c) => c / cpu.reduce((a, b) => a + b, 0));
    const [fairHeavy, , fairBestEffort] = fractions(fair.cpuUsec);
    const [heavy, light, bestEffort] = fractions(slo.cpuUsec);
    const [evenHeavy] = fractions(changed.cpuUsec);
    const pct = (f: number | undefined) => `${(100 * f!).toFixed(1)}%`;
    console.log(
      `# weights 300/100/1 with 2/4/1 hogs: fair ${fair.cpuUsec.map((c) => pct(c / 4e6)).join("/")}, ` +
        `scx_slo ${slo.cpuUsec.map((c) => pct(c / 4e6)).join("/")} of 2 CPUs; ` +
        `heavy at 100: ${changed.cpuUsec.map((c) => pct(c / 4e6)).join("/")}`,
    );
    // By weight the 300 cgroup is owed 3/4 of the machine; by task count it would get 2/7. The fair
    // class itself falls short of 3/4 with this few tasks (55-60% here), so both bounds are wide.
    assert.ok(heavy! > 0.5 && heavy! < 0.85, `heavy got ${pct(heavy)}, fair ${pct(fairHeavy)}`);
    // The setup itself: the fair class does apply the weights (by task count: 29%).
    assert.ok(fairHeavy! > 0.4, `the fair class gave heavy ${pct(fairHeavy)}`);
    assert.ok(light! > 0.15, `light got ${pct(light)}`);
    // Weight 1 against 400: a trickle under either scheduler, but it runs.
    assert.ok(bestEffort! > 0 && bestEffort! < 0.1, `weight 1 got ${pct(bestEffort)}`);
    assert.ok(fairBestEffort! < 0.1);
    // Equal weights after the live change: an even split although heavy has 2 hogs and light 4.
    assert.ok(Math.abs(evenHeavy! - 0.5) < 0.1, `heavy at weight 100 got ${pct(evenHeavy)}`);
    assert.equal(scenario.stateAfterCgroupWeights, "enabled");
  });

  test("a 10 s budget beside busy work still runs before the kernel's 5 s watchdog", () => {
    const long = scenario.longBudget as { exit: number[]; cpuUsec: number; state: string };
    console.log(`# 10 s budget beside 4 hogs: ${(long.cpuUsec / 1e6).toFixed(2)} s of CPU in 7 s`);
    assert.deepEqual(long.exit, [0, 0]);
    assert.equal(long.state, "enabled", "the watchdog ejected the scheduler");
    // Served last, about a slice a second; what matters is that it runs at all.
    assert.ok(long.cpuUsec > 20_000, `the 10 s budget hog ran ${long.cpuUsec} us`);
  });

  test("in-kernel stats show the SLO cgroup's waits, and forced misses are counted and streamed", () => {
    const s = scenario.stats;
    assert.ok(s, "the SLO cgroup has a stats entry");
    assert.ok(s.runs > 100, `runs ${s.runs}`);
    assert.equal(s.histTotal, s.runs, "every measured wait is in the histogram");
    assert.ok(s.waitSumNs > 0);
    assert.ok(s.misses > 0, "3 hogs under a 1 ms budget on 2 CPUs must miss");
    assert.ok(scenario.missEvents > 0, "misses arrive on the ring buffer");
    assert.equal(scenario.missEventSample.budgetNs, 1_000_000);
    assert.ok(scenario.missEventSample.waitNs > 1_000_000);
    console.log(
      `# runs ${s.runs}, misses ${s.misses}, miss events received ${scenario.missEvents}, drops ${scenario.counters.miss_drops}`,
    );
  });

  test("an SLO change applies live, without re-attaching", () => {
    assert.deepEqual(scenario.changed, { budgetNs: 7_000_000, importance: 40 });
    assert.equal(scenario.enableSeqAfterChange, scenario.enableSeqLoaded);
  });

  test("out-of-range values written straight into the map are clamped by the BPF side", () => {
    assert.deepEqual(scenario.bypassed, { budgetNs: 1_000_000, importance: 100 });
  });

  test("removing an SLO cgroup drops its map and stats entries in the kernel", () => {
    assert.deepEqual(scenario.doomed, {
      listedBefore: true,
      listedAfter: false,
      statsAfter: false,
    });
  });

  test("SLOs and counters survive a detach and re-attach", () => {
    assert.deepEqual(scenario.keptAcrossReattach, {
      sloListed: true,
      runsKept: true,
      nrAttachGrew: true,
    });
  });

  test("a standby copy attaches in one step, refuses replaced maps, and drops cleanly", () => {
    const sb = scenario.standby;
    assert.equal(sb.prepared, true);
    assert.equal(sb.attachedDuringPrepare, true, "preparing it leaves the running scheduler alone");
    assert.equal(sb.error, null);
    assert.equal(sb.state, "enabled");
    assert.equal(sb.ops, "scx_slo");
    assert.equal(sb.seqGrew, true);
    assert.equal(sb.sloKept, true, "it attached over the pinned SLO map");
    assert.match(sb.staleError, /standby is stale: the maps at .* were replaced/);
    assert.equal(sb.stateAfterStale, "disabled", "a stale standby attaches nothing");
    assert.equal(sb.closedLeavesRunning, true);
    assert.equal(scenario.pinDirAfterPurge, false, "unload --purge drops every pin and the folder");
    const orphan = scenario.standbyWithoutPins;
    assert.equal(orphan.prepared, false);
    assert.match(
      orphan.error,
      /^no scx_slo map pinned at \/sys\/fs\/bpf\/scx_slo\/\w+: .*load once first$/,
    );
    assert.equal(orphan.pinDirAfter, false, "a standby creates and pins nothing");
    console.log(`# standby attach: ${sb.attachMs} ms (unload to enabled excluded)`);
  });

  test("the scheduler keeps running after the loader and its session exit", () => {
    assert.equal(scenario.stateAfterLoaderExit, "enabled");
    assert.equal(scenario.opsAfterLoaderExit, "scx_slo");
  });

  test("loading as non-root fails with one line naming the cause", () => {
    assert.match(scenario.notRootError, /^scx-slo-loader: error: not root/);
    assert.equal(scenario.notRootError.split("\n").length, 1);
  });

  test("unpinning the link returns every task to the fair class", () => {
    assert.equal(scenario.stateAfterUnload, "disabled");
    assert.ok(scenario.unloadToDisabledMs < 1000, `${scenario.unloadToDisabledMs} ms`);
    assert.ok(scenario.survivorAlive, "a task of the SLO cgroup survived the switch");
    assert.equal(scenario.exitAfterUnload.kind_name, "unregistered");
    assert.match(scenario.exitAfterUnload.reason, /unregistered from user space/);
  });
}
