// SLO rules -> the cgroups they name right now. A cgroup's id is its directory's inode number, the
// key of the BPF SLO map. Rules whose cgroup does not exist yet resolve to nothing and a warning;
// the agent resolves again on every rescan, so they apply once the cgroup shows up.
//
// When two rules name one cgroup, an explicit path beats a glob, then the earlier rule wins.

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
  /**
   * Folders (relative to root, "" for the root itself) in which a cgroup created or removed
   * could change this result: watching them is enough to know when to resolve again.
   */
  readonly watchDirs: ReadonlySet<string>;
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
  /** Folders in which a new or removed entry could change the result ("" is the root). */
  readonly watch: string[];
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
  const watch: string[] = [];
  for (const part of parts) {
    watch.push(...current);
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
  return { paths: current.sort(), truncated, watch };
}

/** The folder that holds cgroupPath ("" for the root's own children). */
function parentOf(cgroupPath: string): string {
  const slash = cgroupPath.lastIndexOf("/");
  return slash < 0 ? "" : cgroupPath.slice(0, slash);
}

/** The deepest existing folder on the way to cgroupPath, or its parent when it exists. */
function nearestWatch(root: string, cgroupPath: string): string {
  const parts = cgroupPath.split("/").filter((p) => p !== "");
  let base = "";
  for (const part of parts.slice(0, -1)) {
    const next = `${base}/${part}`;
    if (!isDirectory(path.join(root, next))) break;
    base = next;
  }
  return base;
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
    return statSync(dir, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch {
    return false;
  }
}

/** The cgroup id (directory inode) of a path relative to root; null when it does not exist. */
function statCgroup(root: string, cgroupPath: string): bigint | null {
  try {
    // No exception for a cgroup that does not exist (yet): building one costs a lot under
    // emulation, and rules naming future cgroups are common.
    const st = statSync(path.join(root, cgroupPath), { bigint: true, throwIfNoEntry: false });
    return st?.isDirectory() ? st.ino : null;
  } catch {
    return null;
  }
}

/** What one rule names in the tree now, before the rules are weighed against each other. */
export interface RuleMatch {
  /** Existing cgroups the rule names, with their ids, in path order. */
  readonly cgroups: readonly { readonly path: string; readonly id: bigint }[];
  /** Folders in which a cgroup created or removed could change this match. */
  readonly watch: readonly string[];
  readonly warnings: readonly string[];
  /** The rule names no existing cgroup. */
  readonly unresolved: boolean;
}

/** The cgroups one rule names now (each stat-ed for its id). Never throws for a missing cgroup. */
export function matchRule(
  rule: SloRule,
  root: string = CGROUP_ROOT,
  maxDepth: number = MAX_GLOB_DEPTH,
): RuleMatch {
  const where = rule.origin.source;
  if (rule.match.kind === "path") {
    const id = statCgroup(root, rule.match.path);
    // An existing cgroup's parent exists: watch it without a walk (this runs for every pod).
    const watch = [id !== null ? parentOf(rule.match.path) : nearestWatch(root, rule.match.path)];
    if (id !== null) {
      return { cgroups: [{ path: rule.match.path, id }], watch, warnings: [], unresolved: false };
    }
    return {
      cgroups: [],
      watch,
      warnings: [
        `${where}: cgroup ${rule.match.path} does not exist (yet); the rule applies once it is created`,
      ],
      unresolved: true,
    };
  }
  const pattern = rule.match.pattern;
  const depth = pattern.split("/").filter((p) => p !== "").length;
  if (depth > maxDepth) {
    return {
      cgroups: [],
      watch: [],
      warnings: [
        `${where}: glob ${pattern} is ${depth} levels deep, deeper than the scheduler's limit of ${maxDepth}; it matches nothing`,
      ],
      unresolved: true,
    };
  }
  const walk = expandGlob(pattern, root);
  const warnings: string[] = [];
  if (walk.truncated) {
    warnings.push(
      `${where}: glob ${pattern} reads more than ${MAX_GLOB_DIRS} directories; only part of the tree was matched (use a more specific pattern)`,
    );
  }
  if (walk.paths.length === 0) {
    warnings.push(
      `${where}: glob ${pattern} matches no cgroup (yet); the rule applies to matching cgroups once they are created`,
    );
  }
  const cgroups: { path: string; id: bigint }[] = [];
  for (const p of walk.paths) {
    const id = statCgroup(root, p);
    if (id !== null) cgroups.push({ path: p, id }); // else removed since the walk
  }
  return { cgroups, watch: walk.watch, warnings, unresolved: walk.paths.length === 0 };
}

/** A cgroup the rules name that gets no SLO, because more important ones fill the map. */
export interface LeftOutCgroup {
  readonly cgroupPath: string;
  readonly importance: number;
  readonly budgetNs: number;
  /** The rule that named it. */
  readonly origin: Origin;
}

interface Claim {
  readonly ruleIndex: number;
  readonly explicit: boolean;
  readonly id: bigint;
}

interface Candidate extends Claim {
  readonly cgroupPath: string;
}

/**
 * Which cgroups keep their SLO when the map is too small: the more important first; then an
 * explicit path before a glob, the tighter budget, the earlier rule, and path order.
 */
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
 * The rules' matches weighed against each other: each cgroup goes to one rule (an explicit path
 * beats a glob, then the earlier rule wins), and at most maxEntries cgroups are kept, the most
 * important ones.
 */
export function combineMatches(
  rules: readonly SloRule[],
  matches: readonly RuleMatch[],
  maxEntries: number = MAX_SLO_ENTRIES,
): ResolveResult {
  const warnings: string[] = [];
  const watchDirs = new Set<string>();
  let unresolved = 0;

  // Which rule owns each cgroup path: explicit beats glob, then rule order.
  const owner = new Map<string, Claim>();
  rules.forEach((rule, ruleIndex) => {
    const m = matches[ruleIndex]!;
    for (const dir of m.watch) watchDirs.add(dir);
    warnings.push(...m.warnings);
    if (m.unresolved) unresolved++;
    const explicit = rule.match.kind === "path";
    for (const { path: p, id } of m.cgroups) {
      const prev = owner.get(p);
      if (
        prev === undefined ||
        (explicit && !prev.explicit) ||
        (explicit === prev.explicit && ruleIndex < prev.ruleIndex)
      ) {
        owner.set(p, { ruleIndex, explicit, id });
      }
    }
  });

  // Candidates in rule order, then path order, so the result is stable from one pass to the next.
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
      if (seenIds.has(c.id)) continue;
      seenIds.add(c.id);
      candidates.push({ ...c, cgroupPath });
    }
  }

  // Over capacity: the most important cgroups keep their SLO, never the earliest rules'.
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
  return { slos, warnings, unresolved, leftOut, watchDirs };
}

/** Resolves rules against the cgroup tree under options.root. Never throws for a missing cgroup. */
export function resolveRules(
  rules: readonly SloRule[],
  options: ResolveOptions = {},
): ResolveResult {
  const root = options.root ?? CGROUP_ROOT;
  const maxDepth = options.maxDepth ?? MAX_GLOB_DEPTH;
  return combineMatches(
    rules,
    rules.map((r) => matchRule(r, root, maxDepth)),
    options.maxEntries ?? MAX_SLO_ENTRIES,
  );
}

/**
 * resolveRules for a caller that knows what changed since its last call: a rule is matched again
 * only if it is new, or a cgroup was created or removed in one of the folders its match depends
 * on; the others keep their last match. `changed: "all"` matches every rule again.
 */
export class IncrementalResolver {
  private cache = new Map<string, RuleMatch>();

  constructor(private readonly options: ResolveOptions = {}) {}

  resolve(rules: readonly SloRule[], changed: ReadonlySet<string> | "all"): ResolveResult {
    const root = this.options.root ?? CGROUP_ROOT;
    const maxDepth = this.options.maxDepth ?? MAX_GLOB_DEPTH;
    const next = new Map<string, RuleMatch>();
    const matches = rules.map((rule) => {
      const target = rule.match.kind === "path" ? rule.match.path : rule.match.pattern;
      const key = `${rule.match.kind}:${target}\0${rule.origin.source}`;
      let m = next.get(key) ?? this.cache.get(key);
      if (
        m === undefined ||
        (changed === "all" && !next.has(key)) ||
        (changed !== "all" && !next.has(key) && m.watch.some((d) => changed.has(d)))
      ) {
        m = matchRule(rule, root, maxDepth);
      }
      next.set(key, m);
      return m;
    });
    this.cache = next;
    return combineMatches(rules, matches, this.options.maxEntries ?? MAX_SLO_ENTRIES);
  }
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
