// A few minutes of the soak (bench/soak.ts; `make soak-long` runs it for hours): SLO cgroups with
// processes churning every 2 s, the config rewritten good and bad in turn, the agent killed with
// SIGKILL and the scheduler forced out by the kernel (SysRq-S) twice or more, a critical workload
// with an SLO against hogs throughout. The checks are the record's (bench/soak-check.ts); the
// timing ones are wide here, since a shared 2-core host under emulation makes them noise.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CI_LIMITS, judge, verdictTable } from "../../bench/soak-check.js";
import { runSoak, SHORT } from "../../bench/soak.js";

test("soak: churn, config rewrites, agent kills and force-outs at once, nothing lost", async () => {
  const { vm, run } = await runSoak(SHORT);
  const verdicts = judge(run, CI_LIMITS);
  console.log(
    verdictTable(verdicts)
      .split("\n")
      .map((l) => `# ${l}`)
      .join("\n"),
  );
  assert.equal(vm.exitCode, 0, `${vm.output}\nrun folder: ${vm.outDir}`);
  // Windows run back to back to the end (a slow guest makes fewer of them, never a gap).
  assert.ok(run.samples.length >= 4, `${run.samples.length} samples`);
  assert.ok(run.samples.at(-1)!.t_s >= SHORT.durationS, "the samples cover the run");
  for (const v of verdicts) assert.ok(v.pass, `${v.name}: ${v.value} (target ${v.target})`);
  // The config really alternated and the agent kept its rules through the bad ones.
  assert.ok(run.events.some((e) => e.what.includes("(bad)")));
});
