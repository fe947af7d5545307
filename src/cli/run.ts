// `scx-slo run`: the node agent, until SIGTERM/SIGINT. The scheduler outlives it (pinned link).
import v8 from "node:v8";
import { Agent, type SourceSpec } from "../agent/agent.js";
import { MODE_REQUESTS, type ModeRequest } from "../agent/mode.js";
import { DEFAULT_SAFE_MODE_FILE } from "../agent/safe-mode.js";
import { CGROUP_ROOT } from "../cgroup/cgroupfs.js";
import { DEFAULT_OVERLOAD } from "../metrics/overload.js";
import { DEFAULT_LISTEN } from "../api/endpoints.js";
import { MAX_OVERLOAD_WINDOW_S } from "../api/overload.js";
import { defaultLoaderPaths } from "../sched/loader.js";
import { BUDGET_MAX_MS, BUDGET_MIN_MS } from "../slo/model.js";
import { intOption, numberOption, parseOptions as parse, UsageError } from "../util/args.js";
import { parseListen } from "../util/listen.js";
import { createLogger, errorMessage } from "../util/log.js";
import { CliError, EXIT_OK, type Io } from "./common.js";
import { DEFAULT_CONFIG_FILE } from "./usage.js";

export async function runCommand(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    config: { type: "string", short: "c", default: DEFAULT_CONFIG_FILE },
    source: { type: "string", default: "file" },
    listen: { type: "string", default: DEFAULT_LISTEN },
    "default-budget-ms": { type: "string" },
    "self-budget-ms": { type: "string" },
    mode: { type: "string", default: "auto" },
    observe: { type: "boolean" },
    "node-name": { type: "string" },
    kubeconfig: { type: "string" },
    "cgroup-root": { type: "string", default: CGROUP_ROOT },
    "safe-mode-file": { type: "string", default: DEFAULT_SAFE_MODE_FILE },
    "overload-window": { type: "string" },
    "overload-miss-ratio": { type: "string" },
    "overload-min-misses": { type: "string" },
    verbose: { type: "boolean", short: "v" },
  });
  let listen;
  try {
    listen = parseListen(values.listen);
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
  let source: SourceSpec;
  if (values.source === "file") {
    source = { kind: "file", file: values.config };
  } else if (values.source === "kubernetes") {
    const nodeName = values["node-name"] ?? process.env.NODE_NAME;
    if (!nodeName) {
      throw new UsageError(
        "--source kubernetes needs this node's name: set NODE_NAME (the DaemonSet passes spec.nodeName) or --node-name",
      );
    }
    const kubeconfig = values.kubeconfig ?? process.env.KUBECONFIG;
    source = { kind: "kubernetes", nodeName, ...(kubeconfig ? { kubeconfig } : {}) };
  } else {
    throw new UsageError(
      `--source must be file or kubernetes, got ${JSON.stringify(values.source)}`,
    );
  }
  const b = values["default-budget-ms"];
  const defaultBudgetMs =
    b === undefined ? undefined : intOption("default-budget-ms", b, BUDGET_MIN_MS, BUDGET_MAX_MS);
  const mode = values.mode;
  if (!(MODE_REQUESTS as readonly string[]).includes(mode)) {
    throw new UsageError(`--mode must be ${MODE_REQUESTS.join(", ")}, got ${JSON.stringify(mode)}`);
  }
  const sb = values["self-budget-ms"];
  const selfBudgetMs =
    sb === undefined ? undefined : intOption("self-budget-ms", sb, 0, BUDGET_MAX_MS);
  const ow = values["overload-window"];
  const orat = values["overload-miss-ratio"];
  const omin = values["overload-min-misses"];
  const overload = {
    ...DEFAULT_OVERLOAD,
    ...(ow !== undefined
      ? { windowS: intOption("overload-window", ow, 1, MAX_OVERLOAD_WINDOW_S) }
      : {}),
    ...(orat !== undefined ? { missRatio: numberOption("overload-miss-ratio", orat, 0, 1) } : {}),
    ...(omin !== undefined ? { minMisses: intOption("overload-min-misses", omin, 1, 1e9) } : {}),
  };

  keepYoungGenerationSmall();
  const log = createLogger({ verbose: !!values.verbose, write: (l) => io.err(l) });
  const agent = new Agent({
    source,
    listen,
    loaderPaths: defaultLoaderPaths(),
    log,
    ...(defaultBudgetMs !== undefined ? { defaultBudgetMs } : {}),
    ...(selfBudgetMs !== undefined ? { selfBudgetMs } : {}),
    mode: mode as ModeRequest,
    observe: values.observe ?? false,
    cgroupRoot: values["cgroup-root"],
    safeModeFile: values["safe-mode-file"],
    overload,
  });
  try {
    await agent.start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    await agent.stop().catch(() => {});
    if (e.code === "EADDRINUSE") {
      throw new CliError(
        `cannot listen on ${values.listen}: the address is in use (another agent running? pick another with --listen)`,
      );
    }
    throw new CliError(`agent failed to start: ${errorMessage(err)}`);
  }
  // SIGHUP re-reads the rules (and would otherwise end the process); SIGTERM and SIGINT stop.
  const onSighup = () => void agent.reload("SIGHUP");
  process.on("SIGHUP", onSighup);
  await new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => {
      log.info(`${sig}: stopping the agent; the scheduler is left as it is`);
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      process.off("SIGHUP", onSighup);
      agent.stop().then(resolve, (err: unknown) => {
        log.error(`stopping: ${errorMessage(err)}`);
        resolve();
      });
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
  return EXIT_OK;
}

/**
 * The agent allocates a steady trickle of short-lived objects (a map read and a stats read every
 * second). V8 answers that by doubling the young generation up to 32 MiB, which alone would take
 * the agent's RSS past its 80 MiB budget; a young generation kept at its initial 2 MiB costs a few
 * more (sub-millisecond) scavenges. The growth factor is read at each resize, so unlike the
 * semi-space size it can still be set now. An operator's own V8 flags win.
 */
function keepYoungGenerationSmall(): void {
  if (process.execArgv.some((a) => /^--(max-semi-space-size|semi-space-growth-factor)/.test(a))) {
    return;
  }
  v8.setFlagsFromString("--semi-space-growth-factor=1");
}
