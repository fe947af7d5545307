// What `scx-slo config init` / `--create-config` writes. Both examples declare the same rules, so
// an operator can start from either format; the unit tests parse them, so they cannot rot.

import {
  BUDGET_MAX_MS,
  BUDGET_MIN_MS,
  IMPORTANCE_MAX,
  IMPORTANCE_MIN,
  MAX_SLO_ENTRIES,
} from "../../slo/model.js";
import { NO_SLOS_LINE, NO_SLOS_YAML } from "./errors.js";

// Shared wording, so the two examples cannot drift apart. Each line is prefixed by its format.
const RULE_FIELDS = [
  `budget_ms    ${BUDGET_MIN_MS}..${BUDGET_MAX_MS}: how long a runnable task of the cgroup may wait for a CPU,`,
  `             in milliseconds (decimals allowed: 1.5); the scheduler runs the earliest deadline`,
  `             first and counts a miss when a wait exceeds the budget.`,
  `importance   ${IMPORTANCE_MIN}..${IMPORTANCE_MAX}: higher wins when the CPUs cannot meet every budget.`,
];

const FOOTER = [
  "Cgroups without a rule still run: slowed under contention, never starved. At most",
  `${MAX_SLO_ENTRIES} rules. The agent re-reads this file when it changes; a file with any error`,
  "is rejected whole and the SLOs already running stay in force.",
];

/** Both formats say "no SLOs" the same way: explicitly, never by an empty file. */
export function noSlosHint(noSlos: string): string[] {
  return [
    "An empty file (or one with only comments) is rejected, because a file caught mid-write or",
    `truncated looks the same. To run with no SLOs on purpose, write \`${noSlos}\` instead of the rules.`,
  ];
}

function comment(lines: readonly string[], indent = ""): string {
  return lines.map((l) => `# ${indent}${l}`.trimEnd()).join("\n");
}

export const EXAMPLE_CONFIG_LINE = `# scx-slo SLO config (line format).
#
# One rule per line:   <cgroup_path> <budget_ms> <importance>    # optional comment
#
# cgroup_path  absolute path below the cgroup2 mount (/sys/fs/cgroup), no trailing "/".
#              *, ? and [...] make it a glob that matches many cgroups.
${comment(RULE_FIELDS)}
#
${comment(FOOTER)}
${comment(noSlosHint(NO_SLOS_LINE))}
# The same rules can be written in YAML: a file whose first line is "version: 1".

# Keep interactive logins responsive on a busy node.
/system.slice/sshd.service          20   80

# One latency-critical workload.
/kubepods/critical/payment-api      50   90

# Every burstable pod (kubelet cgroupfs driver): a loose budget, low importance.
/kubepods/burstable/*              200   30
`;

export const EXAMPLE_CONFIG_YAML = `# scx-slo SLO config (YAML).
#
# Each rule under slos: names exactly one of
#   cgroup: an absolute path below the cgroup2 mount (/sys/fs/cgroup), no trailing "/"
#   match:  a glob over such paths (*, ? and [...]); quote it, "*" means something to YAML
# and sets
${comment(RULE_FIELDS, "  ")}
#   namespace, pod: optional labels for metrics (Kubernetes names).
# Unknown keys are errors, so a typo cannot silently drop a setting.
#
${comment(FOOTER)}
${comment(noSlosHint(NO_SLOS_YAML))}

version: 1

# Used by rules that set no importance of their own.
defaults:
  importance: 50

slos:
  # Keep interactive logins responsive on a busy node.
  - cgroup: /system.slice/sshd.service
    budget_ms: 20
    importance: 80

  # One latency-critical workload.
  - cgroup: /kubepods/critical/payment-api
    budget_ms: 50
    importance: 90
    namespace: shop
    pod: payment-api

  # Every burstable pod (kubelet cgroupfs driver): a loose budget, low importance.
  - match: "/kubepods/burstable/*"
    budget_ms: 200
    importance: 30
`;
