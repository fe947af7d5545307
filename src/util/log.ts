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

/**
 * Logs each distinct message once while it keeps recurring, and once more when it stops: for
 * conditions re-checked every second (a cgroup not created yet) that would otherwise flood the log.
 */
export class OnceLog {
  private active = new Set<string>();

  constructor(
    private readonly log: (message: string) => void,
    private readonly cleared?: (message: string) => void,
  ) {}

  /** Reports the full current set of conditions. */
  update(messages: Iterable<string>): void {
    const next = new Set(messages);
    for (const m of next) if (!this.active.has(m)) this.log(m);
    if (this.cleared) for (const m of this.active) if (!next.has(m)) this.cleared(m);
    this.active = next;
  }

  get size(): number {
    return this.active.size;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
