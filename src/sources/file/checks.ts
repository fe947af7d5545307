// Checks of the config file's own vocabulary, shared by both formats: cgroup paths and globs,
// duplicate rules, and building a rule. Values (budget, importance, labels) are checked by the
// vocabulary every source shares, src/slo/validate.ts.

import type { SloRule, WorkloadLabels } from "../../slo/model.js";
import { isGlob, quote, type Problem } from "../../slo/validate.js";

/** PATH_MAX: the kernel refuses longer paths, so such a rule could never match. */
export const MAX_CGROUP_PATH_BYTES = 4096;

function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

const PATH_EXAMPLE =
  "an absolute path under the cgroup2 mount, e.g. /kubepods/critical/payment-api";

// The checks keep paths canonical as well as safe: duplicates are detected by comparing strings,
// so "/a//b" or "/a/./b" would otherwise slip past as a second rule for the same cgroup.
export function checkCgroupPath(path: string, what: string): Problem | null {
  const shown = quote(path);
  if (path.length === 0) return { message: `${what} is empty`, fix: `write ${PATH_EXAMPLE}` };
  if (path.includes("\0")) {
    return { message: `${what} ${shown} contains a NUL byte`, fix: "remove the NUL byte" };
  }
  if (hasControlChar(path)) {
    return {
      message: `${what} ${shown} contains a control character`,
      fix: "remove it (cgroup names in a config are plain text)",
    };
  }
  if (/\s/.test(path)) {
    return {
      message: `${what} ${shown} contains whitespace`,
      fix: "an SLO config cannot name such a path directly: match it with a glob, ? for each space",
    };
  }
  if (Buffer.byteLength(path) > MAX_CGROUP_PATH_BYTES) {
    return {
      message: `${what} ${shown} is longer than ${MAX_CGROUP_PATH_BYTES} bytes`,
      fix: "use a shorter path or a glob",
    };
  }
  if (!path.startsWith("/")) {
    return {
      message: `${what} ${shown} must be absolute (start with "/")`,
      fix: `write ${PATH_EXAMPLE}`,
    };
  }
  if (path === "/") {
    return {
      message: `${what} "/" is the root cgroup, which cannot carry an SLO`,
      fix: "name a child cgroup, e.g. /system.slice/sshd.service",
    };
  }
  if (path.endsWith("/")) {
    return {
      message: `${what} ${shown} has a trailing slash`,
      fix: `remove the trailing "/": ${quote(path.replace(/\/+$/, ""))}`,
    };
  }
  for (const part of path.slice(1).split("/")) {
    if (part === "") {
      return {
        message: `${what} ${shown} has an empty path component ("//")`,
        fix: 'write a single "/" between components',
      };
    }
    if (part === ".." || part === ".") {
      return {
        message: `${what} ${shown} contains a "${part}" component`,
        fix: `write the canonical path without "${part}" components`,
      };
    }
    const bracket = checkBrackets(part);
    if (bracket !== null)
      return { message: `${what} ${shown} ${bracket}`, fix: "close every [ with ]" };
  }
  return null;
}

// A "[" that never closes would make the glob match nothing, silently.
function checkBrackets(component: string): string | null {
  for (let i = 0; i < component.length; i++) {
    if (component[i] !== "[") continue;
    // "]" right after "[" (or "[!") is a literal member of the class, as in fnmatch(3).
    let j = i + 1;
    if (component[j] === "!" || component[j] === "^") j++;
    if (component[j] === "]") j++;
    const close = component.indexOf("]", j);
    if (close < 0) return `has an unclosed "[" in ${quote(component)}`;
    i = close;
  }
  return null;
}

/** Remembers where each path/pattern was declared, so a duplicate can name both lines. */
export class DuplicateCheck {
  private readonly seen = new Map<string, number | null>();
  check(key: string, line: number | null, what: string): Problem | null {
    if (!this.seen.has(key)) {
      this.seen.set(key, line);
      return null;
    }
    const first = this.seen.get(key);
    const at = first === null || first === undefined ? "earlier" : `on line ${first}`;
    return {
      message: `duplicate ${what} ${quote(key)}: already declared ${at}`,
      fix: `keep one rule per ${what}: delete or merge one of the two`,
    };
  }
}

export function makeRule(
  path: string,
  budgetNs: number,
  importance: number,
  labels: WorkloadLabels,
  file: string,
  line: number | null,
): SloRule {
  return {
    match: isGlob(path) ? { kind: "glob", pattern: path } : { kind: "path", path },
    budgetNs,
    importance,
    labels,
    origin: { source: `file:${file}:${line ?? 0}` },
  };
}
