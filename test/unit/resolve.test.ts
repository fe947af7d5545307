// Rule resolution against real directory trees: ids are inodes, globs match per component,
// missing cgroups warn and resolve later, and explicit paths beat globs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  cgroupPathsById,
  expandGlob,
  globComponentRegExp,
  IncrementalResolver,
  resolveRules,
} from "../../src/cgroup/resolve.js";
import type { SloRule } from "../../src/slo/model.js";

function tree(dirs: string[]): string {
  const root = mkdtempSync(path.join(tmpdir(), "scx-resolve-"));
  for (const d of dirs) mkdirSync(path.join(root, d), { recursive: true });
  // cgroupfs has files beside the directories; globs must skip them.
  writeFileSync(path.join(root, "cgroup.procs"), "");
  return root;
}

function ino(root: string, p: string): bigint {
  return statSync(path.join(root, p), { bigint: true }).ino;
}

let line = 0;
function pathRule(p: string, budgetMs = 10, importance = 50): SloRule {
  return {
    match: { kind: "path", path: p },
    budgetNs: budgetMs * 1e6,
    importance,
    labels: {},
    origin: { source: `file:test:${++line}` },
  };
}
function globRule(pattern: string, budgetMs = 10, importance = 50): SloRule {
  return {
    match: { kind: "glob", pattern },
    budgetNs: budgetMs * 1e6,
    importance,
    labels: {},
    origin: { source: `file:test:${++line}` },
  };
}

test("a path rule resolves to its directory's inode; labels and origin carry over", () => {
  const root = tree(["kubepods/critical/payment-api"]);
  try {
    const rule = {
      ...pathRule("/kubepods/critical/payment-api", 50, 90),
      labels: { namespace: "shop", pod: "api" },
    };
    const r = resolveRules([rule], { root });
    assert.deepEqual(r.warnings, []);
    assert.equal(r.slos.length, 1);
    const s = r.slos[0]!;
    assert.equal(s.cgroupId, ino(root, "kubepods/critical/payment-api"));
    assert.equal(s.cgroupPath, "/kubepods/critical/payment-api");
    assert.equal(s.budgetNs, 50e6);
    assert.equal(s.importance, 90);
    assert.deepEqual(s.labels, { namespace: "shop", pod: "api" });
    assert.equal(s.origin.source, rule.origin.source);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("a missing cgroup warns, resolves to nothing, and is picked up once created", () => {
  const root = tree(["system.slice"]);
  try {
    const rules = [pathRule("/system.slice/sshd.service"), globRule("/kubepods/burstable/*")];
    const first = resolveRules(rules, { root });
    assert.equal(first.slos.length, 0);
    assert.equal(first.unresolved, 2);
    assert.match(
      first.warnings[0]!,
      /file:test:\d+: cgroup \/system.slice\/sshd.service does not exist/,
    );
    assert.match(first.warnings[1]!, /glob \/kubepods\/burstable\/\* matches no cgroup/);
    mkdirSync(path.join(root, "system.slice/sshd.service"));
    mkdirSync(path.join(root, "kubepods/burstable/pod1"), { recursive: true });
    const second = resolveRules(rules, { root });
    assert.deepEqual(second.warnings, []);
    assert.deepEqual(
      second.slos.map((s) => s.cgroupPath),
      ["/system.slice/sshd.service", "/kubepods/burstable/pod1"],
    );
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("globs: * ? and [...] match within one component, only directories, sorted", () => {
  const root = tree(["k/pod-a", "k/pod-b", "k/pod-cc", "k/other", "k/pod-a/inner", "x/pod-z"]);
  writeFileSync(path.join(root, "k", "pod-file"), "");
  try {
    assert.deepEqual(expandGlob("/k/pod-*", root).paths, ["/k/pod-a", "/k/pod-b", "/k/pod-cc"]);
    assert.deepEqual(expandGlob("/k/pod-?", root).paths, ["/k/pod-a", "/k/pod-b"]);
    assert.deepEqual(expandGlob("/k/pod-[ab]", root).paths, ["/k/pod-a", "/k/pod-b"]);
    assert.deepEqual(expandGlob("/k/pod-[!a]", root).paths, ["/k/pod-b"]);
    assert.deepEqual(expandGlob("/*/pod-*", root).paths, [
      "/k/pod-a",
      "/k/pod-b",
      "/k/pod-cc",
      "/x/pod-z",
    ]);
    assert.deepEqual(expandGlob("/k/*/inner", root).paths, ["/k/pod-a/inner"]);
    assert.deepEqual(expandGlob("/nothing/*", root).paths, []);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("glob component syntax: classes, negation, a leading ] and escapes", () => {
  assert.ok(globComponentRegExp("a*").test("abc"));
  assert.ok(!globComponentRegExp("a*").test("ba"));
  assert.ok(globComponentRegExp("[]x]").test("]"));
  assert.ok(globComponentRegExp("[^x]").test("y"));
  assert.ok(!globComponentRegExp("[^x]").test("x"));
  assert.ok(globComponentRegExp("a\\*").test("a*"));
  assert.ok(!globComponentRegExp("a\\*").test("ab"));
  assert.ok(globComponentRegExp("a.b").test("a.b"));
  assert.ok(!globComponentRegExp("a.b").test("axb"));
  assert.ok(globComponentRegExp("[a-c]1").test("b1"));
});

test("an explicit path beats a glob whatever the order; between globs the first rule wins", () => {
  const root = tree(["kubepods/burstable/pod1", "kubepods/burstable/pod2"]);
  try {
    const rules = [
      globRule("/kubepods/burstable/*", 200, 30),
      globRule("/kubepods/*/pod2", 100, 40),
      pathRule("/kubepods/burstable/pod1", 50, 90),
      pathRule("/kubepods/burstable/pod1", 70, 70),
    ];
    const r = resolveRules(rules, { root });
    const byPath = new Map(r.slos.map((s) => [s.cgroupPath, s]));
    assert.equal(r.slos.length, 2);
    assert.equal(byPath.get("/kubepods/burstable/pod1")!.budgetNs, 50e6, "first explicit path");
    assert.equal(byPath.get("/kubepods/burstable/pod2")!.budgetNs, 200e6, "first glob");
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("depth limit and map capacity", () => {
  const root = tree(["a/b/c", "m/1", "m/2", "m/3"]);
  try {
    const deep = resolveRules([globRule("/a/*/c")], { root, maxDepth: 2 });
    assert.equal(deep.slos.length, 0);
    assert.match(deep.warnings[0]!, /3 levels deep, deeper than the scheduler's limit of 2/);
    const rule = globRule("/m/*");
    const capped = resolveRules([rule], { root, maxEntries: 2 });
    assert.deepEqual(
      capped.slos.map((s) => s.cgroupPath),
      ["/m/1", "/m/2"],
    );
    assert.deepEqual(capped.leftOut, [
      { cgroupPath: "/m/3", importance: 50, budgetNs: 10e6, origin: rule.origin },
    ]);
    assert.deepEqual(resolveRules([rule], { root, maxEntries: 3 }).leftOut, []);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("over capacity: the most important cgroups are kept whatever the rule order", () => {
  const pods = Array.from({ length: 5 }, (_, i) => `kubepods/burstable/pod${i}`);
  const root = tree([...pods, "a"]);
  try {
    const broad = globRule("/kubepods/burstable/*", 200, 30);
    const critical = pathRule("/a", 50, 90);
    for (const rules of [
      [broad, critical],
      [critical, broad],
    ]) {
      const r = resolveRules(rules, { root, maxEntries: 3 });
      assert.equal(r.slos.length, 3);
      assert.ok(
        r.slos.some((s) => s.cgroupPath === "/a"),
        `order ${rules.map((x) => x.origin.source).join(",")}`,
      );
      // Every cgroup left out is named, with the rule that named it.
      assert.deepEqual(
        r.leftOut.map((l) => [l.cgroupPath, l.origin.source, l.importance]),
        [
          ["/kubepods/burstable/pod2", broad.origin.source, 30],
          ["/kubepods/burstable/pod3", broad.origin.source, 30],
          ["/kubepods/burstable/pod4", broad.origin.source, 30],
        ],
      );
      // Kept entries stay in rule order, then path order.
      const kept = r.slos.map((s) => s.cgroupPath);
      const expected = ["/kubepods/burstable/pod0", "/kubepods/burstable/pod1"];
      assert.deepEqual(kept, rules[0] === broad ? [...expected, "/a"] : ["/a", ...expected]);
    }
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("over capacity, equal importance: explicit path, then lower budget, then rule order, then path", () => {
  const root = tree(["g/1", "g/2", "p", "q", "r", "s/1", "s/2"]);
  try {
    const rules = [
      globRule("/g/*", 10, 50), // glob: after every explicit path of its importance
      pathRule("/p", 20, 50), // explicit, budget 20: after /q and /r
      pathRule("/q", 5, 50), // explicit, lowest budget: first
      pathRule("/r", 20, 50), // like /p, later in the file: after /p
      globRule("/s/*", 10, 50), // like /g/*, later in the file: after both of /g/*
    ];
    const order = (n: number) =>
      resolveRules(rules, { root, maxEntries: n })
        .slos.map((s) => s.cgroupPath)
        .sort();
    assert.deepEqual(order(1), ["/q"]);
    assert.deepEqual(order(2), ["/p", "/q"]);
    assert.deepEqual(order(3), ["/p", "/q", "/r"]);
    assert.deepEqual(order(4), ["/g/1", "/p", "/q", "/r"]);
    assert.deepEqual(order(5), ["/g/1", "/g/2", "/p", "/q", "/r"]);
    assert.deepEqual(order(6), ["/g/1", "/g/2", "/p", "/q", "/r", "/s/1"]);
    const r = resolveRules(rules, { root, maxEntries: 2 });
    assert.deepEqual(
      r.leftOut.map((l) => l.cgroupPath),
      ["/r", "/g/1", "/g/2", "/s/1", "/s/2"],
    );
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("a cgroup removed between resolves disappears from the result", () => {
  const root = tree(["svc/a", "svc/b"]);
  try {
    const rules = [globRule("/svc/*")];
    assert.equal(resolveRules(rules, { root }).slos.length, 2);
    rmSync(path.join(root, "svc/b"), { recursive: true });
    assert.deepEqual(
      resolveRules(rules, { root }).slos.map((s) => s.cgroupPath),
      ["/svc/a"],
    );
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("cgroupPathsById finds paths for inode ids", () => {
  const root = tree(["a/b/c", "d"]);
  try {
    const ids = [ino(root, "a/b/c"), ino(root, "d"), 1n];
    const found = cgroupPathsById(ids, root);
    assert.equal(found.get(ids[0]!), "/a/b/c");
    assert.equal(found.get(ids[1]!), "/d");
    assert.equal(found.has(1n), false);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("watch folders: the folders where a new or removed cgroup changes the result", () => {
  const root = tree(["a/b", "k/p1/c", "k/p2/c"]);
  try {
    const r = resolveRules([pathRule("/a/b"), pathRule("/x/y/z"), globRule("/k/*/c")], { root });
    assert.deepEqual([...r.watchDirs].sort(), ["", "/a", "/k", "/k/p1", "/k/p2"]);
  } finally {
    rmSync(root, { recursive: true });
  }
});

test("incremental resolve: a rule is matched again only when one of its folders changed", () => {
  const root = tree(["a/b", "k/p1"]);
  try {
    const rules = [pathRule("/a/b"), globRule("/k/*")];
    const inc = new IncrementalResolver({ root });
    const first = inc.resolve(rules, new Set());
    assert.deepEqual(
      first.slos.map((s) => s.cgroupPath),
      ["/a/b", "/k/p1"],
    );
    mkdirSync(path.join(root, "k", "p2"));
    // Nothing reported: the cached match stands (the safety pass would find p2).
    assert.deepEqual(
      inc.resolve(rules, new Set(["/a"])).slos.map((s) => s.cgroupPath),
      ["/a/b", "/k/p1"],
    );
    // Reported in the glob's folder: matched again.
    assert.deepEqual(
      inc.resolve(rules, new Set(["/k"])).slos.map((s) => s.cgroupPath),
      ["/a/b", "/k/p1", "/k/p2"],
    );
    mkdirSync(path.join(root, "k", "p3"));
    assert.deepEqual(
      inc.resolve(rules, "all").slos.map((s) => s.cgroupPath),
      ["/a/b", "/k/p1", "/k/p2", "/k/p3"],
    );
    // A new rule is matched at once; each result is what a full resolve gives.
    const more = [...rules, pathRule("/k/p3")];
    assert.deepEqual(inc.resolve(more, new Set()), resolveRules(more, { root }));
  } finally {
    rmSync(root, { recursive: true });
  }
});
