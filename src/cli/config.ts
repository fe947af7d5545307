// `scx-slo config init [FILE]` (and the original tool's `--create-config`) and `config check FILE`.
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import path from "node:path";
import { NO_SLOS_LINE, NO_SLOS_YAML } from "../sources/file/errors.js";
import { EXAMPLE_CONFIG_LINE, EXAMPLE_CONFIG_YAML } from "../sources/file/example.js";
import { formatConfigError, loadConfigFile } from "../sources/file/parse.js";
import { parseOptions as parse, UsageError } from "../util/args.js";
import { CliError, EXIT_ERROR, EXIT_OK, type Io } from "./common.js";
import { DEFAULT_CONFIG_FILE } from "./usage.js";

export async function configCommand(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case "init":
      return configInit(rest, io);
    case "check":
      return configCheck(rest, io);
    case undefined:
      throw new UsageError("config needs a subcommand: init or check");
    default:
      throw new UsageError(`unknown config subcommand ${JSON.stringify(sub)} (init, check)`);
  }
}

export function configInit(args: string[], io: Io, defaultFile = DEFAULT_CONFIG_FILE): number {
  const { values, positionals } = parse(
    args,
    {
      yaml: { type: "boolean" },
      force: { type: "boolean" },
      config: { type: "string", short: "c" },
    },
    1,
  );
  if (positionals[0] !== undefined && values.config !== undefined) {
    throw new UsageError("give the file once: either FILE or --config FILE");
  }
  const file = positionals[0] ?? values.config ?? defaultFile;
  writeExample(file, values.yaml ? EXAMPLE_CONFIG_YAML : EXAMPLE_CONFIG_LINE, !!values.force);
  io.out(
    `wrote an example SLO config to ${file}; edit it, then check it with \`scx-slo config check ${file}\`\n` +
      `(an empty file is rejected; for no SLOs on purpose write \`${values.yaml ? NO_SLOS_YAML : NO_SLOS_LINE}\` instead of the rules)\n`,
  );
  return EXIT_OK;
}

function writeExample(file: string, text: string, force: boolean): void {
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    // "wx" fails if the file exists, atomically: no check-then-write race.
    const fd = openSync(file, force ? "w" : "wx", 0o644);
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") {
      throw new CliError(`${file} already exists; not overwriting it (use --force to replace it)`);
    }
    if (code === "EACCES" || code === "EPERM") {
      throw new CliError(
        `cannot write ${file}: permission denied (run as root, or pick another path)`,
      );
    }
    if (code === "EISDIR") throw new CliError(`cannot write ${file}: it is a directory`);
    throw new CliError(`cannot write ${file}: ${(err as Error).message}`);
  }
}

export async function configCheck(args: string[], io: Io): Promise<number> {
  const { positionals } = parse(args, {}, 1);
  const file = positionals[0];
  if (file === undefined) throw new UsageError("config check needs the FILE to check");
  const result = await loadConfigFile(file);
  if (!result.ok) {
    for (const e of result.errors) io.err(`${formatConfigError(e)}\n`);
    io.err(
      `${file}: invalid (${result.errors.length} error${result.errors.length === 1 ? "" : "s"})\n`,
    );
    return EXIT_ERROR;
  }
  for (const w of result.warnings) io.err(`warning: ${w}\n`);
  const n = result.rules.length;
  io.out(`${file}: OK, ${n === 0 ? "no SLOs (on purpose)" : `${n} rule${n === 1 ? "" : "s"}`}\n`);
  return EXIT_OK;
}
