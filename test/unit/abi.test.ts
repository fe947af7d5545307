// The contract between the BPF side (bpf/scx_slo.h, as the loader was built with it) and the
// TypeScript side: every constant both sides use must agree, and every counter must have a name.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_GLOB_DEPTH } from "../../src/cgroup/resolve.js";
import {
  HIST_BUCKETS,
  HIST_MIN_SHIFT,
  HIST_OCTAVES,
  HIST_SUB_BITS,
} from "../../src/sched/histogram.js";
import { defaultLoaderPaths, readAbi } from "../../src/sched/loader.js";
import { SCHEDULER_NAME } from "../../src/sched/scx-sysfs.js";
import {
  BUDGET_MAX_MS,
  BUDGET_MIN_MS,
  IMPORTANCE_MAX,
  IMPORTANCE_MIN,
  MAX_SLO_ENTRIES,
  NS_PER_MS,
} from "../../src/slo/model.js";

test("the loader's constants are the ones the TypeScript side uses", async () => {
  const abi = await readAbi(defaultLoaderPaths());
  assert.equal(abi.name, SCHEDULER_NAME);
  assert.equal(abi.budget_min_ns, BUDGET_MIN_MS * NS_PER_MS);
  assert.equal(abi.budget_max_ns, BUDGET_MAX_MS * NS_PER_MS);
  assert.equal(abi.importance_min, IMPORTANCE_MIN);
  assert.equal(abi.importance_max, IMPORTANCE_MAX);
  assert.equal(abi.slo_map_max_entries, MAX_SLO_ENTRIES);
  assert.equal(abi.max_cgroup_depth, MAX_GLOB_DEPTH);
  assert.equal(abi.hist_min_shift, HIST_MIN_SHIFT);
  assert.equal(abi.hist_sub_bits, HIST_SUB_BITS);
  assert.equal(abi.hist_octaves, HIST_OCTAVES);
  assert.equal(abi.hist_buckets, HIST_BUCKETS);
});

test("every scheduler counter has a unique name and Prometheus metric", async () => {
  const { counters } = await readAbi(defaultLoaderPaths());
  assert.ok(counters.length > 0);
  assert.equal(new Set(counters.map((c) => c.name)).size, counters.length);
  assert.equal(new Set(counters.map((c) => c.metric)).size, counters.length);
  for (const c of counters) {
    assert.match(c.name, /^[a-z][a-z0-9_]*$/);
    assert.match(
      c.metric,
      /^[a-z][a-z0-9_]*_total$/,
      `${c.name}: a counter's metric ends in _total`,
    );
    assert.ok(c.help.length > 10, `${c.name} has help text`);
  }
});
