// `scx-slo safe-mode on|off|status`: the operator's switch. On: the flag file is written and the
// scheduler is unloaded at once (the agent, if running, keeps it unloaded). Off: the flag file is
// removed; a running agent sees that at once and attaches its verified standby copy. Both wait
// for the kernel to show the change and print how long it took.
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
import { numberOption, parseOptions as parse, UsageError } from "../util/args.js";
import { sleep } from "../util/process.js";
import { CliError, EXIT_OK, type Io } from "./common.js";

/** Polls the kernel's sched_ext state until cond holds; the ms it took, or null at the limit. */
async function waitFor(cond: () => boolean, limitMs: number): Promise<number | null> {
  const started = performance.now();
  for (;;) {
    if (cond()) return Math.round(performance.now() - started);
    if (performance.now() - started >= limitMs) return null;
    await sleep(10);
  }
}

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
      wait: { type: "string", default: "5" },
    },
    1,
  );
  const file = values["safe-mode-file"];
  const waitMs = numberOption("wait", values.wait, 0, 600) * 1000;
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
    if (!was) {
      io.out(`safe mode was not on (${file} absent)\n`);
      return EXIT_OK;
    }
    if (!readScxSysfs().supported) {
      io.out(`safe mode off: removed ${file} (this kernel has no sched_ext: nothing to attach)\n`);
      return EXIT_OK;
    }
    const took = waitMs > 0 ? await waitFor(() => isScxSloAttached(readScxSysfs()), waitMs) : null;
    io.out(
      took !== null
        ? `safe mode off: removed ${file}; scx_slo attached ${took} ms later\n`
        : waitMs > 0
          ? `safe mode off: removed ${file}; scx_slo is not attached after ${waitMs / 1000} s: ` +
            "is the agent running? (`scx-slo status`)\n"
          : `safe mode off: removed ${file}; a running agent attaches scx_slo\n`,
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
    const took = await waitFor(() => readScxSysfs().state === "disabled", Math.max(waitMs, 1000));
    io.out(
      (took !== null
        ? `safe mode on: scx_slo detached ${took} ms after the unload; `
        : "safe mode on: scx_slo unloaded, the kernel is still detaching it; ") +
        "the kernel's fair class runs everything. Turn off with `scx-slo safe-mode off`\n",
    );
  } else {
    io.out(
      `safe mode on (${file}); scx_slo is not attached and stays detached until \`scx-slo safe-mode off\`\n`,
    );
  }
  return EXIT_OK;
}
