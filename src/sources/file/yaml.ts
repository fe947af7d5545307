// The YAML format: `version: 1`, optional `defaults:`, rules under `slos:`. Every error is mapped
// back to the line of the key (or list item) at fault. `slos: []` says "no SLOs" on purpose; a
// missing or valueless `slos:` is an error, as an empty file is.

import {
  LineCounter,
  isAlias,
  isMap,
  isNode,
  isScalar,
  isSeq,
  parseDocument,
  type Document,
  type Pair,
  type Scalar,
  type YAMLMap,
} from "yaml";
import { z } from "zod";
import { IMPORTANCE_MAX, IMPORTANCE_MIN, MAX_SLO_ENTRIES, type SloRule } from "../../slo/model.js";
import {
  checkLabel,
  isGlob,
  parseBudgetText,
  parseImportanceText,
  quote,
  type Check,
  type Problem,
} from "../../slo/validate.js";
import { errorMessage } from "../../util/log.js";
import { DuplicateCheck, checkCgroupPath, makeRule } from "./checks.js";
import { ErrorList, NO_SLOS_YAML, fail, finish, tooManyRules, type ParseResult } from "./errors.js";

// zod checks shape and types; value ranges and paths go through the same checks as the line format
// so both formats accept exactly the same rules with the same messages. Numbers are checked as
// written, not as YAML resolved them: YAML reads 1e3, 0x10, 0o62, .5 and +5 as numbers, which the
// one number grammar (slo/validate.ts DECIMAL) rejects, and a tag (!!float 50) changes what a
// scalar means, so tagged numbers are refused.
const DefaultsSchema = z.object({ importance: z.number().optional() }).strict();
const TopSchema = z
  .object({
    version: z.literal(1).optional(),
    defaults: DefaultsSchema.optional(),
    slos: z.unknown(),
  })
  .strict();
const ItemSchema = z
  .object({
    cgroup: z.string().optional(),
    match: z.string().optional(),
    budget_ms: z.number(),
    importance: z.number().optional(),
    namespace: z.string().optional(),
    pod: z.string().optional(),
  })
  .strict();

const TOP_KEYS = Object.keys(TopSchema.shape);
const DEFAULTS_KEYS = Object.keys(DefaultsSchema.shape);
const ITEM_KEYS = Object.keys(ItemSchema.shape);

const FIELD_HELP: Readonly<Record<string, { expect: string; example: string }>> = {
  version: { expect: "the number 1", example: "version: 1" },
  defaults: { expect: "a mapping", example: "defaults: { importance: 50 }" },
  slos: { expect: "a list of rules", example: "slos: followed by lines `- cgroup: /a/b`" },
  cgroup: { expect: "a cgroup path", example: "cgroup: /kubepods/critical/payment-api" },
  match: { expect: "a glob over cgroup paths", example: 'match: "/system.slice/*.service"' },
  budget_ms: { expect: "a number of milliseconds", example: "budget_ms: 50" },
  importance: {
    expect: `a whole number ${IMPORTANCE_MIN}..${IMPORTANCE_MAX}`,
    example: "importance: 90",
  },
  namespace: { expect: "a Kubernetes namespace name", example: "namespace: shop" },
  pod: { expect: "a Kubernetes pod name", example: "pod: payment-api" },
};

type YamlPath = readonly (string | number)[];

/** Maps parsed values back to source lines. */
class Locator {
  // Per-map key index: a linear scan per lookup would be quadratic in a map with many (unknown) keys.
  private readonly index = new WeakMap<YAMLMap, Map<string, Pair>>();

  constructor(
    private readonly doc: Document.Parsed,
    private readonly lc: LineCounter,
  ) {}

  /** The first entry of `map` whose key reads as `key` (YAML keys are compared as JS keys are). */
  pair(map: YAMLMap, key: string): Pair | undefined {
    let keys = this.index.get(map);
    if (keys === undefined) {
      keys = new Map();
      for (const p of map.items) {
        const k = isScalar(p.key) ? String(p.key.value) : null;
        if (k !== null && !keys.has(k)) keys.set(k, p);
      }
      this.index.set(map, keys);
    }
    return keys.get(key);
  }

  lineAt(offset: number | undefined): number | null {
    return offset === undefined ? null : this.lc.linePos(offset).line;
  }

  private nodeLine(node: unknown): number | null {
    return isNode(node) && node.range ? this.lineAt(node.range[0]) : null;
  }

  /** The node at `path` (aliases resolved); undefined when some segment is missing. */
  node(path: YamlPath): unknown {
    let node: unknown = this.doc.contents;
    for (const seg of path) {
      if (isAlias(node)) node = node.resolve(this.doc);
      if (isMap(node)) {
        const pair = this.pair(node, String(seg));
        if (pair === undefined) return undefined;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === "number") {
        node = node.items[seg];
      } else {
        return undefined;
      }
    }
    return isAlias(node) ? node.resolve(this.doc) : node;
  }

  /** Line of the deepest node on `path` that exists; for a map entry, the line of its key. */
  line(path: YamlPath): number | null {
    let node: unknown = this.doc.contents;
    let line = this.nodeLine(node);
    for (const seg of path) {
      if (isMap(node)) {
        const pair = this.pair(node, String(seg));
        if (pair === undefined) break;
        line = this.nodeLine(pair.key) ?? line;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === "number") {
        node = node.items[seg];
        line = this.nodeLine(node) ?? line;
      } else {
        break;
      }
    }
    return line;
  }
}

type NumberKey = "budget_ms" | "importance";

/**
 * A budget_ms or importance as it is written in the file: an untagged plain scalar goes through the
 * line format's own text checks (same grammar, same messages); a tagged one is refused. Null for
 * anything else (absent, quoted, null, a mapping...), which zod's type check reports.
 */
function numberAsWritten(node: unknown, key: NumberKey): Check<number> | null {
  if (!isScalar(node)) return null;
  const scalar = node as Scalar;
  if (scalar.tag !== undefined) {
    const tag = scalar.tag.replace(/^tag:yaml\.org,2002:/, "!!");
    return {
      ok: false,
      message: `${key} has the YAML tag ${quote(tag)}: a tag changes how the value is read`,
      fix: `write the number without a tag, e.g. \`${FIELD_HELP[key]?.example ?? key}\``,
    };
  }
  if (scalar.type !== "PLAIN") return null;
  if (typeof scalar.value !== "number" && typeof scalar.value !== "string") return null;
  const text = scalar.source ?? String(scalar.value);
  return key === "budget_ms" ? parseBudgetText(text) : parseImportanceText(text);
}

/** zod's issues less the type errors of number fields checked as written. */
function withoutCheckedNumbers(
  issues: readonly z.ZodIssue[],
  checked: ReadonlySet<string>,
): z.ZodIssue[] {
  return issues.filter(
    (i) => !(i.code === z.ZodIssueCode.invalid_type && checked.has(i.path.map(String).join("."))),
  );
}

function fieldName(path: YamlPath): string {
  return path.map((s, i) => (typeof s === "number" ? `[${s}]` : i === 0 ? s : `.${s}`)).join("");
}

function valueAt(root: unknown, path: YamlPath): unknown {
  let v = root;
  for (const seg of path) {
    if (typeof v !== "object" || v === null) return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `the string ${quote(v)}`;
  return `${typeof v} ${String(v)}`;
}

// An SLO config nests 3 levels deep. The parser spends seconds on a megabyte of "[[[[" before it
// gives up, so absurd flow nesting is refused up front (a naive count: balanced brackets inside
// quoted globs cancel out, so real configs never come near the limit).
const MAX_FLOW_DEPTH = 100;

function flowDepthExceeded(text: string): number | null {
  let depth = 0;
  let line = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a) line++;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_FLOW_DEPTH) return line;
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) depth--;
  }
  return null;
}

export function parseYaml(text: string, file: string): ParseResult {
  const deep = flowDepthExceeded(text);
  if (deep !== null) {
    return fail(file, deep, null, {
      message: `YAML nests [ ] / { } more than ${MAX_FLOW_DEPTH} levels deep`,
      fix: "an SLO config needs three levels: the top, slos:, and each rule",
    });
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter: lc,
    prettyErrors: false,
    // The library's own duplicate-key check is quadratic in the keys of a map; duplicateKeys() is not.
    uniqueKeys: false,
    // The library would print its own warnings to stderr; ours go into the result instead.
    logLevel: "error",
  });
  const loc = new Locator(doc, lc);
  const errors = new ErrorList(file);

  for (const e of doc.errors) {
    errors.add(loc.lineAt(e.pos[0]), null, {
      message: `invalid YAML: ${e.message}`,
      fix: yamlFix(e.code),
    });
  }
  if (errors.items.length === 0) duplicateKeys(doc.contents, [], loc, errors);
  if (errors.items.length > 0) return finish(errors, [], []);
  const warnings = doc.warnings.map((w) => `${file}:${loc.lineAt(w.pos[0]) ?? "?"}: ${w.message}`);

  if (!isMap(doc.contents)) {
    return fail(file, loc.line([]), null, {
      message: "the YAML top level must be a mapping with version: and slos:",
      fix: "start the file with `version: 1` and list rules under `slos:`",
    });
  }
  let data: unknown;
  try {
    // maxAliasCount bounds "billion laughs" expansion.
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return fail(file, null, null, {
      message: `YAML cannot be resolved: ${errorMessage(err)}`,
      fix: "define every &anchor before its *alias, and do not build large structures from aliases",
    });
  }

  const defaultImportanceCheck = numberAsWritten(
    loc.node(["defaults", "importance"]),
    "importance",
  );
  const top = TopSchema.safeParse(data);
  if (!top.success) {
    const checked = new Set(defaultImportanceCheck ? ["defaults.importance"] : []);
    reportIssues(withoutCheckedNumbers(top.error.issues, checked), [], data, loc, errors);
  }
  const defaults = valueAt(data, ["defaults"]);
  const defaultImportance = valueAt(defaults, ["importance"]);
  let fallback: number | null = null;
  if (defaultImportanceCheck?.ok) fallback = defaultImportanceCheck.value;
  else if (defaultImportanceCheck) {
    errors.add(loc.line(["defaults", "importance"]), "defaults.importance", defaultImportanceCheck);
  }
  // A broken defaults: block has its own error; rules leaning on it must not each add "missing".
  const defaultsBroken =
    defaults !== undefined &&
    (!DefaultsSchema.safeParse(defaults).success ||
      (defaultImportance !== undefined && fallback === null));

  const slos = valueAt(data, ["slos"]);
  if (!Array.isArray(slos)) {
    errors.add(loc.line(["slos"]), "slos", slosShapeProblem(slos));
    return finish(errors, [], warnings);
  }
  if (slos.length > MAX_SLO_ENTRIES) {
    return fail(file, loc.line(["slos", MAX_SLO_ENTRIES]), "slos", tooManyRules(slos.length));
  }

  const dups = new DuplicateCheck();
  const rules: SloRule[] = [];
  slos.forEach((item: unknown, i) => {
    const ctx = { loc, errors, dups, file, fallback, defaultsBroken };
    const rule = parseYamlItem(item, ["slos", i], data, ctx);
    if (rule !== null) rules.push(rule);
  });
  return finish(errors, rules, warnings);
}

/** Reports every repeated key (by the line of the repeat); a later value would silently win. */
function duplicateKeys(node: unknown, path: YamlPath, loc: Locator, errors: ErrorList): void {
  if (isSeq(node)) {
    node.items.forEach((item, i) => duplicateKeys(item, [...path, i], loc, errors));
  } else if (isMap(node)) {
    for (const p of node.items) {
      const key = isScalar(p.key) ? String(p.key.value) : null;
      if (key === null) continue;
      const first = loc.pair(node, key);
      if (first !== undefined && first !== p) {
        const firstLine = loc.lineAt(isNode(first.key) ? first.key.range?.[0] : undefined);
        errors.add(
          loc.lineAt(isNode(p.key) ? p.key.range?.[0] : undefined),
          fieldName([...path, key]),
          {
            message: `duplicate key ${quote(key)}${firstLine === null ? "" : `, first set on line ${firstLine}`}`,
            fix: "keep one of the two: YAML would silently use the last",
          },
        );
      }
      duplicateKeys(p.value, [...path, key], loc, errors);
    }
  }
}

function slosShapeProblem(slos: unknown): Problem {
  if (slos === undefined) {
    return {
      message: "missing slos",
      fix: `add \`slos:\` with at least one rule; to run with no SLOs on purpose, write \`${NO_SLOS_YAML}\``,
    };
  }
  if (slos === null) {
    return {
      message: "slos has no value (a file caught mid-write looks the same)",
      fix: `add at least one rule under slos:, e.g. \`- { cgroup: /a/b, budget_ms: 50, importance: 90 }\`; to run with no SLOs on purpose, write \`${NO_SLOS_YAML}\``,
    };
  }
  return {
    message: `slos must be a list of rules, got ${describe(slos)}`,
    fix: "write each rule as a list item starting with `- cgroup:` or `- match:`",
  };
}

interface ItemContext {
  readonly loc: Locator;
  readonly errors: ErrorList;
  readonly dups: DuplicateCheck;
  readonly file: string;
  readonly fallback: number | null;
  readonly defaultsBroken: boolean;
}

function parseYamlItem(
  item: unknown,
  path: YamlPath,
  root: unknown,
  ctx: ItemContext,
): SloRule | null {
  const { loc, errors } = ctx;
  const before = errors.items.length;
  const itemLine = loc.line(path);
  const written: Record<NumberKey, Check<number> | null> = {
    budget_ms: numberAsWritten(loc.node([...path, "budget_ms"]), "budget_ms"),
    importance: numberAsWritten(loc.node([...path, "importance"]), "importance"),
  };
  // Every number YAML resolves comes from a scalar; should one ever not, say so rather than
  // silently dropping the rule.
  for (const key of ["budget_ms", "importance"] as const) {
    if (
      written[key] === null &&
      typeof (item as Record<string, unknown> | null)?.[key] === "number"
    ) {
      written[key] = {
        ok: false,
        message: `${key} could not be read as written`,
        fix: `write it like \`${FIELD_HELP[key]?.example}\``,
      };
    }
  }
  const parsed = ItemSchema.safeParse(item);
  if (!parsed.success) {
    const checked = new Set((["budget_ms", "importance"] as const).filter((k) => written[k]));
    reportIssues(withoutCheckedNumbers(parsed.error.issues, checked), path, root, loc, errors);
  }
  if (typeof item !== "object" || item === null || Array.isArray(item)) return null;
  // Value checks run on every field that has the right type, even when zod found other problems,
  // so one pass over the file reports everything.
  const raw = item as Record<string, unknown>;
  const at = (key: string) => ({
    line: loc.line([...path, key]),
    field: fieldName([...path, key]),
  });

  const target = checkTarget(raw, path, ctx);

  let budgetNs: number | null = null;
  if (written.budget_ms?.ok) budgetNs = written.budget_ms.value;
  else if (written.budget_ms) {
    errors.add(at("budget_ms").line, at("budget_ms").field, written.budget_ms);
  }

  let importance: number | null = null;
  if (written.importance?.ok) importance = written.importance.value;
  else if (written.importance) {
    errors.add(at("importance").line, at("importance").field, written.importance);
  } else if (raw.importance === undefined) {
    importance = ctx.fallback;
    if (importance === null && !ctx.defaultsBroken) {
      errors.add(itemLine, at("importance").field, {
        message: "missing importance, and defaults.importance is not set",
        fix: `add \`importance: 50\` to the rule, or \`defaults: { importance: 50 }\` at the top (${IMPORTANCE_MIN}..${IMPORTANCE_MAX})`,
      });
    }
  }

  const labels: { namespace?: string; pod?: string } = {};
  for (const key of ["namespace", "pod"] as const) {
    const v = raw[key];
    if (typeof v !== "string") continue;
    const p = checkLabel(key, v);
    if (p !== null) errors.add(at(key).line, at(key).field, p);
    else labels[key] = v;
  }

  if (
    errors.items.length !== before ||
    target === null ||
    budgetNs === null ||
    importance === null
  ) {
    return null;
  }
  return makeRule(target, budgetNs, importance, labels, ctx.file, itemLine);
}

/** The rule's cgroup path or glob, checked; null (with errors added) when unusable. */
function checkTarget(
  raw: Record<string, unknown>,
  path: YamlPath,
  ctx: ItemContext,
): string | null {
  const { loc, errors } = ctx;
  const hasCgroup = raw.cgroup !== undefined;
  if (hasCgroup === (raw.match !== undefined)) {
    errors.add(loc.line(path), fieldName(path), {
      message: hasCgroup ? "has both cgroup and match" : "has neither cgroup nor match",
      fix: "give each rule exactly one of `cgroup:` (one path) or `match:` (a glob)",
    });
    return null;
  }
  const key = hasCgroup ? "cgroup" : "match";
  const value = raw[key];
  if (typeof value !== "string") return null; // zod already reported the type
  const line = loc.line([...path, key]);
  const field = fieldName([...path, key]);
  const problem =
    checkCgroupPath(value, key) ??
    (hasCgroup && isGlob(value)
      ? {
          message: `cgroup ${quote(value)} contains glob characters (*, ?, [)`,
          fix: "use `match:` for a glob",
        }
      : null) ??
    (!hasCgroup && !isGlob(value)
      ? {
          message: `match ${quote(value)} has no glob characters (*, ?, [)`,
          fix: "use `cgroup:` for a single path",
        }
      : null) ??
    ctx.dups.check(value, line, hasCgroup ? "cgroup path" : "glob pattern");
  if (problem === null) return value;
  errors.add(line, field, problem);
  return null;
}

function reportIssues(
  issues: readonly z.ZodIssue[],
  prefix: YamlPath,
  root: unknown,
  loc: Locator,
  errors: ErrorList,
): void {
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === z.ZodIssueCode.unrecognized_keys) {
      const allowed =
        path.length === 0 ? TOP_KEYS : path[0] === "defaults" ? DEFAULTS_KEYS : ITEM_KEYS;
      for (const key of issue.keys) {
        const guess = closest(key, allowed);
        errors.add(loc.line([...path, key]), fieldName([...path, key]), {
          message: `unknown key ${quote(key)}${guess === null ? "" : ` (did you mean ${guess}?)`}`,
          fix: `remove it or correct the spelling; allowed keys here: ${allowed.join(", ")}`,
        });
      }
      continue;
    }
    const key = String(path[path.length - 1] ?? "");
    const help = FIELD_HELP[key];
    const value = valueAt(root, path);
    const field = fieldName(path);
    const line = loc.line(path);
    if (issue.code === z.ZodIssueCode.invalid_type && issue.received === "undefined") {
      errors.add(line, field, { message: `missing ${key}`, fix: `add ${help?.example ?? key}` });
    } else if (
      typeof path[path.length - 1] === "number" &&
      issue.code === z.ZodIssueCode.invalid_type
    ) {
      errors.add(line, field, {
        message: `a rule must be a mapping, got ${describe(value)}`,
        fix: "write the rule as `- cgroup: /a/b` with budget_ms: and importance: below it",
      });
    } else if (
      issue.code === z.ZodIssueCode.invalid_type ||
      issue.code === z.ZodIssueCode.invalid_literal
    ) {
      const unsupported = key === "version" && typeof value === "number";
      errors.add(line, field, {
        message: unsupported
          ? `unsupported version ${value}`
          : `${key} must be ${help?.expect ?? issue.expected}, got ${describe(value)}`,
        fix: `write it like \`${help?.example ?? key}\`${typeof value === "string" ? " (no quotes, no unit)" : ""}`,
      });
    } else {
      errors.add(line, field, {
        message: issue.message,
        fix: `see ${help?.example ?? "the example config"}`,
      });
    }
  }
}

function yamlFix(code: string): string {
  switch (code) {
    case "MULTIPLE_DOCS":
      return "keep a single YAML document: remove the extra `---`";
    case "TAB_AS_INDENT":
      return "indent with spaces, not tabs";
    default:
      return "fix the YAML syntax here: indent with spaces, and quote values that contain ': ' or ' #'";
  }
}

/** The allowed key within edit distance 2 of `key`, for "did you mean" hints. */
function closest(key: string, allowed: readonly string[]): string | null {
  if (key.length > 32) return null;
  let best: string | null = null;
  let bestDist = 3;
  for (const cand of allowed) {
    const d = editDistance(key.toLowerCase(), cand);
    if (d < bestDist) {
      best = cand;
      bestDist = d;
    }
  }
  // "budget" for "budget_ms": a prefix is a better hint than nothing.
  return best ?? allowed.find((c) => key.length >= 3 && c.startsWith(key.toLowerCase())) ?? null;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, sub));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}
