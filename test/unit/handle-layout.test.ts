// The scheduler handle gives out no serve session for pins it has not found to be of its own
// layout: here a pin folder holding a file named like the SLO map but no layout identity, which
// the real loader (run on this host, no sched_ext needed for `status`) calls another build's.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { SchedulerHandle } from "../../src/sched/handle.js";
import { defaultLoaderPaths } from "../../src/sched/loader.js";

test("no session for pins of an unknown layout; the loader is asked once and says why", async () => {
  const pinDir = mkdtempSync(path.join(tmpdir(), "scx-pins-"));
  writeFileSync(path.join(pinDir, "slo_map"), "");
  const warnings: string[] = [];
  const handle = new SchedulerHandle({
    paths: { ...defaultLoaderPaths(), pinDir },
    log: { debug: () => {}, info: () => {}, warn: (m) => warnings.push(m), error: () => {} },
  });
  let checked = false;
  handle.on("pins-checked", () => (checked = true));
  try {
    assert.equal(handle.mapSession(), null);
    const end = Date.now() + 10_000;
    while (warnings.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    assert.match(warnings[0] ?? "", /pinned maps are another build's .* not written until/);
    assert.equal(handle.mapSession(), null, "still none");
    assert.equal(checked, false);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(warnings.length, 1, "said once for the same pins");
  } finally {
    await handle.close();
    rmSync(pinDir, { recursive: true });
  }
});
