// The scheduler's arithmetic (bpf/policy.h) compiled natively and run on the host, and the
// TypeScript histogram layout checked against the C one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { findProjectRoot } from "../../src/util/project-root.js";
import { bucketUpperNs, HIST_BUCKETS } from "../../src/sched/histogram.js";

const root = findProjectRoot();
const binary = path.join(mkdtempSync(path.join(tmpdir(), "scx-policy-")), "policy_test");
execFileSync("gcc", [
  "-O2",
  "-Wall",
  "-Werror",
  "-o",
  binary,
  path.join(root, "test/native/policy_test.c"),
]);

test("policy.h: deadline, charge, clamps, slice and histogram checks pass natively", () => {
  const out = execFileSync(binary, { encoding: "utf8" });
  const m = /policy: (\d+) passed, (\d+) failed/.exec(out);
  assert.ok(m, out);
  assert.equal(Number(m[2]), 0);
  assert.ok(Number(m[1]) > 100, `only ${m[1]} checks ran`);
});

test("histogram bucket bounds agree between bpf/policy.h and src/sched/histogram.ts", () => {
  const bounds = JSON.parse(execFileSync(binary, ["--bounds"], { encoding: "utf8" })) as number[];
  assert.equal(bounds.length, HIST_BUCKETS - 1);
  bounds.forEach((b, i) => assert.equal(bucketUpperNs(i), b, `bucket ${i}`));
  assert.equal(bucketUpperNs(HIST_BUCKETS - 1), Infinity);
});
