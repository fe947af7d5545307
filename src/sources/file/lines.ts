// The line format of the original tool: `cgroup_path budget_ms importance` per line, "#" comments.
// A file with no rules is an error; `none` alone on a line says "no SLOs" on purpose.

import { MAX_SLO_ENTRIES, type SloRule } from "../../slo/model.js";
import { isGlob, parseBudgetText, parseImportanceText, quote } from "../../slo/validate.js";
import { DuplicateCheck, checkCgroupPath, makeRule } from "./checks.js";
import {
  ErrorList,
  NO_SLOS_LINE,
  fail,
  finish,
  noRules,
  tooManyRules,
  type ParseResult,
} from "./errors.js";

const LINE_SYNTAX =
  "<cgroup_path> <budget_ms> <importance>, e.g. /kubepods/critical/payment-api 50 90";

const LINE_FIELDS = ["cgroup_path", "budget_ms", "importance"] as const;
// "#" starts a comment at the start of a line or after whitespace; inside a token it is part of a
// cgroup name (legal in cgroupfs).
const COMMENT = /(?:^|\s)#/;

export function parseLines(text: string, file: string): ParseResult {
  const entries: { line: number; fields: string[] }[] = [];
  text.split("\n").forEach((raw, i) => {
    const cut = raw.search(COMMENT);
    const content = (cut < 0 ? raw : raw.slice(0, cut)).trim();
    if (content !== "") entries.push({ line: i + 1, fields: content.split(/\s+/) });
  });
  if (entries.length === 0) return fail(file, null, null, noRules());
  const none = entries.find((e) => e.fields.length === 1 && e.fields[0] === NO_SLOS_LINE);
  if (none !== undefined) {
    if (entries.length === 1) return { ok: true, rules: [], warnings: [] };
    return fail(file, none.line, null, {
      message: `\`${NO_SLOS_LINE}\` (no SLOs) stands beside ${entries.length - 1} rule${entries.length === 2 ? "" : "s"}`,
      fix: `keep either the rules or the line \`${NO_SLOS_LINE}\`, not both`,
    });
  }
  const over = entries[MAX_SLO_ENTRIES];
  if (over !== undefined) return fail(file, over.line, null, tooManyRules(entries.length));

  const errors = new ErrorList(file);
  const dups = new DuplicateCheck();
  const rules: SloRule[] = [];
  for (const { line, fields } of entries) {
    const rule = parseRuleLine(fields, line, file, errors, dups);
    if (rule !== null) rules.push(rule);
  }
  return finish(errors, rules, []);
}

function parseRuleLine(
  fields: string[],
  line: number,
  file: string,
  errors: ErrorList,
  dups: DuplicateCheck,
): SloRule | null {
  const [pathTok = "", budgetTok, importanceTok] = fields;
  // A YAML line in a line-format file ("slos:", "- cgroup: /a") would otherwise produce a pile of
  // field errors; the one thing to say is which format the file was read as.
  if (/^(?:[\w.-]+:|-$)/.test(pathTok)) {
    errors.add(line, "cgroup_path", {
      message: `${quote(pathTok)} looks like YAML, but the file was read as line format`,
      fix: `for YAML, make \`version: 1\` the first line; for line format, write ${LINE_SYNTAX}`,
    });
    return null;
  }
  if (fields.length > LINE_FIELDS.length) {
    // The extra fields are most often a path with a space in it, so the rest is not checked.
    errors.add(line, null, {
      message: `too many fields: a rule has ${LINE_FIELDS.length} (${LINE_FIELDS.join(" ")}), found ${fields.length}`,
      fix: `write ${LINE_SYNTAX}; cgroup paths cannot contain spaces, and comments start with " #"`,
    });
    return null;
  }
  const before = errors.items.length;
  if (fields.length < LINE_FIELDS.length) {
    const missing = LINE_FIELDS.slice(fields.length);
    errors.add(line, missing[0] ?? null, {
      message: `missing ${missing.join(" and ")}: a rule has ${LINE_FIELDS.length} fields, found ${fields.length}`,
      fix: `write ${LINE_SYNTAX}`,
    });
  }

  let path: string | null = null;
  const p = checkCgroupPath(pathTok, "cgroup_path");
  if (p !== null) errors.add(line, "cgroup_path", p);
  else {
    const dup = dups.check(pathTok, line, isGlob(pathTok) ? "glob pattern" : "cgroup path");
    if (dup !== null) errors.add(line, "cgroup_path", dup);
    else path = pathTok;
  }

  let budgetNs: number | null = null;
  if (budgetTok !== undefined) {
    const b = parseBudgetText(budgetTok);
    if (b.ok) budgetNs = b.value;
    else errors.add(line, "budget_ms", b);
  }

  let importance: number | null = null;
  if (importanceTok !== undefined) {
    const imp = parseImportanceText(importanceTok);
    if (imp.ok) importance = imp.value;
    else errors.add(line, "importance", imp);
  }

  if (errors.items.length !== before || path === null || budgetNs === null || importance === null) {
    return null;
  }
  return makeRule(path, budgetNs, importance, {}, file, line);
}
