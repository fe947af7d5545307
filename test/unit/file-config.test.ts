// The standalone config file: both formats, every rejection path, fuzzing, and the file loader.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import { stringify as yamlStringify } from "yaml";
import {
  BUDGET_MAX_MS,
  BUDGET_MIN_MS,
  IMPORTANCE_MAX,
  IMPORTANCE_MIN,
  MAX_SLO_ENTRIES,
  NS_PER_MS,
  type SloRule,
} from "../../src/slo/model.js";
import { EXAMPLE_CONFIG_LINE, EXAMPLE_CONFIG_YAML } from "../../src/sources/file/example.js";
import type { ConfigError, ParseResult } from "../../src/sources/file/errors.js";
import {
  MAX_CONFIG_BYTES,
  formatConfigError,
  loadConfigFile,
  parseConfig,
  parseConfigBytes,
} from "../../src/sources/file/parse.js";

const FILE = "/etc/scx-slo/slo.conf";

function rulesOf(r: ParseResult): SloRule[] {
  if (!r.ok) assert.fail(`expected ok, got:\n${r.errors.map(formatConfigError).join("\n")}`);
  return r.rules;
}

function errorsOf(r: ParseResult): ConfigError[] {
  if (r.ok) assert.fail(`expected errors, got ${r.rules.length} rules`);
  return r.errors;
}

function pathRule(
  p: string,
  ms: number,
  importance: number,
  line: number,
  labels = {},
  file = FILE,
): SloRule {
  return {
    match: { kind: "path", path: p },
    budgetNs: ms * NS_PER_MS,
    importance,
    labels,
    origin: { source: `file:${file}:${line}` },
  };
}

function globRule(pattern: string, ms: number, importance: number, line: number): SloRule {
  return {
    match: { kind: "glob", pattern },
    budgetNs: ms * NS_PER_MS,
    importance,
    labels: {},
    origin: { source: `file:${FILE}:${line}` },
  };
}

const y = (...lines: string[]): string => lines.join("\n") + "\n";

// ---- valid configs -------------------------------------------------------------------------------

test("line format: rules, comments, blank lines, decimals, globs", () => {
  const text = [
    "# SLOs for node-7",
    "",
    "/kubepods/critical/payment-api 50 90   # checkout path",
    "   /system.slice/*.service\t20\t40",
    "/kubepods/burstable/pod[0-9]* 1.5 1",
    "/a#b 10000 100",
    "  # trailing comment block",
  ].join("\n");
  assert.deepEqual(rulesOf(parseConfig(text, FILE)), [
    pathRule("/kubepods/critical/payment-api", 50, 90, 3),
    globRule("/system.slice/*.service", 20, 40, 4),
    globRule("/kubepods/burstable/pod[0-9]*", 1.5, 1, 5),
    pathRule("/a#b", 10_000, 100, 6),
  ]);
});

test("line format: CRLF line endings and a UTF-8 byte order mark", () => {
  const r = parseConfig("\uFEFF# c\r\n/a 1 1\r\n\r\n/b 2.25 3\r\n", FILE);
  assert.deepEqual(rulesOf(r), [pathRule("/a", 1, 1, 2), pathRule("/b", 2.25, 3, 4)]);
});

test("budget_ms keeps nanosecond precision exactly", () => {
  const r = parseConfig("/a 1.000001 5\n/b 9999.999999 5\n/c 0001.100 5\n", FILE);
  assert.deepEqual(
    rulesOf(r).map((x) => x.budgetNs),
    [1_000_001, 9_999_999_999, 1_100_000],
  );
});

test("YAML: rules, defaults, labels, globs, origins on the item's line", () => {
  const text = y(
    "# header comment",
    "version: 1",
    "defaults: { importance: 50 }",
    "slos:",
    "  - cgroup: /kubepods/critical/payment-api",
    "    budget_ms: 50",
    "    importance: 90",
    "    namespace: shop",
    "    pod: payment-api",
    '  - match: "/system.slice/*.service"',
    "    budget_ms: 20",
    "  - { cgroup: /batch, budget_ms: 2.5, importance: 1 }",
  );
  assert.deepEqual(rulesOf(parseConfig(text, FILE)), [
    pathRule("/kubepods/critical/payment-api", 50, 90, 5, {
      namespace: "shop",
      pod: "payment-api",
    }),
    globRule("/system.slice/*.service", 20, 50, 10),
    pathRule("/batch", 2.5, 1, 12),
  ]);
});

test("YAML is detected from slos: alone, and origins carry the file name", () => {
  const r = parseConfig(y("slos:", "- cgroup: /a", "  budget_ms: 1", "  importance: 1"), "x.yaml");
  assert.deepEqual(rulesOf(r), [pathRule("/a", 1, 1, 2, {}, "x.yaml")]);
});

test("an empty, blank or comments-only file is rejected in either format, naming the fix", () => {
  for (const text of [
    "",
    "\n\n",
    " \t \r\n  \n",
    "\uFEFF",
    "# nothing yet\n   # really\n",
    "# version: 1\n# slos:\n",
  ]) {
    const [e, more] = errorsOf(parseConfig(text, FILE));
    assert.equal(more, undefined);
    assert.equal(e?.line, null, JSON.stringify(text));
    assert.match(e?.message ?? "", /the file has no rules/);
    assert.match(e?.fix ?? "", /write `none` on a line of its own \(YAML: `slos: \[\]`\)/);
  }
});

test("no SLOs on purpose: `none` alone (line format) or `slos: []` (YAML), nothing else", () => {
  for (const text of ["none\n", "# drained for maintenance\n  none   # until Monday\n"]) {
    assert.deepEqual(parseConfig(text, FILE), { ok: true, rules: [], warnings: [] });
  }
  assert.deepEqual(parseConfig(y("version: 1", "slos: []"), FILE), {
    ok: true,
    rules: [],
    warnings: [],
  });
  const [beside] = errorsOf(parseConfig("/a 10 50\nnone\n", FILE));
  assert.equal(beside?.line, 2);
  assert.match(beside?.message ?? "", /`none` \(no SLOs\) stands beside 1 rule$/);
  // A YAML file caught after `slos:` says nothing on purpose.
  const [cut] = errorsOf(parseConfig(y("version: 1", "slos:"), FILE));
  assert.match(cut?.message ?? "", /slos has no value/);
  assert.match(cut?.fix ?? "", /write `slos: \[\]`/);
});

test("example configs parse cleanly and declare the same rules", () => {
  const line = parseConfig(EXAMPLE_CONFIG_LINE, "example.conf");
  const yaml = parseConfig(EXAMPLE_CONFIG_YAML, "example.yaml");
  assert.ok(line.ok && yaml.ok);
  assert.deepEqual(line.warnings, []);
  assert.deepEqual(yaml.warnings, []);
  assert.ok(line.rules.length >= 2);
  const strip = (rules: SloRule[]) =>
    rules.map((r) => ({ match: r.match, budgetNs: r.budgetNs, importance: r.importance }));
  assert.deepEqual(strip(line.rules), strip(yaml.rules));
  assert.ok(line.rules.some((r) => r.match.kind === "glob"));
});

test("formatConfigError: file:line: field: message (fix: ...), one line", () => {
  const [e] = errorsOf(parseConfig("/a 50 900\n", "slo.conf"));
  assert.ok(e);
  assert.equal(
    formatConfigError(e),
    "slo.conf:1: importance: importance 900 is outside 1..100 (fix: use a whole number from 1 (least) to 100 (most important))",
  );
  assert.equal(
    formatConfigError({ file: "f", line: null, field: null, message: "m\nx", fix: "y" }),
    "f: m x (fix: y)",
  );
});

test("every error of a file is reported, in line order, capped with a summary", () => {
  const errors = errorsOf(parseConfig("/a 0 0\n/ok 5 5\n/b/ 5\n", FILE));
  assert.deepEqual(
    errors.map((e) => [e.line, e.field]),
    [
      [1, "budget_ms"],
      [1, "importance"],
      [3, "importance"],
      [3, "cgroup_path"],
    ],
  );
  const garbage = errorsOf(parseConfig("x\n".repeat(500), FILE));
  assert.equal(garbage.length, 51);
  assert.match(garbage[50]?.message ?? "", /^950 more errors not shown$/);
});

// ---- malformed configs ---------------------------------------------------------------------------

interface BadCase {
  readonly name: string;
  readonly text: string;
  readonly line: number | null;
  readonly field: string | null;
  readonly message: RegExp;
  /** How many errors the file yields in all (default 1: nothing spurious). */
  readonly count?: number;
}

const RULE = (cgroup: string, extra: string[] = []) =>
  y("version: 1", "slos:", `  - cgroup: ${cgroup}`, "    budget_ms: 50", ...extra);

const BAD: readonly BadCase[] = [
  // line format: structure
  {
    name: "line: one field",
    text: "/a\n",
    line: 1,
    field: "budget_ms",
    message: /missing budget_ms and importance/,
  },
  {
    name: "line: two fields",
    text: "/a 50\n",
    line: 1,
    field: "importance",
    message: /missing importance: a rule has 3 fields, found 2/,
  },
  {
    name: "line: four fields",
    text: "/a 50 90 7\n",
    line: 1,
    field: null,
    message: /too many fields.*found 4/,
  },
  {
    name: "line: path with a space",
    text: "/kubepods/my pod 50 90\n",
    line: 1,
    field: null,
    message: /too many fields/,
  },
  {
    name: "line: comment glued to a value",
    text: "/a 50 90#x\n",
    line: 1,
    field: "importance",
    message: /importance "90#x" is not a number/,
  },
  {
    name: "line: YAML without a version line",
    text: "slo:\n  - cgroup: /a\n",
    line: 1,
    field: "cgroup_path",
    message: /"slo:" looks like YAML, but the file was read as line format/,
    count: 2, // and "- cgroup: /a" on line 2
  },
  {
    name: "line: error line counts comments and blanks",
    text: "# h\n\n   # x\n/ok 5 5\n/bad 5\n",
    line: 5,
    field: "importance",
    message: /missing importance/,
  },
  {
    name: "line: CRLF keeps line numbers",
    text: "/a 5 5\r\n/b 5 500\r\n",
    line: 2,
    field: "importance",
    message: /importance 500 is outside 1\.\.100/,
  },
  // line format: paths
  {
    name: "line: relative path",
    text: "kubepods/a 50 90\n",
    line: 1,
    field: "cgroup_path",
    message: /"kubepods\/a" must be absolute/,
  },
  {
    name: "line: dot-dot component",
    text: "/a/../b 50 90\n",
    line: 1,
    field: "cgroup_path",
    message: /contains a "\.\." component/,
  },
  {
    name: "line: dot component",
    text: "/a/./b 50 90\n",
    line: 1,
    field: "cgroup_path",
    message: /contains a "\." component/,
  },
  {
    name: "line: trailing slash",
    text: "/a/b/ 50 90\n",
    line: 1,
    field: "cgroup_path",
    message: /trailing slash/,
  },
  {
    name: "line: root cgroup",
    text: "/ 50 90\n",
    line: 1,
    field: "cgroup_path",
    message: /root cgroup, which cannot carry an SLO/,
  },
  {
    name: "line: empty path component",
    text: "/a//b 50 90\n",
    line: 1,
    field: "cgroup_path",
    message: /empty path component/,
  },
  {
    name: "line: path longer than 4096 bytes",
    text: `/${"a".repeat(4096)} 50 90\n`,
    line: 1,
    field: "cgroup_path",
    message: /longer than 4096 bytes/,
  },
  {
    name: "line: NUL byte in path",
    text: "/a\0b 50 90\n",
    line: 1,
    field: "cgroup_path",
    message: /contains a NUL byte/,
  },
  {
    name: "line: control character in path",
    text: "/a\x01b 50 90\n",
    line: 1,
    field: "cgroup_path",
    message: /control character/,
  },
  {
    name: "line: unclosed bracket in glob",
    text: "/pods/[abc 50 90\n",
    line: 1,
    field: "cgroup_path",
    message: /unclosed "\["/,
  },
  // line format: budget_ms
  {
    name: "line: budget is a word",
    text: "/a fast 90\n",
    line: 1,
    field: "budget_ms",
    message: /"fast" is not a plain number of milliseconds/,
  },
  {
    name: "line: budget with a unit",
    text: "/a 50ms 90\n",
    line: 1,
    field: "budget_ms",
    message: /"50ms" is not a plain number/,
  },
  {
    name: "line: budget in exponent notation",
    text: "/a 1e3 90\n",
    line: 1,
    field: "budget_ms",
    message: /not a plain number/,
  },
  {
    name: "line: budget below the minimum",
    text: "/a 0.5 90\n",
    line: 1,
    field: "budget_ms",
    message: /budget_ms 0\.5 is below the minimum of 1 ms/,
  },
  {
    name: "line: budget zero",
    text: "/a 0 90\n",
    line: 1,
    field: "budget_ms",
    message: /below the minimum/,
  },
  {
    name: "line: budget above the maximum",
    text: "/a 10000.5 90\n",
    line: 1,
    field: "budget_ms",
    message: /above the maximum of 10000 ms/,
  },
  {
    name: "line: negative budget",
    text: "/a -5 90\n",
    line: 1,
    field: "budget_ms",
    message: /is negative/,
  },
  {
    name: "line: budget finer than a nanosecond",
    text: "/a 1.0000001 90\n",
    line: 1,
    field: "budget_ms",
    message: /finer than 1 ns/,
  },
  // line format: importance
  {
    name: "line: importance with a fraction",
    text: "/a 50 9.5\n",
    line: 1,
    field: "importance",
    message: /importance 9\.5 is not an integer/,
  },
  {
    name: "line: importance zero",
    text: "/a 50 0\n",
    line: 1,
    field: "importance",
    message: /outside 1\.\.100/,
  },
  {
    name: "line: importance 101",
    text: "/a 50 101\n",
    line: 1,
    field: "importance",
    message: /outside 1\.\.100/,
  },
  {
    name: "line: importance is a word",
    text: "/a 50 high\n",
    line: 1,
    field: "importance",
    message: /"high" is not a number/,
  },
  // line format: whole file
  {
    name: "line: duplicate path names both lines",
    text: "/a 50 90\n# c\n/a 20 10\n",
    line: 3,
    field: "cgroup_path",
    message: /duplicate cgroup path "\/a": already declared on line 1/,
  },
  {
    name: "line: duplicate glob pattern",
    text: "/s/*.service 5 5\n/s/*.service 6 6\n",
    line: 2,
    field: "cgroup_path",
    message: /duplicate glob pattern .* on line 1/,
  },
  {
    name: "line: more rules than the BPF map holds",
    text: Array.from({ length: MAX_SLO_ENTRIES + 1 }, (_, i) => `/r${i} 5 5`).join("\n"),
    line: MAX_SLO_ENTRIES + 1,
    field: null,
    message: /4097 rules, more than the limit of 4096/,
  },
  // YAML: syntax
  {
    name: "yaml: bad indentation",
    text: y("version: 1", "slos:", "  - cgroup: /a", "   budget_ms: 5"),
    line: 4,
    field: null,
    message: /invalid YAML/,
  },
  {
    name: "yaml: tab indentation",
    text: y("version: 1", "slos:", "\t- cgroup: /a"),
    line: 3,
    field: null,
    message: /invalid YAML: Tabs are not allowed/,
  },
  {
    name: "yaml: repeated key",
    text: RULE("/a", ["    budget_ms: 6", "    importance: 5"]),
    line: 5,
    field: "slos[0].budget_ms",
    message: /duplicate key "budget_ms", first set on line 4/,
  },
  {
    name: "yaml: flow nesting too deep",
    text: "slos: " + "[".repeat(200),
    line: 1,
    field: null,
    message: /more than 100 levels deep/,
  },
  {
    name: "yaml: two documents",
    text: y("version: 1", "---", "slos: []"),
    line: 2,
    field: null,
    message: /invalid YAML: .*multiple documents/,
  },
  {
    name: "yaml: alias without an anchor",
    text: y("version: 1", "slos:", "  - *nope"),
    line: null,
    field: null,
    message: /YAML cannot be resolved: .*alias/,
  },
  {
    name: "yaml: top level is not a mapping",
    text: y("---", "- cgroup: /a"),
    line: 2,
    field: null,
    message: /top level must be a mapping/,
  },
  // YAML: keys
  {
    name: "yaml: unknown top-level key",
    text: y("version: 1", "sloz: 1", "slos:", "  - {cgroup: /a, budget_ms: 5, importance: 5}"),
    line: 2,
    field: "sloz",
    message: /unknown key "sloz" \(did you mean slos\?\)/,
  },
  {
    name: "yaml: unknown rule key with a hint",
    text: y("slos:", "  - cgroup: /a", "    budget: 50", "    importance: 5"),
    line: 3,
    field: "slos[0].budget",
    message: /unknown key "budget" \(did you mean budget_ms\?\)/,
    count: 2, // and budget_ms is missing
  },
  {
    name: "yaml: unknown defaults key",
    text: y("defaults: { importanse: 5 }", "slos:", "  - {cgroup: /a, budget_ms: 5}"),
    line: 1,
    field: "defaults.importanse",
    message: /did you mean importance\?/,
  },
  {
    name: "yaml: missing budget_ms",
    text: y("slos:", "  - cgroup: /a", "    importance: 5"),
    line: 2,
    field: "slos[0].budget_ms",
    message: /missing budget_ms/,
  },
  {
    name: "yaml: importance missing without defaults",
    text: RULE("/a"),
    line: 3,
    field: "slos[0].importance",
    message: /missing importance, and defaults\.importance is not set/,
  },
  // YAML: types and values
  {
    name: "yaml: budget with a unit",
    text: y("slos:", "  - cgroup: /a", "    budget_ms: 50ms", "    importance: 5"),
    line: 3,
    field: "slos[0].budget_ms",
    message: /^budget_ms "50ms" is not a plain number of milliseconds$/,
  },
  {
    name: "yaml: quoted budget",
    text: y("slos:", "  - cgroup: /a", '    budget_ms: "50"', "    importance: 5"),
    line: 3,
    field: "slos[0].budget_ms",
    message: /got the string "50"/,
  },
  {
    name: "yaml: budget with no value",
    text: y("slos:", "  - cgroup: /a", "    budget_ms:", "    importance: 5"),
    line: 3,
    field: "slos[0].budget_ms",
    message: /got null/,
  },
  {
    name: "yaml: budget below the minimum",
    text: y("slos:", "  - cgroup: /a", "    budget_ms: 0.5", "    importance: 5"),
    line: 3,
    field: "slos[0].budget_ms",
    message: /below the minimum of 1 ms/,
  },
  {
    name: "yaml: infinite budget",
    text: y("slos:", "  - cgroup: /a", "    budget_ms: .inf", "    importance: 5"),
    line: 3,
    field: "slos[0].budget_ms",
    message: /^budget_ms ".inf" is not a plain number of milliseconds$/,
  },
  {
    name: "yaml: importance out of range",
    text: RULE("/a", ["    importance: 0"]),
    line: 5,
    field: "slos[0].importance",
    message: /importance 0 is outside 1\.\.100/,
  },
  {
    name: "yaml: importance with a fraction",
    text: RULE("/a", ["    importance: 50.5"]),
    line: 5,
    field: "slos[0].importance",
    message: /not an integer/,
  },
  {
    name: "yaml: defaults.importance out of range",
    text: y("defaults:", "  importance: 500", "slos:", "  - {cgroup: /a, budget_ms: 5}"),
    line: 2,
    field: "defaults.importance",
    message: /importance 500 is outside/,
  },
  {
    name: "yaml: both cgroup and match",
    text: y(
      "slos:",
      "  - cgroup: /a",
      '    match: "/a/*"',
      "    budget_ms: 5",
      "    importance: 5",
    ),
    line: 2,
    field: "slos[0]",
    message: /has both cgroup and match/,
  },
  {
    name: "yaml: neither cgroup nor match",
    text: y("version: 1", "slos:", "  - budget_ms: 5", "    importance: 5"),
    line: 3,
    field: "slos[0]",
    message: /has neither cgroup nor match/,
  },
  {
    name: "yaml: glob under cgroup",
    text: RULE('"/a/*"', ["    importance: 5"]),
    line: 3,
    field: "slos[0].cgroup",
    message: /contains glob characters/,
  },
  {
    name: "yaml: match without glob characters",
    text: y("slos:", "  - match: /a/b", "    budget_ms: 5", "    importance: 5"),
    line: 2,
    field: "slos[0].match",
    message: /has no glob characters/,
  },
  {
    name: "yaml: relative cgroup path",
    text: RULE("kubepods/a", ["    importance: 5"]),
    line: 3,
    field: "slos[0].cgroup",
    message: /must be absolute/,
  },
  {
    name: "yaml: duplicate cgroup names both lines",
    text: y(
      "version: 1",
      "defaults: {importance: 5}",
      "slos:",
      "  - cgroup: /a",
      "    budget_ms: 5",
      "  - budget_ms: 6",
      "    cgroup: /a",
    ),
    line: 7,
    field: "slos[1].cgroup",
    message: /duplicate cgroup path "\/a": already declared on line 4/,
  },
  {
    name: "yaml: namespace is not a Kubernetes name",
    text: RULE("/a", ["    importance: 5", "    namespace: Shop_Front"]),
    line: 6,
    field: "slos[0].namespace",
    message: /not a valid Kubernetes namespace name/,
  },
  {
    name: "yaml: pod is a number",
    text: RULE("/a", ["    importance: 5", "    pod: 5"]),
    line: 6,
    field: "slos[0].pod",
    message: /pod must be a Kubernetes pod name, got number 5/,
  },
  // YAML: file level
  {
    name: "yaml: slos with no value",
    text: y("version: 1", "slos:"),
    line: 2,
    field: "slos",
    message: /slos has no value/,
  },
  {
    name: "yaml: missing slos",
    text: y("version: 1", "defaults: { importance: 5 }"),
    line: 1,
    field: "slos",
    message: /missing slos/,
  },
  {
    name: "yaml: slos is a mapping",
    text: y("slos:", "  cgroup: /a"),
    line: 1,
    field: "slos",
    message: /slos must be a list of rules, got a mapping/,
  },
  {
    name: "yaml: rule is a scalar",
    text: y("version: 1", "slos:", "  - /a 50 90"),
    line: 3,
    field: "slos[0]",
    message: /a rule must be a mapping, got the string/,
  },
  {
    name: "yaml: unsupported version",
    text: y("version: 2", "slos:", "  - {cgroup: /a, budget_ms: 5, importance: 5}"),
    line: 1,
    field: "version",
    message: /unsupported version 2/,
  },
  {
    name: "yaml: version as a string",
    text: y('version: "1"', "slos:", "  - {cgroup: /a, budget_ms: 5, importance: 5}"),
    line: 1,
    field: "version",
    message: /version must be the number 1, got the string "1"/,
  },
  {
    name: "yaml: more rules than the BPF map holds",
    text: y(
      "version: 1",
      "slos:",
      ...Array.from(
        { length: MAX_SLO_ENTRIES + 1 },
        (_, i) => `  - {cgroup: /r${i}, budget_ms: 5, importance: 5}`,
      ),
    ),
    line: MAX_SLO_ENTRIES + 3,
    field: "slos",
    message: /4097 rules, more than the limit of 4096/,
  },
];

test("YAML numbers: the line format's grammar and messages, read from the source text", () => {
  const yamlError = (key: "budget_ms" | "importance", token: string, defaults = false) => {
    const text = defaults
      ? y("defaults:", `  importance: ${token}`, "slos:", "  - { cgroup: /a, budget_ms: 5 }")
      : y(
          "slos:",
          "  - cgroup: /a",
          `    budget_ms: ${key === "budget_ms" ? token : "5"}`,
          `    importance: ${key === "importance" ? token : "5"}`,
        );
    const errors = errorsOf(parseConfig(text, FILE));
    assert.equal(errors.length, 1, `${key} ${token}: ${errors.map(formatConfigError).join("\n")}`);
    return errors[0]!;
  };
  const lineError = (key: "budget_ms" | "importance", token: string) => {
    const text = key === "budget_ms" ? `/a ${token} 5\n` : `/a 5 ${token}\n`;
    const errors = errorsOf(parseConfig(text, FILE));
    assert.equal(errors.length, 1);
    return errors[0]!;
  };
  for (const token of ["1e3", "0x10", "0o62", ".5", "+5", "5_000", "-5", "1.", ".inf", "50ms"]) {
    for (const key of ["budget_ms", "importance"] as const) {
      const e = yamlError(key, token);
      const l = lineError(key, token);
      assert.equal(e.field, `slos[0].${key}`);
      assert.deepEqual([e.message, e.fix], [l.message, l.fix], `${key}: ${token}`);
    }
    const d = yamlError("importance", token, true);
    assert.equal(d.field, "defaults.importance");
    assert.equal(d.message, lineError("importance", token).message, `defaults: ${token}`);
  }
  // What the grammar allows, YAML reads the same as the line format.
  for (const token of ["50", "1.5", "08", "10000.000000"]) {
    const r = rulesOf(
      parseConfig(y("slos:", `  - { cgroup: /a, budget_ms: ${token}, importance: 5 }`), FILE),
    );
    assert.equal(r[0]?.budgetNs, rulesOf(parseConfig(`/a ${token} 5\n`, FILE))[0]?.budgetNs, token);
  }
  // A tag changes how YAML reads a value (`!!float 50` is the string "50"): refused, named as such.
  for (const [token, tag] of [
    ["!!float 50", "!!float"],
    ["!!int 5", "!!int"],
    ["!!str 5", "!!str"],
    ['!!float "50"', "!!float"],
  ] as const) {
    for (const key of ["budget_ms", "importance"] as const) {
      const e = yamlError(key, token);
      assert.equal(
        e.message,
        `${key} has the YAML tag "${tag}": a tag changes how the value is read`,
      );
      assert.match(e.fix, /write the number without a tag/);
    }
  }
});

test("malformed configs: each names its line, field and a fix", async (t) => {
  assert.ok(BAD.length >= 35);
  for (const c of BAD) {
    await t.test(c.name, () => {
      const errors = errorsOf(parseConfig(c.text, FILE));
      const shown = errors.map(formatConfigError).join("\n");
      assert.equal(errors.length, c.count ?? 1, shown);
      const e = errors.find((x) => x.line === c.line && x.field === c.field);
      assert.ok(e, `no error at line ${c.line}, field ${c.field}; got:\n${shown}`);
      assert.match(e.message, c.message);
      assert.equal(e.file, FILE);
      assert.ok(e.fix.length > 0);
    });
  }
});

// ---- properties ----------------------------------------------------------------------------------

let propertyRuns = 0;

/** What must hold for any input: never a throw, rejections explain themselves, rules are in range. */
function checkInvariants(r: ParseResult, text: string, file = FILE): void {
  propertyRuns++;
  const lines = text.split("\n").length;
  if (!r.ok) {
    assert.ok(r.errors.length >= 1);
    for (const e of r.errors) {
      assert.equal(e.file, file);
      assert.ok(e.message.length > 0 && e.fix.length > 0);
      assert.doesNotMatch(e.message, /internal error/);
      assert.ok(e.line === null || (Number.isInteger(e.line) && e.line >= 1 && e.line <= lines));
      assert.doesNotMatch(formatConfigError(e), /[\r\n]/);
    }
    return;
  }
  assert.ok(r.rules.length <= MAX_SLO_ENTRIES);
  const seen = new Set<string>();
  for (const rule of r.rules) {
    assert.ok(Number.isSafeInteger(rule.budgetNs));
    assert.ok(rule.budgetNs >= BUDGET_MIN_MS * NS_PER_MS);
    assert.ok(rule.budgetNs <= BUDGET_MAX_MS * NS_PER_MS);
    assert.ok(Number.isInteger(rule.importance));
    assert.ok(rule.importance >= IMPORTANCE_MIN && rule.importance <= IMPORTANCE_MAX);
    const p = rule.match.kind === "path" ? rule.match.path : rule.match.pattern;
    assert.ok(p.startsWith("/") && p !== "/" && !p.endsWith("/"), p);
    assert.ok(!p.split("/").some((c, i) => i > 0 && (c === "" || c === "." || c === "..")), p);
    assert.doesNotMatch(p, /[\s\0]/);
    assert.equal(rule.match.kind === "glob", /[*?[]/.test(p));
    assert.ok(!seen.has(p), `duplicate ${p}`);
    seen.add(p);
    assert.match(rule.origin.source, /^file:.*:\d+$/);
  }
}

// Pieces of both formats, so random text reaches deep into the parsers instead of failing at once.
const TOKENS = [
  "/",
  "a",
  "kubepods",
  " ",
  "  ",
  "\t",
  "\n",
  "\r\n",
  "#",
  " # c",
  "0",
  "1",
  "5",
  "50",
  "90",
  "100",
  "101",
  "1.5",
  "0.5",
  "-",
  ".",
  "..",
  ":",
  "*",
  "?",
  "[",
  "]",
  "{",
  "}",
  ",",
  '"',
  "'",
  "\0",
  "\u00e9",
  "\uFEFF",
  "version: 1\n",
  "slos:\n",
  "defaults: {importance: 5}\n",
  "  - cgroup: ",
  "  - match: ",
  "    budget_ms: ",
  "    importance: ",
  "    namespace: ",
  "    pod: ",
  "&x ",
  "*x",
  "!!str ",
  "0x1F",
  ".inf",
  ".nan",
  "null",
  "~",
  "---\n",
  "1e400",
  "/kubepods/critical/payment-api 50 90\n",
];

const VALID_LINE_BASES = [
  EXAMPLE_CONFIG_LINE,
  "/a 50 90\n/b/*.service 1.5 40 # x\n",
  "/kubepods/critical/payment-api 50 90",
];
const VALID_YAML_BASES = [
  EXAMPLE_CONFIG_YAML,
  y("version: 1", "slos:", "  - cgroup: /a", "    budget_ms: 50", "    importance: 90"),
  y(
    "slos: [{match: '/s/*', budget_ms: 2, importance: 3}, {cgroup: /b, budget_ms: 4, importance: 5}]",
  ),
];

type Mutation =
  | { op: "insert"; at: number; tok: string }
  | { op: "delete"; at: number; len: number }
  | { op: "replace"; at: number; tok: string }
  | { op: "dupLine"; at: number }
  | { op: "dropLine"; at: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("insert" as const), at: fc.nat(), tok: fc.constantFrom(...TOKENS) }),
  fc.record({
    op: fc.constant("delete" as const),
    at: fc.nat(),
    len: fc.integer({ min: 1, max: 8 }),
  }),
  fc.record({ op: fc.constant("replace" as const), at: fc.nat(), tok: fc.constantFrom(...TOKENS) }),
  fc.record({ op: fc.constant("dupLine" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("dropLine" as const), at: fc.nat() }),
);

function mutate(text: string, m: Mutation): string {
  const at = text.length === 0 ? 0 : m.at % (text.length + 1);
  switch (m.op) {
    case "insert":
      return text.slice(0, at) + m.tok + text.slice(at);
    case "delete":
      return text.slice(0, at) + text.slice(at + m.len);
    case "replace":
      return text.slice(0, at) + m.tok + text.slice(at + m.tok.length);
    case "dupLine":
    case "dropLine": {
      const lines = text.split("\n");
      const i = m.at % lines.length;
      if (m.op === "dupLine") lines.splice(i, 0, lines[i] ?? "");
      else lines.splice(i, 1);
      return lines.join("\n");
    }
  }
}

test("property: arbitrary strings never throw and every outcome is well-formed", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 400 }), (text) => {
      checkInvariants(parseConfig(text, FILE), text);
    }),
    { numRuns: 2500 },
  );
});

test("property: token soup in both formats never throws", () => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...TOKENS), { maxLength: 60 }), (toks) => {
      const text = toks.join("");
      checkInvariants(parseConfig(text, FILE), text);
    }),
    { numRuns: 2500 },
  );
});

test("property: arbitrary bytes never throw", () => {
  const asciiHeavy = fc.uint8Array({ maxLength: 400, min: 0, max: 127 });
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), asciiHeavy), (bytes) => {
      const r = parseConfigBytes(bytes, FILE);
      checkInvariants(r, Buffer.from(bytes).toString("latin1"));
      if (bytes.includes(0)) assert.equal(r.ok, false);
    }),
    { numRuns: 2000 },
  );
});

test("property: mutated valid configs never throw", () => {
  const base = fc.constantFrom(...VALID_LINE_BASES, ...VALID_YAML_BASES);
  fc.assert(
    fc.property(base, fc.array(mutationArb, { minLength: 1, maxLength: 6 }), (text, muts) => {
      const mutated = muts.reduce(mutate, text);
      checkInvariants(parseConfig(mutated, FILE), mutated);
    }),
    { numRuns: 2500 },
  );
});

// Valid rule sets: component names include "#", ":" and "." (legal in cgroup names), globs use
// every glob form, budgets span the whole range at nanosecond resolution.
const componentArb = fc
  .stringMatching(/^[A-Za-z0-9_@:.#+=,%-]{1,16}$/)
  .filter((c) => c !== "." && c !== "..");
const globComponentArb = fc.constantFrom("*", "*.service", "pod?", "pod[0-9]*", "[!a]x", "[]a]");
const pathArb = fc
  .tuple(
    fc.array(componentArb, { minLength: 1, maxLength: 5 }),
    fc.option(globComponentArb, { freq: 3 }),
  )
  .map(([parts, glob]) => "/" + (glob === null ? parts : [...parts, glob]).join("/"));
const budgetNsArb = fc.oneof(
  fc.integer({ min: BUDGET_MIN_MS, max: BUDGET_MAX_MS }).map((ms) => ms * NS_PER_MS),
  fc.integer({ min: BUDGET_MIN_MS * NS_PER_MS, max: BUDGET_MAX_MS * NS_PER_MS }),
);
const ruleSpecArb = fc.record({
  path: pathArb,
  budgetNs: budgetNsArb,
  importance: fc.integer({ min: IMPORTANCE_MIN, max: IMPORTANCE_MAX }),
  // Layout noise: comment/blank lines before the rule, separators, a trailing comment.
  before: fc.array(fc.constantFrom("", "# note", "   ", "\t# indented"), { maxLength: 2 }),
  sep: fc.constantFrom(" ", "  ", "\t", " \t "),
  trailing: fc.constantFrom("", " # why", "\t#"),
});
const ruleSetArb = fc.uniqueArray(ruleSpecArb, { maxLength: 25, selector: (r) => r.path });

function msText(ns: number): string {
  const whole = Math.floor(ns / NS_PER_MS);
  const frac = ns % NS_PER_MS;
  return frac === 0
    ? String(whole)
    : `${whole}.${String(frac).padStart(6, "0").replace(/0+$/, "")}`;
}

function specRule(
  s: { path: string; budgetNs: number; importance: number },
  line: number,
  labels = {},
): SloRule {
  const glob = /[*?[]/.test(s.path);
  return {
    match: glob ? { kind: "glob", pattern: s.path } : { kind: "path", path: s.path },
    budgetNs: s.budgetNs,
    importance: s.importance,
    labels,
    origin: { source: `file:${FILE}:${line}` },
  };
}

test("property: valid rule sets round-trip through the line format", () => {
  fc.assert(
    fc.property(ruleSetArb, (specs) => {
      const lines: string[] = [];
      const expected: SloRule[] = [];
      for (const s of specs) {
        lines.push(...s.before);
        lines.push([s.path, msText(s.budgetNs), String(s.importance)].join(s.sep) + s.trailing);
        expected.push(specRule(s, lines.length));
      }
      const text = lines.join("\n");
      const r = parseConfig(text, FILE);
      checkInvariants(r, text);
      if (specs.length === 0) assert.match(errorsOf(r)[0]?.message ?? "", /has no rules/);
      else assert.deepEqual(rulesOf(r), expected);
    }),
    { numRuns: 1000 },
  );
});

test("property: valid rule sets round-trip through YAML", () => {
  fc.assert(
    fc.property(
      ruleSetArb.filter((s) => s.length > 0),
      (specs) => {
        const doc = {
          version: 1,
          slos: specs.map((s) => ({
            [/[*?[]/.test(s.path) ? "match" : "cgroup"]: s.path,
            budget_ms: s.budgetNs / NS_PER_MS,
            importance: s.importance,
          })),
        };
        const text = yamlStringify(doc);
        const r = parseConfig(text, FILE);
        checkInvariants(r, text);
        const strip = (rules: SloRule[]) => rules.map((x) => ({ ...x, origin: null }));
        assert.deepEqual(strip(rulesOf(r)), strip(specs.map((s) => specRule(s, 0))));
      },
    ),
    { numRuns: 500 },
  );
});

test("property runs total at least 10,000", () => {
  assert.ok(propertyRuns >= 10_000, `only ${propertyRuns} runs`);
});

// ---- loading files -------------------------------------------------------------------------------

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), "scx-slo-config-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("loadConfigFile: a valid file, named in the origins", async (t) => {
  const file = path.join(tempDir(t), "slo.conf");
  writeFileSync(file, EXAMPLE_CONFIG_LINE);
  const r = await loadConfigFile(file);
  assert.ok(r.ok);
  assert.ok(r.rules.every((x) => x.origin.source.startsWith(`file:${file}:`)));
});

test("loadConfigFile: a file over 1 MiB is rejected before parsing", async (t) => {
  const dir = tempDir(t);
  const big = path.join(dir, "big.conf");
  writeFileSync(big, "# padding\n".repeat(Math.ceil((MAX_CONFIG_BYTES + 1) / 10)));
  const [e, ...rest] = errorsOf(await loadConfigFile(big));
  assert.deepEqual(rest, []);
  assert.equal(e?.file, big);
  assert.match(e?.message ?? "", /larger than the 1048576-byte \(1 MiB\) limit/);
  // Exactly at the limit is still read.
  const edge = path.join(dir, "edge.conf");
  writeFileSync(edge, "none\n#" + "#".repeat(MAX_CONFIG_BYTES - 7) + "\n");
  assert.ok((await loadConfigFile(edge)).ok);
});

test("loadConfigFile: a file that reports size 0 (procfs) is read to its end", async () => {
  // The read buffer starts at the size fstat gives and grows as the file does.
  const errors = errorsOf(await loadConfigFile("/proc/self/status"));
  assert.match(errors[errors.length - 1]?.message ?? "", /more errors not shown/);
  assert.ok(errors.some((e) => (e.line ?? 0) >= 40));
});

test("loadConfigFile: binary garbage is rejected with the line of the first NUL", async (t) => {
  const file = path.join(tempDir(t), "slo.conf");
  writeFileSync(
    file,
    Buffer.concat([
      Buffer.from("/a 5 5\n/b 5 5\n"),
      Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x00, 0xff]),
    ]),
  );
  const [e, ...rest] = errorsOf(await loadConfigFile(file));
  assert.deepEqual(rest, []);
  assert.equal(e?.line, 3);
  assert.match(e?.message ?? "", /NUL bytes: it is binary data/);
});

test("loadConfigFile: invalid UTF-8 names its line; UTF-16 is named as such", async (t) => {
  const dir = tempDir(t);
  const latin1 = path.join(dir, "latin1.conf");
  writeFileSync(latin1, Buffer.from("/a 5 5\n/caf\xe9 5 5\n", "latin1"));
  const [e] = errorsOf(await loadConfigFile(latin1));
  assert.equal(e?.line, 2);
  assert.match(e?.message ?? "", /not valid UTF-8/);
  const utf16 = path.join(dir, "utf16.conf");
  writeFileSync(utf16, Buffer.from("\uFEFF/a 5 5\n", "utf16le"));
  assert.match(errorsOf(await loadConfigFile(utf16))[0]?.message ?? "", /UTF-16/);
});

test("loadConfigFile: missing file, directory and FIFO resolve with an error", async (t) => {
  const dir = tempDir(t);
  assert.match(
    errorsOf(await loadConfigFile(path.join(dir, "nope")))[0]?.message ?? "",
    /no such file/,
  );
  mkdirSync(path.join(dir, "sub"));
  assert.match(
    errorsOf(await loadConfigFile(path.join(dir, "sub")))[0]?.message ?? "",
    /not a regular file/,
  );
  const fifo = path.join(dir, "fifo");
  execFileSync("mkfifo", [fifo]);
  // Without O_NONBLOCK this open would wait for a writer forever.
  assert.match(errorsOf(await loadConfigFile(fifo))[0]?.message ?? "", /not a regular file/);
});
