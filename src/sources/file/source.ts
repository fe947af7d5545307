// The config file as a rule source, kept current: re-read when it changes (fs.watch on its
// folder, debounced, plus a slow stat poll as a safety net, since editors and ConfigMap mounts
// replace files in ways a watch can miss) and when asked (SIGHUP). A bad new file is rejected
// whole: its errors are logged one per line and the running rules stay.

import { watch, statSync, type FSWatcher } from "node:fs";
import path from "node:path";
import type { SloRule } from "../../slo/model.js";
import { Coalescer } from "../../util/coalesce.js";
import { errorMessage, silentLogger, type Logger } from "../../util/log.js";
import type { ReloadResult, RuleSource } from "../rule-source.js";
import { formatConfigError, loadConfigFile } from "./parse.js";

export interface FileSourceOptions {
  readonly file: string;
  readonly log?: Logger;
  /** Called after every reload attempt that read the file (metrics). */
  readonly onReload?: (result: ReloadResult) => void;
  readonly debounceMs?: number;
  /** Safety-net stat poll. */
  readonly pollMs?: number;
}

interface FileStamp {
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

function stamp(file: string): FileStamp | null {
  try {
    const st = statSync(file);
    return { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
  } catch {
    return null;
  }
}

function sameStamp(a: FileStamp | null, b: FileStamp | null): boolean {
  if (a === null || b === null) return a === b;
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

export class ConfigFileSource implements RuleSource {
  readonly kind = "file" as const;
  private rules: readonly SloRule[] | null = null;
  private rulesKey = "";
  private watcher: FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private poll: NodeJS.Timeout | null = null;
  private lastStamp: FileStamp | null = null;
  private onChange: () => void = () => {};
  private readonly reloadRuns = new Coalescer((why) => this.reloadOnce(why));
  private readonly log: Logger;
  /** Number of reloads finished (tests wait on it). */
  reloads = 0;

  constructor(private readonly options: FileSourceOptions) {
    this.log = options.log ?? silentLogger;
  }

  get description(): string {
    return this.options.file;
  }

  current(): readonly SloRule[] | null {
    return this.rules;
  }

  async start(onChange: () => void): Promise<void> {
    this.onChange = onChange;
    await this.reload("start");
    this.ensureWatch();
    this.poll = setInterval(() => {
      this.ensureWatch();
      if (!sameStamp(stamp(this.options.file), this.lastStamp)) this.trigger();
    }, this.options.pollMs ?? 5000);
  }

  async stop(): Promise<void> {
    this.watcher?.close();
    this.watcher = null;
    if (this.debounce) clearTimeout(this.debounce);
    if (this.poll) clearInterval(this.poll);
    this.debounce = this.poll = null;
    await this.reloadRuns.idle();
  }

  /** (Re)creates the folder watch; the folder may not exist yet, or may have been replaced. */
  private ensureWatch(): void {
    if (this.watcher !== null) return;
    const dir = path.dirname(this.options.file);
    const base = path.basename(this.options.file);
    try {
      this.watcher = watch(dir, { persistent: false }, (_event, name) => {
        // ConfigMap mounts swap a "..data" symlink rather than the file: any change in the folder
        // is a reason to look, and the stamp check below skips unrelated ones.
        if (name === null || name === base || name.startsWith("..")) this.trigger();
        else if (!sameStamp(stamp(this.options.file), this.lastStamp)) this.trigger();
      });
      this.watcher.on("error", () => {
        this.watcher?.close();
        this.watcher = null; // the stat poll recreates it
      });
    } catch {
      this.watcher = null;
    }
  }

  private trigger(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      const now = stamp(this.options.file);
      if (sameStamp(now, this.lastStamp)) return;
      void this.reload("change");
    }, this.options.debounceMs ?? 200);
  }

  /** Reads and applies the file; a bad file leaves the running rules in force. */
  reload(why: string): Promise<void> {
    if (why === "SIGHUP") this.log.info(`SIGHUP: reloading ${this.options.file}`);
    return this.reloadRuns.request(why);
  }

  private async reloadOnce(why: string): Promise<void> {
    const file = this.options.file;
    this.lastStamp = stamp(file);
    let result;
    try {
      result = await loadConfigFile(file);
    } catch (err) {
      result = {
        ok: false as const,
        errors: [{ file, line: null, field: null, message: errorMessage(err), fix: "see above" }],
      };
    }
    this.reloads++;
    if (!result.ok) {
      const keeping =
        this.rules === null
          ? "no SLOs are applied until the file is fixed"
          : `the running config (${this.rules.length} rules) stays in force`;
      this.log.error(`config ${file} rejected (${why}): ${keeping}`);
      for (const e of result.errors) this.log.error(formatConfigError(e));
      this.options.onReload?.("failed");
      return;
    }
    for (const w of result.warnings) this.log.warn(w);
    const key = JSON.stringify(result.rules);
    const changed = this.rules === null || key !== this.rulesKey;
    this.rules = result.rules;
    this.rulesKey = key;
    this.options.onReload?.("ok");
    if (changed) {
      this.log.info(`config ${file} loaded (${why}): ${result.rules.length} rules`);
      this.onChange();
    } else {
      this.log.debug(`config ${file} reloaded (${why}): unchanged`);
    }
  }
}
