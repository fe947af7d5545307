// The reconcile diff as a pure function, and reconcile() against an in-memory SLO map.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { diffSlos, reconcile, type SloMapClient } from "../../src/agent/reconcile.js";
import type { SloEntry } from "../../src/sched/loader.js";
import type { ResolvedSlo } from "../../src/slo/model.js";

function slo(id: number, budgetMs: number, importance = 50): ResolvedSlo {
  return {
    cgroupId: BigInt(id),
    cgroupPath: `/cg${id}`,
    budgetNs: budgetMs * 1e6,
    importance,
    labels: {},
    origin: { source: "test" },
  };
}
function entry(id: number, budgetMs: number, importance = 50): SloEntry {
  return { cgroupId: BigInt(id), budgetNs: budgetMs * 1e6, importance };
}

test("diff: new and changed entries are set, gone ones deleted, equal ones left alone", () => {
  const d = diffSlos(
    [slo(1, 10), slo(2, 20), slo(3, 30, 90), slo(4, 40)],
    [entry(1, 10), entry(2, 25), entry(3, 30, 50), entry(5, 50)],
  );
  assert.deepEqual(d.set, [entry(2, 20), entry(3, 30, 90), entry(4, 40)]);
  assert.deepEqual(d.del, [5n]);
  assert.equal(d.unchanged, 1);
});

test("diff: an empty desired set clears the map; an equal one changes nothing", () => {
  assert.deepEqual(diffSlos([], [entry(1, 10), entry(2, 20)]), {
    set: [],
    del: [1n, 2n],
    unchanged: 0,
  });
  assert.deepEqual(diffSlos([slo(1, 10)], [entry(1, 10)]), { set: [], del: [], unchanged: 1 });
});

test("diff: fractional budgets compare as the whole nanoseconds the map stores", () => {
  const s = { ...slo(1, 1), budgetNs: 1_500_000.4 };
  assert.deepEqual(diffSlos([s], [{ cgroupId: 1n, budgetNs: 1_500_000, importance: 50 }]).set, []);
});

class FakeMap implements SloMapClient {
  map = new Map<bigint, SloEntry>();
  calls: string[] = [];
  async list() {
    this.calls.push("list");
    return [...this.map.values()];
  }
  async set(entries: readonly SloEntry[]) {
    this.calls.push(`set ${entries.length}`);
    for (const e of entries) this.map.set(e.cgroupId, e);
  }
  async del(ids: readonly bigint[]) {
    this.calls.push(`del ${ids.length}`);
    for (const id of ids) this.map.delete(id);
  }
}

test("reconcile: applies only the difference, deletes before sets, second run is a no-op", async () => {
  const m = new FakeMap();
  m.map.set(9n, entry(9, 9));
  const r1 = await reconcile(m, [slo(1, 10), slo(2, 20)]);
  assert.deepEqual(m.calls, ["list", "del 1", "set 2"]);
  assert.equal(r1.set, 2);
  assert.equal(r1.deleted, 1);
  assert.equal(r1.entries, 2);
  m.calls = [];
  const r2 = await reconcile(m, [slo(1, 10), slo(2, 20)]);
  assert.deepEqual(m.calls, ["list"]);
  assert.deepEqual([r2.set, r2.deleted, r2.unchanged], [0, 0, 2]);
});

test("reconcile (property): afterwards the map holds exactly the desired SLOs", async () => {
  const arbEntries = fc.uniqueArray(
    fc.record({
      id: fc.integer({ min: 1, max: 40 }),
      b: fc.integer({ min: 1, max: 5 }),
      i: fc.integer({ min: 1, max: 3 }),
    }),
    { selector: (e) => e.id, maxLength: 20 },
  );
  await fc.assert(
    fc.asyncProperty(arbEntries, arbEntries, async (before, want) => {
      const m = new FakeMap();
      for (const e of before) m.map.set(BigInt(e.id), entry(e.id, e.b, e.i));
      const desired = want.map((e) => slo(e.id, e.b, e.i));
      const r = await reconcile(m, desired);
      const after = [...m.map.values()].sort((a, b) => Number(a.cgroupId - b.cgroupId));
      const expected = desired
        .map((d) => ({ cgroupId: d.cgroupId, budgetNs: d.budgetNs, importance: d.importance }))
        .sort((a, b) => Number(a.cgroupId - b.cgroupId));
      assert.deepEqual(after, expected);
      assert.equal(r.entries, desired.length);
      const changed = want.filter((w) => {
        const b = before.find((x) => x.id === w.id);
        return !b || b.b !== w.b || b.i !== w.i;
      }).length;
      assert.equal(r.set, changed);
    }),
  );
});
