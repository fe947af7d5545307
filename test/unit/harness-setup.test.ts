// The harness's own errors when the machine is not set up: one line that names the fix.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { isCodePatchingFault, runInVm, VmError } from "../../vm/harness.js";

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

test("only an int3 oops (the emulator racing the kernel's code patching) counts as that fault", () => {
  const int3 = [
    "[   32.577897] Oops: int3: 0000 [#1] SMP NOPTI",
    "[   32.589991] RIP: 0010:sched_tick+0xd6/0x250",
    "[   32.624688] Oops: int3: 0000 [#2] SMP NOPTI",
    "[   32.627423] Kernel panic - not syncing: Fatal exception in interrupt",
  ].join("\n");
  assert.equal(isCodePatchingFault(int3), true);
  assert.equal(isCodePatchingFault(int3 + "\n[ 33.1] Oops: general protection fault"), false);
  assert.equal(
    isCodePatchingFault("[ 1.0] BUG: kernel NULL pointer dereference\n[ 1.0] Oops: int3"),
    false,
  );
  assert.equal(
    isCodePatchingFault("[ 9.9] Kernel panic - not syncing: sysrq triggered crash"),
    false,
  );
});
