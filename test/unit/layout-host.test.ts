// Layout identities of the builds, read on this host (no sched_ext needed: the loader computes an
// object's identity from its BTF without loading it). The VM side is test/vm/upgrade.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PROJECT_ROOT } from "../../vm/harness.js";
import { SchedulerStatusSchema } from "../../src/sched/replies.js";

const build = path.join(PROJECT_ROOT, "build");
const noPins = mkdtempSync(path.join(tmpdir(), "scx-slo-nopins-"));

function layoutOf(loader: string, obj: string) {
  const r = spawnSync(loader, ["status", "--pin-dir", noPins, "--obj", obj], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const st = SchedulerStatusSchema.parse(JSON.parse(r.stdout));
  assert.ok(st.layout);
  assert.equal(st.layout.pinned, null, "nothing pinned");
  assert.equal(st.layout.compatible, null, "nothing to compare with");
  assert.ok(st.layout.object);
  return st.layout.object;
}

test("every build says its layout; only a change in what is pinned changes it", () => {
  const a = layoutOf(`${build}/scx-slo-loader`, `${build}/scx_slo.bpf.o`);
  const again = layoutOf(`${build}/scx-slo-loader`, `${build}/scx_slo.bpf.o`);
  const testHooks = layoutOf(`${build}/scx-slo-loader`, `${build}/scx_slo_test.bpf.o`);
  const b = layoutOf(`${build}/layout-b/scx-slo-loader`, `${build}/layout-b/scx_slo.bpf.o`);
  const abi = JSON.parse(
    spawnSync(`${build}/scx-slo-loader`, ["abi"], { encoding: "utf8" }).stdout,
  ) as { abi_version: number };
  assert.match(a.hash, /^[0-9a-f]{16}$/);
  assert.deepEqual(again, a, "deterministic");
  assert.equal(a.abi, abi.abi_version);
  assert.deepEqual(testHooks, a, "test hooks change code and .rodata, not the pinned maps");
  assert.equal(b.abi, a.abi);
  assert.notEqual(b.hash, a.hash, "a field order change of the same size is told apart");
});
