// The agent's log: one line per event on stderr, "<ISO time> <level> <message>". Debug lines only
// with -v. Lines are never multi-line, so a log shipper keeps one event per record.

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface LoggerOptions {
  verbose?: boolean;
  write?: (line: string) => void;
  now?: () => Date;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const now = opts.now ?? (() => new Date());
  const emit = (level: LogLevel, message: string) => {
    const text = message.replace(/[\r\n]+/g, " ");
    write(`${now().toISOString()} ${level} ${text}\n`);
  };
  return {
    debug: (m) => {
      if (opts.verbose) emit("debug", m);
    },
    info: (m) => emit("info", m),
    warn: (m) => emit("warn", m),
    error: (m) => emit("error", m),
  };
}

/** A logger that drops everything (tests, library defaults). */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};

/** Caps how many lines one update of a OnceLog may write; the rest is summed up in one line. */
export interface OnceLogLimit {
  /** Most lines one update writes for new conditions, and again for cleared ones. */
  readonly lines: number;
  /** The one line that stands for `more` new conditions not written one by one. */
  readonly more: (more: number) => string;
  /** The same for cleared conditions (written through `cleared`). */
  readonly moreCleared?: (more: number) => string;
}

/**
 * Logs each distinct message once while it keeps recurring, and once more when it stops: for
 * conditions re-checked every second (a cgroup not created yet) that would otherwise flood the log.
 * With a limit, one update writes at most `limit.lines` lines plus one summary line; a condition
 * summed up that way is not written again while it lasts.
 */
export class OnceLog {
  private active = new Set<string>();

  constructor(
    private readonly log: (message: string) => void,
    private readonly cleared?: (message: string) => void,
    private readonly limit?: OnceLogLimit,
  ) {}

  /** Reports the full current set of conditions. */
  update(messages: Iterable<string>): void {
    const next = new Set(messages);
    const added: string[] = [];
    for (const m of next) if (!this.active.has(m)) added.push(m);
    this.write(added, this.log, this.limit?.more);
    if (this.cleared) {
      const gone: string[] = [];
      for (const m of this.active) if (!next.has(m)) gone.push(m);
      this.write(gone, this.cleared, this.limit?.moreCleared ?? this.limit?.more);
    }
    this.active = next;
  }

  private write(
    messages: readonly string[],
    out: (message: string) => void,
    more: ((n: number) => string) | undefined,
  ): void {
    const max = this.limit && more ? this.limit.lines : messages.length;
    for (const m of messages.slice(0, max)) out(m);
    if (messages.length > max && more) out(more(messages.length - max));
  }

  get size(): number {
    return this.active.size;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
