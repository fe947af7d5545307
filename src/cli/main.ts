#!/usr/bin/env node
// scx-slo: the command line. Exit status 0 ok, 1 error, 2 usage. Each command's module is loaded
// only when that command runs, so the short ones do not pay for loading the agent.
import { UsageError } from "../util/args.js";
import { CliError, EXIT_ERROR, EXIT_USAGE, stdio, type Io } from "./common.js";
import { HELP, USAGE } from "./usage.js";
import { packageVersion } from "../util/version.js";

export async function main(argv: string[], io: Io = stdio): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === undefined) throw new UsageError("a command is needed");
    if (cmd === "-h" || cmd === "--help" || cmd === "help") {
      const topic = rest[0] !== undefined ? HELP[rest[0]] : undefined;
      io.out(topic ?? USAGE);
      return 0;
    }
    if (cmd === "--version" || cmd === "version") {
      if (cmd === "version" && rest.length > 0) throw new UsageError("version takes no arguments");
      io.out(`scx-slo ${packageVersion()}\n`);
      return 0;
    }
    if (rest.includes("--help") || rest.includes("-h")) {
      const help = HELP[cmd];
      if (help === undefined) throw new UsageError(`unknown command ${JSON.stringify(cmd)}`);
      io.out(help);
      return 0;
    }
    switch (cmd) {
      case "run":
        return await (await import("./run.js")).runCommand(rest, io);
      case "status":
        return await (await import("./status.js")).statusCommand(rest, io);
      case "config":
        return await (await import("./config.js")).configCommand(rest, io);
      case "safe-mode":
        return await (await import("./safe-mode.js")).safeModeCommand(rest, io);
      case "--create-config":
        return (await import("./config.js")).configInit(rest, io);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(cmd)}`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`scx-slo: ${err.message}\n\n${(cmd !== undefined && HELP[cmd]) || USAGE}`);
      return EXIT_USAGE;
    }
    if (err instanceof CliError) {
      io.err(`scx-slo: error: ${err.message}\n`);
      return EXIT_ERROR;
    }
    io.err(`scx-slo: error: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_ERROR;
  }
}

process.exitCode = await main(process.argv.slice(2));
