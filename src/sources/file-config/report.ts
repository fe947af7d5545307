// Result plumbing shared by both config formats: problems, error lists and the final result.

import { MAX_SLO_ENTRIES, type SloRule } from "../../slo/model.js";
import type { ConfigError, ParseResult } from "../file-config.js";

// A garbage file can produce one error per line; past this many the rest is noise.
const MAX_REPORTED_ERRORS = 50;

export interface Problem {
  readonly message: string;
  readonly fix: string;
}

export type Check<T> =
  { readonly ok: true; readonly value: T } | ({ readonly ok: false } & Problem);

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

export function emptyWarning(file: string): string {
  return `${file}: no SLO rules in the file: every cgroup runs without an SLO`;
}

export function tooManyRules(count: number): Problem {
  return {
    message: `${count} rules, more than the limit of ${MAX_SLO_ENTRIES} (the kernel's SLO map size); the whole file is rejected`,
    fix: `keep at most ${MAX_SLO_ENTRIES} rules: use one glob rule for many similar cgroups`,
  };
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A numeric token inside a message: digits and dots only, so it needs cutting but no quotes. */
export function clip(token: string): string {
  return token.length > 24 ? `${token.slice(0, 24)}...` : token;
}

/** A user-supplied value inside a message: quoted, escaped and cut short, so messages stay one line. */
export function quote(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}...` : value);
}
