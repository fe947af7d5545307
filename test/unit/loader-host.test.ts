// The loader on this host, whose kernel has no sched_ext: the stock scheduler stays and the
// loader says why in one line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { defaultLoaderPaths, LoaderError } from "../../src/sched/loader.js";
import { StandbyScheduler } from "../../src/sched/standby.js";

const paths = defaultLoaderPaths();
const hostHasSchedExt = existsSync("/sys/kernel/sched_ext/state");

test(
  "load on a kernel without sched_ext: one line naming the kernel requirement",
  { skip: hostHasSchedExt && "this host has sched_ext" },
  () => {
    const r = spawnSync(paths.binary, ["load"], { encoding: "utf8" });
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /no sched_ext .* needs Linux >= 6\.12 with CONFIG_SCHED_CLASS_EXT=y/);
  },
);

test(
  "status on a kernel without sched_ext reports it as unsupported",
  { skip: hostHasSchedExt && "this host has sched_ext" },
  () => {
    const r = spawnSync(paths.binary, ["status", "--pin-dir", "/nonexistent"], {
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    const status = JSON.parse(r.stdout) as { sched_ext: boolean; state: string; attached: boolean };
    assert.deepEqual(
      [status.sched_ext, status.state, status.attached],
      [false, "unsupported", false],
    );
  },
);

test(
  "a standby copy on a kernel without sched_ext is never ready and says why",
  { skip: hostHasSchedExt && "this host has sched_ext" },
  async () => {
    const standby = new StandbyScheduler(paths);
    assert.equal(await standby.prepared, false);
    assert.equal(standby.ready, false);
    assert.match(standby.error, /^this kernel has no sched_ext/);
    await assert.rejects(standby.attach(), (err: Error) => {
      assert.ok(err instanceof LoaderError);
      assert.match(err.message, /standby not ready: this kernel has no sched_ext/);
      return true;
    });
  },
);

test("a standby copy without the loader binary is refused at once", () => {
  assert.throws(
    () => new StandbyScheduler({ ...paths, binary: "/nonexistent/scx-slo-loader" }),
    /scx-slo-loader is missing: run `make build`/,
  );
});

test("unknown command and bad option values exit with usage or a one-line error", () => {
  assert.equal(spawnSync(paths.binary, ["frobnicate"]).status, 2);
  const r = spawnSync(paths.binary, ["load", "--default-budget-ms", "0"], { encoding: "utf8" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--default-budget-ms must be 1\.\.10000, got '0'/);
});
