// Scheduler supervision against a fake kernel: adopt without reload, re-attach after an exit,
// back-off, safe mode after repeated failures, safe mode on demand, unsupported kernels.
import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffDelay, Supervisor, type SchedulerControl } from "../../src/agent/supervisor.js";
import type { SafeModeFlag } from "../../src/agent/safe-mode.js";
import type { ScxSysfs } from "../../src/sched/scx-sysfs.js";

class FakeKernel implements SchedulerControl {
  supported = true;
  attached = false;
  enableSeq = 0;
  loads = 0;
  unloads = 0;
  failLoads = 0;
  kernelState(): ScxSysfs {
    if (!this.supported) return { supported: false, state: "unsupported", ops: null, enableSeq: 0 };
    return {
      supported: true,
      state: this.attached ? "enabled" : "disabled",
      ops: this.attached ? "scx_slo" : null,
      enableSeq: this.enableSeq,
    };
  }
  linkPinned() {
    return this.attached;
  }
  async attach() {
    this.loads++;
    if (this.failLoads > 0) {
      this.failLoads--;
      throw new Error("verifier said no");
    }
    this.attached = true;
    this.enableSeq++;
  }
  async unload() {
    this.unloads++;
    this.attached = false;
  }
  async lastExit() {
    return { kind: 1024, kind_name: "error", code: 0, reason: "runnable task stall", msg: "" };
  }
}

function setup(kernel: FakeKernel, over: { maxFailures?: number } = {}) {
  let flag: SafeModeFlag = { on: false, reason: "" };
  const persisted: string[] = [];
  const sup = new Supervisor({
    control: kernel,
    safeMode: () => flag,
    persistSafeMode: (r) => {
      persisted.push(r);
      flag = { on: true, reason: r };
    },
    pollMs: 5,
    fastPollMs: 1,
    backoffInitialMs: 2,
    backoffMaxMs: 20,
    ...over,
  });
  return {
    sup,
    persisted,
    setFlag: (on: boolean) => (flag = { on, reason: on ? "test" : "" }),
  };
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 2));
  }
}

test("backoff: 0 before the first failure, then doubling to the cap", () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelay(n, 100, 5000)),
    [0, 100, 200, 400, 800, 1600, 3200, 5000, 5000],
  );
});

test("an attached scheduler is adopted: no load, no unload", async () => {
  const k = new FakeKernel();
  k.attached = true;
  k.enableSeq = 7;
  const { sup } = setup(k);
  let how = "";
  sup.on("attached", (h: string) => (how = h));
  await sup.start();
  await sup.stop();
  assert.equal(sup.status().state, "attached");
  assert.equal(sup.status().adopted, true);
  assert.equal(how, "adopted");
  assert.equal(k.loads, 0);
  assert.equal(k.enableSeq, 7);
});

test("a detached scheduler is loaded at start and re-attached after an exit", async () => {
  const k = new FakeKernel();
  const { sup } = setup(k);
  await sup.start();
  await until(() => sup.status().state === "attached");
  assert.equal(k.loads, 1);
  assert.equal(sup.status().adopted, false);
  k.attached = false; // the kernel kicked it out
  await until(() => sup.status().reattaches === 1 && sup.status().state === "attached");
  assert.equal(k.loads, 2);
  assert.equal(sup.status().unplannedDetaches, 1);
  assert.equal(sup.status().lastExit?.reason, "runnable task stall");
  await sup.stop();
});

test("repeated failures within the window: safe mode instead of flapping, persisted", async () => {
  const k = new FakeKernel();
  const { sup, persisted } = setup(k, { maxFailures: 3 });
  k.failLoads = 100;
  await sup.start();
  await until(() => sup.status().state === "safe_mode");
  assert.equal(k.loads, 3);
  assert.equal(persisted.length, 1);
  assert.match(
    persisted[0]!,
    /^auto: 3 scheduler failures within 60 s \(last: attach failed: verifier said no\)/,
  );
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(k.loads, 3, "no more attempts while in safe mode");
  await sup.stop();
});

test("safe mode on demand unloads and stays detached; off re-attaches", async () => {
  const k = new FakeKernel();
  const { sup, setFlag } = setup(k);
  await sup.start();
  await until(() => sup.status().state === "attached");
  setFlag(true);
  await until(() => sup.status().state === "safe_mode");
  assert.equal(k.attached, false);
  assert.equal(k.unloads, 1);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(k.attached, false, "stays detached");
  assert.equal(sup.status().unplannedDetaches, 0, "a requested detach is not a failure");
  setFlag(false);
  await until(() => sup.status().state === "attached");
  assert.equal(k.loads, 2);
  await sup.stop();
});

test("a kernel without sched_ext: unsupported, and nothing is loaded", async () => {
  const k = new FakeKernel();
  k.supported = false;
  const { sup } = setup(k);
  await sup.start();
  assert.equal(sup.status().state, "unsupported");
  assert.equal(k.loads, 0);
  await sup.stop();
});

test("a running scheduler of another build is handed over at start, not adopted", async () => {
  const k = new (class extends FakeKernel {
    adopts = 0;
    async adopt() {
      this.adopts++;
      this.enableSeq++; // the new build attached in place of the old
      return true;
    }
  })();
  k.attached = true;
  k.enableSeq = 1;
  const { sup } = setup(k);
  await sup.start();
  await until(() => sup.status().state === "attached");
  const st = sup.status();
  assert.equal(k.adopts, 1);
  assert.equal(k.loads, 0, "the hand-over attached it; no second load");
  assert.equal(st.adopted, false);
  assert.match(st.reason, /handed over/);
  assert.equal(st.unplannedDetaches, 0, "a hand-over is not a failure");
  await sup.stop();
});

test("a compatible running scheduler is adopted as it runs; a failed hand-over keeps it", async () => {
  for (const outcome of ["kept", "failed"] as const) {
    const k = new (class extends FakeKernel {
      async adopt(): Promise<boolean> {
        if (outcome === "failed") throw new Error("the kernel rejected the object");
        return false;
      }
    })();
    k.attached = true;
    k.enableSeq = 4;
    const { sup } = setup(k);
    await sup.start();
    await until(() => sup.status().state === "attached");
    const st = sup.status();
    assert.equal(st.adopted, true, outcome);
    assert.equal(k.enableSeq, 4, `${outcome}: no re-attach`);
    if (outcome === "failed")
      assert.match(st.lastError ?? "", /adopting the running scx_slo failed/);
    else assert.equal(st.lastError, null);
    await sup.stop();
  }
});
