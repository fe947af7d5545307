// Shared by the CLI's commands: exit codes, output, and the error a command fails with. Option
// parsing and UsageError are util/args.ts, shared with the sidecar's command line.

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;

/** The command could not do its job: printed as is, exit 1. */
export class CliError extends Error {
  override name = "CliError";
}

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export const stdio: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};
