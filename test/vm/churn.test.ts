// Churn: 1000 SLO cgroups with processes in them created and deleted (in waves of 50) under a
// running agent. Map entries return to the baseline, the agent's memory stays flat, and the
// kernel logs no error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { runInVm } from "../../vm/harness.js";

test("1000 SLO cgroups come and go: no map leak, flat agent RSS, clean kernel log", async () => {
  const r = await runInVm({
    command: "node dist/test/vm/guest/churn-scenario.js",
    timeoutMs: 300_000,
  });
  assert.equal(r.exitCode, 0, r.output);
  const s = JSON.parse(readFileSync(path.join(r.outDir, "scenario.json"), "utf8")) as Record<
    string,
    number
  >;
  console.log(
    `# churn: ${s.cycles} cgroups in waves of 50, slowest wave ${s.waveMsMax} ms; map ${s.baselineEntries} -> ${s.finalEntries} entries; agent RSS ${(s.rssStartKiB! / 1024).toFixed(1)} -> ${(s.rssEndKiB! / 1024).toFixed(1)} MiB`,
  );
  assert.equal(s.cycles, 1000);
  assert.equal(s.failedWaves, 0, "every wave was applied and removed within 10 s");
  assert.equal(s.finalEntries, s.baselineEntries);
  assert.ok(s.rssEndKiB! < s.rssStartKiB! + 16 * 1024, "RSS grew by more than 16 MiB");
  assert.doesNotMatch(r.dmesg, /sched_ext: .*(error|stall)|BUG|WARNING/);
});
