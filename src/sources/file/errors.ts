// What parsing a config file yields, shared by both formats: the errors (each with file, line,
// field and a fix), the error list a parser fills, and the final result.

import { MAX_SLO_ENTRIES, type SloRule } from "../../slo/model.js";
import type { Problem } from "../../slo/validate.js";

export interface ConfigError {
  readonly file: string;
  /** 1-based; null when the error is about the file as a whole. */
  readonly line: number | null;
  /** "budget_ms", "slos[2].importance", ...; null when no single field is at fault. */
  readonly field: string | null;
  readonly message: string;
  /** What to change in the file; formatConfigError appends it as "(fix: ...)". */
  readonly fix: string;
}

export type ParseResult =
  | { readonly ok: true; readonly rules: SloRule[]; readonly warnings: string[] }
  | { readonly ok: false; readonly errors: ConfigError[] };

// A garbage file can produce one error per line; past this many the rest is noise.
const MAX_REPORTED_ERRORS = 50;

export class ErrorList {
  readonly items: ConfigError[] = [];
  constructor(private readonly file: string) {}
  add(line: number | null, field: string | null, p: Problem): void {
    this.items.push({ file: this.file, line, field, message: p.message, fix: p.fix });
  }
}

export function fail(
  file: string,
  line: number | null,
  field: string | null,
  p: Problem,
): { ok: false; errors: ConfigError[] } {
  return { ok: false, errors: [{ file, line, field, message: p.message, fix: p.fix }] };
}

export function finish(errors: ErrorList, rules: SloRule[], warnings: string[]): ParseResult {
  if (errors.items.length === 0) return { ok: true, rules, warnings };
  // Stable sort: errors on one line keep the order they were found in (field order).
  const sorted = [...errors.items].sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
  if (sorted.length <= MAX_REPORTED_ERRORS) return { ok: false, errors: sorted };
  const shown = sorted.slice(0, MAX_REPORTED_ERRORS);
  const first = shown[0];
  shown.push({
    file: first?.file ?? "",
    line: null,
    field: null,
    message: `${sorted.length - MAX_REPORTED_ERRORS} more errors not shown`,
    fix: "fix the errors above first; if the file is not an SLO config at all, check the path",
  });
  return { ok: false, errors: shown };
}

/**
 * How a file says "no SLOs" on purpose. An empty file cannot say it: a file caught mid-write by an
 * editor or a config-management tool, or truncated, is empty too, and must not clear the SLOs.
 * Line format: this word on a line of its own (a rule's path always starts with "/").
 */
export const NO_SLOS_LINE = "none";
/** The same in YAML: an explicitly empty list. */
export const NO_SLOS_YAML = "slos: []";

export function noRules(): Problem {
  return {
    message:
      "the file has no rules (empty, or only comments and blank lines); a file caught mid-write or truncated looks the same, so it is rejected and the running SLOs stay",
    fix: `to run with no SLOs on purpose, write \`${NO_SLOS_LINE}\` on a line of its own (YAML: \`${NO_SLOS_YAML}\`); otherwise restore the rules`,
  };
}

export function tooManyRules(count: number): Problem {
  return {
    message: `${count} rules, more than the limit of ${MAX_SLO_ENTRIES} (the kernel's SLO map size); the whole file is rejected`,
    fix: `keep at most ${MAX_SLO_ENTRIES} rules: use one glob rule for many similar cgroups`,
  };
}
