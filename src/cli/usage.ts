// Every usage text of the CLI, in a module that loads nothing heavy, so `--help` and a usage
// error answer without loading the agent.
import { DEFAULT_SAFE_MODE_FILE } from "../agent/safe-mode.js";
import { CGROUP_ROOT } from "../cgroup/cgroupfs.js";
import { DEFAULT_OVERLOAD } from "../metrics/overload.js";
import { DEFAULT_LISTEN } from "../api/endpoints.js";
import { BUDGET_MAX_MS, BUDGET_MIN_MS } from "../slo/model.js";

export const DEFAULT_CONFIG_FILE = "/etc/scx-slo/config";

export const CONFIG_USAGE = `usage: scx-slo config init [FILE] [--yaml] [--force]
       scx-slo config check FILE

  init    write an example SLO config to FILE (default ${DEFAULT_CONFIG_FILE});
          --yaml writes the YAML form, --force overwrites an existing file
  check   validate FILE: exit 0 when valid, 1 with one line per error
`;

export const RUN_USAGE = `usage: scx-slo run [options]

  --config FILE              SLO config file (default ${DEFAULT_CONFIG_FILE}); re-read on change and SIGHUP
  --source file|kubernetes   where SLOs come from (default file); kubernetes reads the pods of
                             this node (--node-name, default $NODE_NAME) and SloPolicy objects
  --listen HOST:PORT         metrics/health/overload endpoint (default ${DEFAULT_LISTEN})
  --default-budget-ms N      budget for tasks without an SLO when the agent loads the scheduler
                             (${BUDGET_MIN_MS}..${BUDGET_MAX_MS}; default: the scheduler's, 100)
  --node-name NAME           this node (kubernetes source; default $NODE_NAME)
  --cgroup-root DIR          the cgroup2 mount (default ${CGROUP_ROOT})
  --safe-mode-file FILE      safe-mode flag file (default ${DEFAULT_SAFE_MODE_FILE})
  --overload-window S        overload window in seconds (default ${DEFAULT_OVERLOAD.windowS})
  --overload-miss-ratio R    overloaded above this fraction of runs missing (default ${DEFAULT_OVERLOAD.missRatio})
  --overload-min-misses N    overloaded at this many misses in the window (default ${DEFAULT_OVERLOAD.minMisses})
  -v, --verbose              debug logging
`;

export const STATUS_USAGE = `usage: scx-slo status [--json] [--listen HOST:PORT] [--safe-mode-file FILE]

  Scheduler state and last exit reason, safe mode, the agent (if one answers on --listen,
  default ${DEFAULT_LISTEN}), and every SLO applied with its runs and deadline misses.
`;

export const SAFE_MODE_USAGE = `usage: scx-slo safe-mode on|off|status [--reason TEXT] [--safe-mode-file FILE]

  on      detach scx_slo now and keep it detached (the kernel's fair class runs everything)
  off     let the agent attach scx_slo again
  status  print whether safe mode is on
  The switch is the flag file (default ${DEFAULT_SAFE_MODE_FILE}); the agent polls it.
`;

export const USAGE = `usage: scx-slo <command> [options]

commands:
  run                  run the node agent (SLOs from a config file or Kubernetes, metrics,
                       health, overload signal, scheduler supervision)
  status               scheduler state, last exit reason, SLOs applied, misses (--json)
  config init [FILE]   write an example SLO config (--yaml, --force)
  config check FILE    validate an SLO config (exit 0 valid, 1 invalid)
  safe-mode on|off     detach the scheduler and keep it detached / let the agent re-attach it
  version              print the version
  --create-config      the original tool's spelling of \`config init\`

\`scx-slo <command> --help\` shows a command's options.
`;

export const HELP: Readonly<Record<string, string>> = {
  run: RUN_USAGE,
  status: STATUS_USAGE,
  config: CONFIG_USAGE,
  "safe-mode": SAFE_MODE_USAGE,
};
