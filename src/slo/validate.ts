// The validation vocabulary every SLO source shares: the config file (both formats), pod
// annotations and SloPolicy objects accept exactly the same values, written in the same number
// grammar, and word what is wrong and how to fix it the same way.
import {
  BUDGET_MAX_MS,
  BUDGET_MIN_MS,
  IMPORTANCE_MAX,
  IMPORTANCE_MIN,
  isValidBudgetMs,
  isValidImportance,
  NS_PER_MS,
} from "./model.js";

/** What is wrong, and what to change. */
export interface Problem {
  readonly message: string;
  readonly fix: string;
}

export type Check<T> =
  { readonly ok: true; readonly value: T } | ({ readonly ok: false } & Problem);

/**
 * The one number grammar for budgets and importance, wherever they are written: digits with an
 * optional decimal fraction. No sign, exponent, hex, octal, underscores or units.
 */
export const DECIMAL = /^\d+(?:\.\d+)?$/;

/** Characters that make a cgroup path a glob (`*`, `?`, `[`). */
export const GLOB_CHARS = /[*?[]/;

export function isGlob(path: string): boolean {
  return GLOB_CHARS.test(path);
}

/** A plain JSON object (not null, not an array). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export const BUDGET_FIX = `use a budget from ${BUDGET_MIN_MS} to ${BUDGET_MAX_MS} ms`;
export const IMPORTANCE_FIX = `use a whole number from ${IMPORTANCE_MIN} (least) to ${IMPORTANCE_MAX} (most important)`;

/** A budget in milliseconds, range-checked; the value is in nanoseconds. */
export function checkBudgetMs(ms: number, shown: string): Check<number> {
  if (Number.isNaN(ms)) {
    return { ok: false, message: `budget_ms ${shown} is not a number`, fix: BUDGET_FIX };
  }
  if (ms < BUDGET_MIN_MS) {
    return {
      ok: false,
      message: `budget_ms ${shown} is below the minimum of ${BUDGET_MIN_MS} ms`,
      fix: BUDGET_FIX,
    };
  }
  // Infinity lands here too, as does a 400-digit number.
  if (ms > BUDGET_MAX_MS) {
    return {
      ok: false,
      message: `budget_ms ${shown} is above the maximum of ${BUDGET_MAX_MS} ms`,
      fix: BUDGET_FIX,
    };
  }
  if (!isValidBudgetMs(ms)) {
    return {
      ok: false,
      message: `budget_ms ${shown} is finer than 1 ns`,
      fix: "use at most 6 decimal places",
    };
  }
  return { ok: true, value: Math.round(ms * NS_PER_MS) };
}

export function checkImportance(n: number, shown: string): Check<number> {
  if (Number.isFinite(n) && !Number.isInteger(n)) {
    return { ok: false, message: `importance ${shown} is not an integer`, fix: IMPORTANCE_FIX };
  }
  if (!isValidImportance(n)) {
    return {
      ok: false,
      message: `importance ${shown} is outside ${IMPORTANCE_MIN}..${IMPORTANCE_MAX}`,
      fix: IMPORTANCE_FIX,
    };
  }
  return { ok: true, value: n };
}

/** A number token cut for a message: digits and dots need no quotes, only a length limit. */
export function clip(token: string): string {
  return token.length > 24 ? `${token.slice(0, 24)}...` : token;
}

/** A user-supplied value inside a message: quoted, escaped and cut short, so messages stay one line. */
export function quote(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}...` : value);
}

/** A budget written as text (a config token, an annotation): DECIMAL, then the range check. */
export function parseBudgetText(text: string): Check<number> {
  if (DECIMAL.test(text)) return checkBudgetMs(Number(text), clip(text));
  if (/^-\d/.test(text)) {
    return { ok: false, message: `budget_ms ${quote(text)} is negative`, fix: BUDGET_FIX };
  }
  return {
    ok: false,
    message: `budget_ms ${quote(text)} is not a plain number of milliseconds`,
    fix: "write digits with an optional decimal fraction and no unit, e.g. 50 or 1.5",
  };
}

/** An importance written as text: DECIMAL (so "1.5" is reported as not whole), then the range. */
export function parseImportanceText(text: string): Check<number> {
  if (DECIMAL.test(text)) return checkImportance(Number(text), clip(text));
  if (/^-\d+(?:\.\d+)?$/.test(text)) return checkImportance(Number(text), clip(text));
  return { ok: false, message: `importance ${quote(text)} is not a number`, fix: IMPORTANCE_FIX };
}

// Labels become Prometheus label values; Kubernetes' own name rules keep them bounded and clean.
const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

/** A Kubernetes namespace (DNS label) or pod name (DNS subdomain). */
export function checkLabel(key: "namespace" | "pod", v: string): Problem | null {
  const [max, re, kind] =
    key === "namespace" ? [63, DNS_LABEL, "DNS label"] : [253, DNS_SUBDOMAIN, "DNS subdomain"];
  if (v.length > 0 && v.length <= max && re.test(v)) return null;
  return {
    message: `${key} ${quote(v)} is not a valid Kubernetes ${key} name`,
    fix: `use lowercase letters, digits and "-"${key === "pod" ? ' and "."' : ""}, at most ${max} characters (a ${kind})`,
  };
}
