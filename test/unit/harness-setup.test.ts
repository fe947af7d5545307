// The harness's own errors when the machine is not set up: one line that names the fix.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { runInVm, VmError } from "../../vm/harness.js";

test("missing qemu: error names `make setup`", async () => {
  const saved = process.env.PATH;
  process.env.PATH = "/nonexistent";
  try {
    await assert.rejects(runInVm({ command: "true" }), (err: unknown) => {
      assert.ok(err instanceof VmError);
      assert.match(err.message, /qemu-system-x86_64 not found: run `make setup`/);
      return true;
    });
  } finally {
    process.env.PATH = saved;
  }
});

test("missing kernel: error names `make setup`", async () => {
  const saved = process.env.SCX_SLO_CACHE;
  process.env.SCX_SLO_CACHE = mkdtempSync(path.join(tmpdir(), "scx-empty-cache-"));
  try {
    await assert.rejects(runInVm({ command: "true" }), (err: unknown) => {
      assert.ok(err instanceof VmError);
      assert.match(err.message, /no sched_ext kernel .* run `make setup`/);
      return true;
    });
  } finally {
    if (saved === undefined) delete process.env.SCX_SLO_CACHE;
    else process.env.SCX_SLO_CACHE = saved;
  }
});
