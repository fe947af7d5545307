// Every usage text of the CLI, in a module that loads nothing heavy, so `--help` and a usage
// error answer without loading the agent.
import { DEFAULT_SAFE_MODE_FILE } from "../agent/safe-mode.js";
import { DEFAULT_SELF_BUDGET_MS } from "../agent/self-slo.js";
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
  --mode auto|enforce|observe  enforce: scx_slo schedules and measures; observe: a tracing
                             observer only measures (kernels without sched_ext); auto (default):
                             scx_slo where the kernel has sched_ext, else and in safe mode the observer
  --observe                  run the observer beside scx_slo too, to cross-check its numbers
  --source file|kubernetes   where SLOs come from (default file); kubernetes reads the pods of
                             this node (--node-name, default $NODE_NAME) and SloPolicy objects
  --listen HOST:PORT         metrics/health/overload endpoint (default ${DEFAULT_LISTEN})
  --default-budget-ms N      budget for tasks without an SLO when the agent loads the scheduler
                             (${BUDGET_MIN_MS}..${BUDGET_MAX_MS}; default: the scheduler's, 100)
  --self-budget-ms N         the agent's own cgroup gets this budget at importance 100, so it
                             keeps answering on a saturated node (default ${DEFAULT_SELF_BUDGET_MS}; 0: no SLO of its own)
  --node-name NAME           this node (kubernetes source; default $NODE_NAME)
  --kubeconfig FILE          kubernetes source: credentials from this kubeconfig (default
                             $KUBECONFIG; unset: the pod's ServiceAccount, in-cluster)
  --cgroup-root DIR          the cgroup2 mount (default ${CGROUP_ROOT})
  --safe-mode-file FILE      safe-mode flag file (default ${DEFAULT_SAFE_MODE_FILE})
  --overload-window S        overload window in seconds (default ${DEFAULT_OVERLOAD.windowS})
  --overload-miss-ratio R    overloaded above this fraction of runs missing (default ${DEFAULT_OVERLOAD.missRatio})
  --overload-min-misses N    overloaded at this many misses in the window (default ${DEFAULT_OVERLOAD.minMisses})
  -v, --verbose              debug logging
`;

export const STATUS_USAGE = `usage: scx-slo status [--json] [--listen HOST:PORT] [--timeout S] [--safe-mode-file FILE]

  Scheduler state and last exit reason, safe mode, the agent (if one answers on --listen,
  default ${DEFAULT_LISTEN}, within --timeout seconds, default 5), and every SLO applied with
  its runs and deadline misses. It says whether no agent listens or one listens but is slow.
`;

export const SAFE_MODE_USAGE = `usage: scx-slo safe-mode on|off|status [--reason TEXT] [--wait S] [--safe-mode-file FILE]

  on      detach scx_slo now and keep it detached (the kernel's fair class runs everything)
  off     let the agent attach scx_slo again; waits up to --wait seconds (default 5, 0: not at
          all) for it to be attached and prints how long it took
  status  print whether safe mode is on
  The switch is the flag file (default ${DEFAULT_SAFE_MODE_FILE}); the agent watches it.
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
