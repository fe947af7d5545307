// cpu.max under scx_slo, in the sched_ext VM: with a sched_ext scheduler attached the kernel no
// longer enforces CPU limits itself (Kubernetes sets them for every container with a CPU limit), so
// scx_slo does (bpf/cpu_max.bpf.h). Compared with the kernel's own enforcement in the same boot.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { runInVm } from "../../vm/harness.js";

type Scenario = Record<string, number | string>;
let s: Scenario;
/** The measuring window in ms (each figure is CPU ms used in one window). */
const w = () => Number(s.windowMs);

test("cpu.max scenario runs in the VM", async () => {
  const r = await runInVm({
    command: "node dist/test/vm/guest/cpu-max-scenario.js",
    timeoutMs: 150_000,
  });
  s = JSON.parse(readFileSync(path.join(r.outDir, "scenario.json"), "utf8")) as Scenario;
  assert.equal(r.exitCode, 0, r.output);
  console.log(
    `# CPU ms per ${w() / 1000} s window, 2 spinners: limit 20% -> fair ${s.fair20}, scx_slo ${s.scx20}; ` +
      `10% -> ${s.scx10}; 20% with an SLO and 4 hogs -> ${s.scxSlo20WithHogs} (hogs ${s.batchMsMeanwhile}); ` +
      `max -> ${s.scxUnlimited}; ${s.throttled} tasks held`,
  );
});

const within = (got: number, want: number, tol: number, what: string) =>
  assert.ok(
    Math.abs(got - want) <= want * tol,
    `${what}: ${got} ms, expected ${want} ms +-${tol * 100}%`,
  );

test("scx_slo holds a cgroup to cpu.max as the fair class does (0.2 CPU, two spinning threads)", () => {
  assert.equal(s.ops, "scx_slo");
  within(Number(s.fair20), 0.2 * w(), 0.1, "the kernel's own enforcement");
  within(Number(s.scx20), 0.2 * w(), 0.1, "scx_slo");
  assert.ok(Number(s.throttled) > 0);
});

test("a cpu.max change applies live", () => {
  within(Number(s.scx10), 0.1 * w(), 0.15, "after 20% -> 10%");
  assert.ok(Number(s.scxUnlimited) > 1.5 * w(), `"max" lifts the limit: ${s.scxUnlimited} ms`);
});

test("an SLO cgroup under load still gets no more than its limit; the rest goes to the others", () => {
  within(Number(s.scxSlo20WithHogs), 0.2 * w(), 0.1, "SLO cgroup limited to 20%");
  // The rest is 1.8 CPUs. Quiet runs have given the hogs 1.57 of them: up to an eighth of the rest
  // is lost while the limited cgroup's tasks are held (docs/reliability.md, not yet explained).
  // Under 1.5 CPUs would be a regression.
  assert.ok(Number(s.batchMsMeanwhile) > 1.5 * w(), `hogs got ${s.batchMsMeanwhile} ms`);
  assert.equal(s.stateAtEnd, "enabled", "no watchdog ejection while tasks were held");
});

test("a kernel without ops.cgroup_set_bandwidth (imitated on 7.3): the loader drops it, the scheduler loads, the limit read at attach holds", () => {
  assert.equal(s.withoutSetBandwidthOps, "scx_slo");
  within(Number(s.withoutSetBandwidth20), 0.2 * w(), 0.1, "limit read at attach");
});
