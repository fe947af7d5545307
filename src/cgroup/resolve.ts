// SLO rules -> the cgroups they name right now. A cgroup's id is its directory's inode number, the
// key of the BPF SLO map. Rules whose cgroup does not exist yet resolve to nothing and a warning;
// the agent resolves again on every rescan, so they apply once the cgroup shows up.
//
// When two rules name one cgroup, an explicit path beats a glob, then the earlier rule wins.
//
// When the rules name more cgroups than the SLO map holds, the most important ones get an SLO:
// importance (highest first), then an explicit path before a glob, then the lower budget, then
// rule order, then path. Where a rule sits in the file never decides it alone, so a broad glob
// written first cannot push out a critical cgroup named below it. Every cgroup left out is
// returned by name, so the agent can report each one.

import { readdirSync, statSync, type Dirent } from "node:fs";
import path from "node:path";
import { MAX_SLO_ENTRIES, type Origin, type ResolvedSlo, type SloRule } from "../slo/model.js";
import { isGlob } from "../slo/validate.js";
import { CGROUP_ROOT } from "./cgroupfs.js";

/** SLO_MAX_CGROUP_DEPTH in bpf/scx_slo.h: the scheduler looks no deeper for a task's SLO. */
export const MAX_GLOB_DEPTH = 16;
/** Directories one glob may read in one resolve, so a runaway pattern cannot stall the agent. */
export const MAX_GLOB_DIRS = 65_536;

export interface ResolveOptions {
  /** The cgroup2 mount (tests pass a temp folder). */
  readonly root?: string;
  /** Deepest pattern a glob may have, in path components. */
  readonly maxDepth?: number;
  /** At most this many cgroups in the result (the BPF map's size). */
  readonly maxEntries?: number;
}

/** A cgroup a rule names that gets no SLO because the map is full of more important ones. */
export interface LeftOutCgroup {
  readonly cgroupPath: string;
  readonly importance: number;
  readonly budgetNs: number;
  /** The rule that named it. */
  readonly origin: Origin;
}

export interface ResolveResult {
  /** In rule order, then path order within a glob; one entry per cgroup. */
  readonly slos: ResolvedSlo[];
  /** One line per rule that resolved to nothing or to less than it names, with the reason. */
  readonly warnings: string[];
  /** Rules that matched no existing cgroup (retried on the next resolve). */
  readonly unresolved: number;
  /**
   * Every existing cgroup the rules name beyond the map's capacity (maxEntries), least important
   * last; empty while everything fits.
   */
  readonly leftOut: LeftOutCgroup[];
}

/**
 * One path component of a glob as a RegExp: `*` any run of characters, `?` one character,
 * `[...]` a class (`[!...]` or `[^...]` negated, a leading `]` literal), `\x` a literal x.
 * Never crosses "/" (components are matched one by one).
 */
export function globComponentRegExp(component: string): RegExp {
  let re = "";
  for (let i = 0; i < component.length; i++) {
    const c = component[i]!;
    if (c === "*") re += ".*";
    else if (c === "?") re += ".";
    else if (c === "\\" && i + 1 < component.length) re += escapeRe(component[++i]!);
    else if (c === "[") {
      let j = i + 1;
      let negate = false;
      if (component[j] === "!" || component[j] === "^") {
        negate = true;
        j++;
      }
      let body = "";
      if (component[j] === "]") {
        body += "\\]";
        j++;
      }
      const close = component.indexOf("]", j);
      if (close < 0) {
        re += "\\[";
        continue;
      }
      for (const ch of component.slice(j, close))
        body += ch === "\\" || ch === "^" ? `\\${ch}` : ch;
      re += `[${negate ? "^" : ""}${body}]`;
      i = close;
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`, "s");
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&");
}

function unescapeLiteral(component: string): string {
  return component.replace(/\\(.)/g, "$1");
}

interface GlobWalk {
  readonly paths: string[];
  readonly truncated: boolean;
}

/** Cgroup paths ("/a/b", sorted) under root that match the glob pattern ("/a/*"). */
export function expandGlob(
  pattern: string,
  root: string = CGROUP_ROOT,
  maxDirs: number = MAX_GLOB_DIRS,
): GlobWalk {
  const parts = pattern.split("/").filter((p) => p !== "");
  let current = [""];
  let dirsRead = 0;
  let truncated = false;
  for (const part of parts) {
    const next: string[] = [];
    if (!isGlob(part)) {
      const name = unescapeLiteral(part);
      for (const base of current) {
        const candidate = `${base}/${name}`;
        if (isDirectory(path.join(root, candidate))) next.push(candidate);
      }
    } else {
      const re = globComponentRegExp(part);
      for (const base of current) {
        if (dirsRead >= maxDirs) {
          truncated = true;
          break;
        }
        dirsRead++;
        for (const entry of readDirs(path.join(root, base))) {
          if (re.test(entry)) next.push(`${base}/${entry}`);
        }
      }
    }
    current = next;
    if (current.length === 0) break;
  }
  return { paths: current.sort(), truncated };
}

function readDirs(dir: string): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return []; // removed while walking, or not a directory: nothing below it
  }
  return entries.filter((e) => e.isDirectory()).map((e) => e.name);
}

function isDirectory(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** The cgroup id (directory inode) of a path relative to root; null when it does not exist. */
function statCgroup(root: string, cgroupPath: string): bigint | null {
  try {
    const st = statSync(path.join(root, cgroupPath), { bigint: true });
    return st.isDirectory() ? st.ino : null;
  } catch {
    return null;
  }
}

interface Claim {
  readonly ruleIndex: number;
  readonly explicit: boolean;
  /** Known when the claim came from a stat already (explicit paths). */
  readonly id?: bigint;
}

/** Resolves rules against the cgroup tree under options.root. Never throws for a missing cgroup. */
export function resolveRules(
  rules: readonly SloRule[],
  options: ResolveOptions = {},
): ResolveResult {
  const root = options.root ?? CGROUP_ROOT;
  const maxDepth = options.maxDepth ?? MAX_GLOB_DEPTH;
  const maxEntries = options.maxEntries ?? MAX_SLO_ENTRIES;
  const warnings: string[] = [];
  let unresolved = 0;

  // Which rule owns each cgroup path: explicit beats glob, then rule order.
  const owner = new Map<string, Claim>();
  const claim = (cgroupPath: string, c: Claim) => {
    const prev = owner.get(cgroupPath);
    if (
      prev === undefined ||
      (c.explicit && !prev.explicit) ||
      (c.explicit === prev.explicit && c.ruleIndex < prev.ruleIndex)
    ) {
      owner.set(cgroupPath, c);
    }
  };

  rules.forEach((rule, ruleIndex) => {
    const where = rule.origin.source;
    if (rule.match.kind === "path") {
      const id = statCgroup(root, rule.match.path);
      if (id !== null) {
        claim(rule.match.path, { ruleIndex, explicit: true, id });
      } else {
        unresolved++;
        warnings.push(
          `${where}: cgroup ${rule.match.path} does not exist (yet); the rule applies once it is created`,
        );
      }
      return;
    }
    const pattern = rule.match.pattern;
    const depth = pattern.split("/").filter((p) => p !== "").length;
    if (depth > maxDepth) {
      unresolved++;
      warnings.push(
        `${where}: glob ${pattern} is ${depth} levels deep, deeper than the scheduler's limit of ${maxDepth}; it matches nothing`,
      );
      return;
    }
    const walk = expandGlob(pattern, root);
    if (walk.truncated) {
      warnings.push(
        `${where}: glob ${pattern} reads more than ${MAX_GLOB_DIRS} directories; only part of the tree was matched (use a more specific pattern)`,
      );
    }
    if (walk.paths.length === 0) {
      unresolved++;
      warnings.push(
        `${where}: glob ${pattern} matches no cgroup (yet); the rule applies to matching cgroups once they are created`,
      );
    }
    for (const p of walk.paths) claim(p, { ruleIndex, explicit: false });
  });

  // Candidates in rule order, then path order, so the result is stable across rescans.
  const byRule = new Map<number, string[]>();
  for (const [p, c] of owner) {
    const list = byRule.get(c.ruleIndex) ?? [];
    list.push(p);
    byRule.set(c.ruleIndex, list);
  }
  const candidates: Candidate[] = [];
  const seenIds = new Set<bigint>();
  for (const ruleIndex of [...byRule.keys()].sort((a, b) => a - b)) {
    for (const cgroupPath of byRule.get(ruleIndex)!.sort()) {
      const c = owner.get(cgroupPath)!;
      const id = c.id ?? statCgroup(root, cgroupPath);
      if (id === null || seenIds.has(id)) continue; // removed since the walk
      seenIds.add(id);
      candidates.push({ id, cgroupPath, ruleIndex, explicit: c.explicit });
    }
  }

  let kept = candidates;
  const leftOut: LeftOutCgroup[] = [];
  if (candidates.length > maxEntries) {
    const ranked = [...candidates].sort((a, b) => byImportance(rules, a, b));
    const keep = new Set(ranked.slice(0, maxEntries));
    kept = candidates.filter((c) => keep.has(c));
    for (const c of ranked.slice(maxEntries)) {
      const rule = rules[c.ruleIndex]!;
      leftOut.push({
        cgroupPath: c.cgroupPath,
        importance: rule.importance,
        budgetNs: rule.budgetNs,
        origin: rule.origin,
      });
    }
  }
  const slos: ResolvedSlo[] = kept.map((c) => {
    const rule = rules[c.ruleIndex]!;
    return {
      cgroupId: c.id,
      cgroupPath: c.cgroupPath,
      budgetNs: rule.budgetNs,
      importance: rule.importance,
      labels: rule.labels,
      origin: rule.origin,
    };
  });
  return { slos, warnings, unresolved, leftOut };
}

interface Candidate {
  readonly id: bigint;
  readonly cgroupPath: string;
  readonly ruleIndex: number;
  readonly explicit: boolean;
}

/** Who gets a map entry first when not all fit: see the top of this file. */
function byImportance(rules: readonly SloRule[], a: Candidate, b: Candidate): number {
  const ra = rules[a.ruleIndex]!;
  const rb = rules[b.ruleIndex]!;
  return (
    rb.importance - ra.importance ||
    Number(b.explicit) - Number(a.explicit) ||
    ra.budgetNs - rb.budgetNs ||
    a.ruleIndex - b.ruleIndex ||
    (a.cgroupPath < b.cgroupPath ? -1 : a.cgroupPath > b.cgroupPath ? 1 : 0)
  );
}

/**
 * Cgroup paths for the given ids (directory inodes), found by walking the tree under root up to
 * maxDepth levels. Ids not found are absent from the result.
 */
export function cgroupPathsById(
  ids: Iterable<bigint>,
  root: string = CGROUP_ROOT,
  maxDepth: number = MAX_GLOB_DEPTH,
): Map<bigint, string> {
  const wanted = new Set(ids);
  const found = new Map<bigint, string>();
  const walk = (rel: string, depth: number) => {
    if (found.size === wanted.size || depth > maxDepth) return;
    for (const name of readDirs(path.join(root, rel))) {
      const child = `${rel}/${name}`;
      const id = statCgroup(root, child);
      if (id !== null && wanted.has(id)) found.set(id, child);
      walk(child, depth + 1);
    }
  };
  if (wanted.size > 0) walk("", 1);
  return found;
}
