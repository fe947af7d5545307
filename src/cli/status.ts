// `scx-slo status`: what the kernel, the loader and (when running) the agent say, as a table or
// --json. Works without an agent: the scheduler's own state and maps are read directly.
import { DEFAULT_SAFE_MODE_FILE, readSafeModeFlag } from "../agent/safe-mode.js";
import { DEFAULT_LISTEN } from "../api/endpoints.js";
import { AgentStatusSchema, type AgentStatus, type ExitInfo } from "../api/status.js";
import { CGROUP_ROOT } from "../cgroup/cgroupfs.js";
import { cgroupPathsById } from "../cgroup/resolve.js";
import { histogramQuantileNs } from "../sched/histogram.js";
import { defaultLoaderPaths, schedulerStatus } from "../sched/loader.js";
import { parseReply, type SchedulerStatus } from "../sched/replies.js";
import { readScxSysfs } from "../sched/scx-sysfs.js";
import { LoaderSession } from "../sched/session.js";
import { numberOption, parseOptions as parse, UsageError } from "../util/args.js";
import { listenUrl, parseListen } from "../util/listen.js";
import { errorMessage } from "../util/log.js";
import http from "node:http";
import { EXIT_OK, type Io } from "./common.js";

/** How long `status` waits for the agent's answer unless told otherwise. */
const DEFAULT_TIMEOUT_MS = 5000;

export interface StatusSlo {
  cgroup_id: string;
  cgroup: string | null;
  namespace: string | null;
  pod: string | null;
  budget_ns: number;
  importance: number;
  runs: number;
  misses: number;
  wait_p99_ns: number | null;
  overloaded: boolean | null;
  /** The cgroup that held the CPU longest while this one waited (observe mode). */
  top_neighbour: string | null;
}

export interface StatusReport {
  scheduler: SchedulerStatus;
  safe_mode: { on: boolean; reason: string; file: string };
  agent: AgentStatus | null;
  agent_error: string | null;
  slos: StatusSlo[] | null;
  slos_error: string | null;
}

/** Why the agent could not be asked, in words that tell a dead agent from a slow one. */
class AgentUnreachable extends Error {}

/**
 * GET /status with node:http (fetch would first load its HTTP stack, which under load can take
 * longer than the timeout itself). A refused connection means nothing listens; a timeout means
 * something listens but did not answer in time.
 */
function fetchAgent(url: string, timeoutMs: number): Promise<AgentStatus> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/status`, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        clearTimeout(timer);
        if (res.statusCode !== 200) {
          reject(new AgentUnreachable(`the agent at ${url} answered HTTP ${res.statusCode}`));
          return;
        }
        try {
          const body: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8"));
          resolve(parseReply(AgentStatusSchema, body, `the agent at ${url}: /status`));
        } catch (err) {
          reject(err);
        }
      });
    });
    const timer = setTimeout(() => {
      req.destroy(
        new AgentUnreachable(
          `the agent at ${url} accepted the connection but did not answer within ` +
            `${timeoutMs / 1000} s (it runs, but is slow: the node may be saturated; ` +
            `try again or pass a longer --timeout)`,
        ),
      );
    }, timeoutMs);
    req.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err instanceof AgentUnreachable) reject(err);
      else if (err.code === "ECONNREFUSED") {
        reject(new AgentUnreachable(`no agent is listening at ${url} (connection refused)`));
      } else reject(new AgentUnreachable(`cannot reach the agent at ${url}: ${err.message}`));
    });
  });
}

async function readMaps(): Promise<StatusSlo[]> {
  const session = new LoaderSession(defaultLoaderPaths());
  try {
    const [list, stats] = await Promise.all([session.list(), session.stats()]);
    const byId = new Map(stats.cgroups.map((c) => [c.cgroupId, c]));
    const paths = cgroupPathsById(
      list.map((e) => e.cgroupId),
      CGROUP_ROOT,
    );
    return list.map((e) => {
      const st = byId.get(e.cgroupId);
      const p99 = st ? histogramQuantileNs(st.hist, 0.99) : NaN;
      return {
        cgroup_id: String(e.cgroupId),
        cgroup: paths.get(e.cgroupId) ?? null,
        namespace: null,
        pod: null,
        budget_ns: e.budgetNs,
        importance: e.importance,
        runs: st?.runs ?? 0,
        misses: st?.misses ?? 0,
        wait_p99_ns: Number.isFinite(p99) ? p99 : null,
        overloaded: null,
        top_neighbour: null,
      };
    });
  } finally {
    await session.close();
  }
}

export async function collectStatus(
  listen: string,
  safeModeFile: string,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<StatusReport> {
  const sys = readScxSysfs();
  const url = listenUrl(parseListen(listen));
  // Asked first, so its clock does not include the loader's start.
  const asked = fetchAgent(url, timeoutMs).then(
    (a) => ({ agent: a, error: null }),
    (err: unknown) => ({ agent: null, error: errorMessage(err) }),
  );
  let scheduler: SchedulerStatus;
  try {
    scheduler = await schedulerStatus(defaultLoaderPaths());
  } catch {
    scheduler = {
      sched_ext: sys.supported,
      state: sys.state,
      ops: sys.ops,
      attached: sys.ops === "scx_slo",
      link_pinned: false,
      maps_pinned: false,
      enable_seq: sys.enableSeq,
    };
  }
  const flag = readSafeModeFlag(safeModeFile);
  const { agent, error: agentError } = await asked;
  let slos: StatusSlo[] | null = null;
  let slosError: string | null = null;
  if (agent) {
    slos = agent.cgroups.map((c) => {
      const p99 = c.hist.length ? histogramQuantileNs(c.hist, 0.99) : NaN;
      return {
        cgroup_id: c.cgroup_id,
        cgroup: c.cgroup,
        namespace: c.namespace,
        pod: c.pod,
        budget_ns: c.budget_ns,
        importance: c.importance,
        runs: c.runs,
        misses: c.misses,
        wait_p99_ns: Number.isFinite(p99) ? p99 : null,
        overloaded: c.overloaded,
        top_neighbour: c.neighbours[0]?.cgroup ?? null,
      };
    });
  } else if (sys.supported) {
    try {
      slos = await readMaps();
    } catch (err) {
      const notRoot = process.getuid?.() !== 0 ? " (reading the SLO map needs root)" : "";
      slosError = `cannot read the SLO map: ${errorMessage(err)}${notRoot}`;
    }
  }
  return {
    scheduler,
    safe_mode: { on: flag.on, reason: flag.reason, file: safeModeFile },
    agent,
    agent_error: agentError,
    slos,
    slos_error: slosError,
  };
}

function ms(ns: number | null): string {
  if (ns === null) return "-";
  if (!Number.isFinite(ns)) return ">17 s";
  const v = ns / 1e6;
  return v >= 100
    ? `${v.toFixed(0)} ms`
    : v >= 1
      ? `${v.toFixed(1)} ms`
      : `${(ns / 1e3).toFixed(0)} us`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

function exitLine(exit: ExitInfo | undefined | null): string | null {
  if (!exit || exit.kind === 0) return null;
  const text = [exit.reason, exit.msg].filter((s) => s).join(": ");
  return `${exit.kind_name} (kind ${exit.kind}${exit.code ? `, code ${exit.code}` : ""})${text ? ` ${text}` : ""}`;
}

export function formatStatus(r: StatusReport): string {
  const s = r.scheduler;
  const lines: string[] = [];
  const kv = (k: string, v: string) => lines.push(`${k.padEnd(11)} ${v}`);
  if (!s.sched_ext) {
    kv(
      "scheduler",
      "unsupported: this kernel has no sched_ext (needs Linux >= 6.12, CONFIG_SCHED_CLASS_EXT=y); the stock scheduler runs",
    );
  } else if (s.attached) {
    kv(
      "scheduler",
      `attached: scx_slo (sched_ext ${s.state}, enable_seq ${s.enable_seq}${s.link_pinned ? "" : ", link not pinned"})`,
    );
  } else if (s.ops) {
    kv("scheduler", `not attached: another sched_ext scheduler (${s.ops}) is running`);
  } else {
    kv("scheduler", `not attached: the kernel's fair class runs everything (sched_ext ${s.state})`);
  }
  const exit = exitLine(s.exit ?? r.agent?.scheduler.last_exit);
  if (exit) kv("last exit", exit);
  kv(
    "safe mode",
    r.safe_mode.on
      ? `ON (${r.safe_mode.reason || r.safe_mode.file}); turn off with \`scx-slo safe-mode off\``
      : "off",
  );
  if (r.agent) {
    const a = r.agent;
    kv(
      "agent",
      `running (pid ${a.pid}, ${a.ready.ready ? "ready" : `not ready: ${a.ready.reasons.join("; ")}`}), state ${a.scheduler.state}` +
        `, ${a.scheduler.reattaches} re-attach${a.scheduler.reattaches === 1 ? "" : "es"}` +
        `, standby copy ${a.scheduler.standby}`,
    );
    kv(
      "mode",
      `${a.mode.mode} (${a.mode.reason}${a.mode.observer === "beside" ? "; the observer runs beside it" : ""})`,
    );
    kv(
      "source",
      `${a.source.kind} ${a.source.description}: ${a.source.loaded ? "loaded" : "NOT loaded"}` +
        ` (${a.source.reloads_ok} reloads ok, ${a.source.reloads_failed} failed)`,
    );
    if (a.slos.unresolved.length)
      kv("waiting", `${a.slos.unresolved.length} rules name no cgroup yet`);
  } else {
    kv("agent", r.agent_error ?? "not running");
  }
  if (r.slos === null) {
    kv("SLOs", r.slos_error ?? "unknown");
    return lines.join("\n") + "\n";
  }
  const misses = r.slos.reduce((a, x) => a + x.misses, 0);
  const applied = r.agent ? r.agent.slos.applied : r.slos.length;
  const desired = r.agent ? `${r.slos.length} wanted, ` : "";
  kv("SLOs", `${desired}${applied} applied in the SLO map, ${misses} deadline misses in total`);
  if (r.slos.length === 0) return lines.join("\n") + "\n";
  const rows = [
    [
      "CGROUP",
      "POD",
      "BUDGET",
      "IMP",
      "RUNS",
      "MISSES",
      "MISS%",
      "P99 WAIT",
      "OVERLOAD",
      "NEIGHBOUR",
    ],
  ];
  for (const x of r.slos) {
    rows.push([
      x.cgroup ?? `(id ${x.cgroup_id})`,
      x.pod ? `${x.namespace}/${x.pod}` : "-",
      ms(x.budget_ns),
      String(x.importance),
      String(x.runs),
      String(x.misses),
      x.runs ? `${((100 * x.misses) / x.runs).toFixed(1)}%` : "-",
      ms(x.wait_p99_ns),
      x.overloaded === null ? "-" : x.overloaded ? "YES" : "no",
      x.top_neighbour ?? "-",
    ]);
  }
  return `${lines.join("\n")}\n\n${table(rows)}\n`;
}

export async function statusCommand(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    json: { type: "boolean" },
    listen: { type: "string", default: DEFAULT_LISTEN },
    "safe-mode-file": { type: "string", default: DEFAULT_SAFE_MODE_FILE },
    timeout: { type: "string", default: String(DEFAULT_TIMEOUT_MS / 1000) },
  });
  try {
    parseListen(values.listen);
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
  const timeoutMs = numberOption("timeout", values.timeout, 0.1, 300) * 1000;
  const report = await collectStatus(values.listen, values["safe-mode-file"], timeoutMs);
  io.out(values.json ? JSON.stringify(report, null, 2) + "\n" : formatStatus(report));
  return EXIT_OK;
}
