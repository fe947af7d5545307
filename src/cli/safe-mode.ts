// `scx-slo safe-mode on|off|status`: the operator's switch. On: the flag file is written and the
// scheduler is unloaded at once (the agent, if running, keeps it unloaded). Off: the flag file is
// removed and the agent re-attaches within a second.
import { userInfo } from "node:os";
import {
  clearSafeModeFlag,
  DEFAULT_SAFE_MODE_FILE,
  readSafeModeFlag,
  writeSafeModeFlag,
} from "../agent/safe-mode.js";
import { defaultLoaderPaths, unloadScheduler } from "../sched/loader.js";
import { isScxSloAttached, readScxSysfs } from "../sched/scx-sysfs.js";
import { errorMessage } from "../util/log.js";
import { parseOptions as parse, UsageError } from "../util/args.js";
import { CliError, EXIT_OK, type Io } from "./common.js";

function who(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? "?"}`;
  }
}

export async function safeModeCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      reason: { type: "string" },
      "safe-mode-file": { type: "string", default: DEFAULT_SAFE_MODE_FILE },
    },
    1,
  );
  const file = values["safe-mode-file"];
  const action = positionals[0];
  if (action === "status" || action === undefined) {
    const f = readSafeModeFlag(file);
    io.out(f.on ? `safe mode is ON (${f.reason || file})\n` : "safe mode is off\n");
    return EXIT_OK;
  }
  if (action !== "on" && action !== "off") {
    throw new UsageError(`safe-mode takes on, off or status, got ${JSON.stringify(action)}`);
  }
  if (action === "off") {
    let was: boolean;
    try {
      was = clearSafeModeFlag(file);
    } catch (err) {
      throw new CliError(`cannot remove ${file}: ${errorMessage(err)} (run as root)`);
    }
    io.out(
      was
        ? `safe mode off: removed ${file}; a running agent attaches scx_slo within a second\n`
        : `safe mode was not on (${file} absent)\n`,
    );
    return EXIT_OK;
  }
  const reason = `cli: turned on by ${who()} at ${new Date().toISOString()}${values.reason ? `: ${values.reason}` : ""}`;
  try {
    writeSafeModeFlag(file, reason);
  } catch (err) {
    throw new CliError(`cannot write ${file}: ${errorMessage(err)} (run as root)`);
  }
  const sys = readScxSysfs();
  if (isScxSloAttached(sys)) {
    try {
      await unloadScheduler(defaultLoaderPaths());
    } catch (err) {
      throw new CliError(
        `safe mode flag written (${file}) but unloading scx_slo failed: ${errorMessage(err)}; a running agent will retry`,
      );
    }
    io.out(
      `safe mode on: scx_slo detached; the kernel's fair class runs everything. Turn off with \`scx-slo safe-mode off\`\n`,
    );
  } else {
    io.out(
      `safe mode on (${file}); scx_slo is not attached and stays detached until \`scx-slo safe-mode off\`\n`,
    );
  }
  return EXIT_OK;
}
