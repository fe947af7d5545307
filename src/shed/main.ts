#!/usr/bin/env node
// scx-slo-shed: the load-shedding sidecar's command line. Exit status 0 ok (also after SIGTERM),
// 1 error (e.g. the listen address is taken), 2 usage.
import { DEFAULT_AGENT_URL } from "../api/endpoints.js";
import type { OverloadQuery } from "../api/overload.js";
import { intOption, parseOptions, UsageError } from "../util/args.js";
import { parseListen, type ListenAddress } from "../util/listen.js";
import { createLogger } from "../util/log.js";
import { DEFAULT_INTERVAL_MS, OverloadSignal, overloadUrl } from "./overload-signal.js";
import { parseUpstream, startSidecar } from "./sidecar.js";

export const SHED_USAGE = `usage: scx-slo-shed --listen HOST:PORT --upstream http://HOST:PORT
                    (--namespace NS --pod NAME | --cgroup /PATH) [options]

A reverse proxy in front of an app that answers 429 + Retry-After, before any work, while the
scx-slo agent says the pod is overloaded. If the agent cannot be asked, nothing is shed.

  --listen HOST:PORT         where clients connect, e.g. 0.0.0.0:8080
  --upstream URL             the app, e.g. http://127.0.0.1:8081
  --agent URL                the node agent (default ${DEFAULT_AGENT_URL})
  --namespace NS --pod NAME  the pod to ask about (all its SLO cgroups together)
  --cgroup /PATH             or one cgroup, e.g. /kubepods.slice/.../cri-containerd-....scope
  --interval-ms N            poll period (default ${DEFAULT_INTERVAL_MS})
  --timeout-ms N             poll timeout, below the period (default half the period)
  --allow PATH               a path never shed, exact match (repeatable), e.g. --allow /healthz
  --shed-fraction F          share of requests shed while overloaded, 0..1 (default 1)
  --upstream-timeout-ms N    upstream silent this long: 504 (default 60000)
  --grace-ms N               on SIGTERM, let requests in flight finish this long (default 5000)
  -v, --verbose              log every upstream error
  -h, --help
`;

function int(name: string, value: string | undefined, def: number, min: number, max: number) {
  return value === undefined ? def : intOption(name, value, min, max);
}

function listenOption(text: string): ListenAddress {
  try {
    return parseListen(text, "--listen", "0.0.0.0:8080 or 127.0.0.1:8080");
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export interface ShedConfig {
  listen: ListenAddress;
  upstream: string;
  agent: string;
  target: OverloadQuery;
  intervalMs: number;
  timeoutMs: number;
  allow: string[];
  fraction: number;
  upstreamTimeoutMs: number;
  graceMs: number;
  verbose: boolean;
}

/** The command line as a config, or a UsageError naming the flag and the fix. */
export function parseShedArgs(argv: string[]): ShedConfig | "help" {
  const { values } = parseOptions(argv, {
    listen: { type: "string" },
    upstream: { type: "string" },
    agent: { type: "string" },
    namespace: { type: "string" },
    pod: { type: "string" },
    cgroup: { type: "string" },
    "interval-ms": { type: "string" },
    "timeout-ms": { type: "string" },
    allow: { type: "string", multiple: true },
    "shed-fraction": { type: "string" },
    "upstream-timeout-ms": { type: "string" },
    "grace-ms": { type: "string" },
    verbose: { type: "boolean", short: "v" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return "help";

  if (values.listen === undefined)
    throw new UsageError("--listen is required, e.g. --listen 0.0.0.0:8080");
  const listen = listenOption(values.listen);

  if (values.upstream === undefined) {
    throw new UsageError("--upstream is required, e.g. --upstream http://127.0.0.1:8081");
  }
  try {
    parseUpstream(values.upstream);
  } catch (err) {
    throw new UsageError(`--upstream: ${(err as Error).message}, e.g. http://127.0.0.1:8081`);
  }

  const byPod = values.namespace !== undefined || values.pod !== undefined;
  let target: OverloadQuery;
  if (values.cgroup !== undefined) {
    if (byPod) throw new UsageError("--cgroup and --namespace/--pod exclude each other; give one");
    if (!values.cgroup.startsWith("/")) {
      throw new UsageError(
        `--cgroup ${JSON.stringify(values.cgroup)}: must be an absolute cgroup path, e.g. /kubepods.slice/...`,
      );
    }
    target = { cgroup: values.cgroup };
  } else if (byPod) {
    if (!values.namespace) throw new UsageError("--pod needs --namespace NS (non-empty)");
    if (!values.pod) throw new UsageError("--namespace needs --pod NAME (non-empty)");
    target = { namespace: values.namespace, pod: values.pod };
  } else {
    throw new UsageError(
      "say which workload to watch: --namespace NS --pod NAME, or --cgroup /PATH",
    );
  }

  const agent = values.agent ?? DEFAULT_AGENT_URL;
  try {
    overloadUrl(agent, target);
  } catch (err) {
    throw new UsageError(`--agent: ${(err as Error).message}`);
  }

  const intervalMs = int("interval-ms", values["interval-ms"], DEFAULT_INTERVAL_MS, 10, 60_000);
  const timeoutMs = int(
    "timeout-ms",
    values["timeout-ms"],
    Math.floor(intervalMs / 2),
    1,
    intervalMs - 1,
  );

  const allow = values.allow ?? [];
  for (const p of allow) {
    if (!p.startsWith("/")) {
      throw new UsageError(
        `--allow ${JSON.stringify(p)}: a path starting with "/", e.g. --allow /healthz`,
      );
    }
  }

  let fraction = 1;
  const f = values["shed-fraction"];
  if (f !== undefined) {
    fraction = Number(f);
    if (f.trim() === "" || !(fraction >= 0 && fraction <= 1)) {
      throw new UsageError(
        `--shed-fraction must be a number from 0 to 1, got ${JSON.stringify(f)}`,
      );
    }
  }

  return {
    listen,
    upstream: values.upstream,
    agent,
    target,
    intervalMs,
    timeoutMs,
    allow,
    fraction,
    upstreamTimeoutMs: int(
      "upstream-timeout-ms",
      values["upstream-timeout-ms"],
      60_000,
      1,
      3_600_000,
    ),
    graceMs: int("grace-ms", values["grace-ms"], 5000, 0, 600_000),
    verbose: values.verbose ?? false,
  };
}

export async function main(argv: string[]): Promise<number> {
  let cfg: ShedConfig | "help";
  try {
    cfg = parseShedArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`scx-slo-shed: ${err.message}\n\n${SHED_USAGE}`);
    return 2;
  }
  if (cfg === "help") {
    process.stdout.write(SHED_USAGE);
    return 0;
  }
  const log = createLogger({ verbose: cfg.verbose });
  const signal = new OverloadSignal({
    agentUrl: cfg.agent,
    target: cfg.target,
    intervalMs: cfg.intervalMs,
    timeoutMs: cfg.timeoutMs,
    onChange: (state, v, reason) => {
      if (state === "overloaded" && v) {
        log.warn(
          `overloaded: ${v.misses} misses in ${v.runs} runs over ${v.window_s} s; shedding, retry after ${v.retry_after_s} s`,
        );
      } else if (state === "ok") log.info("not overloaded: forwarding everything");
      else log.warn(`overload signal unknown (${reason}): not shedding`);
    },
  });
  let sidecar;
  try {
    sidecar = await startSidecar({
      listen: cfg.listen,
      upstream: cfg.upstream,
      signal,
      shed: { allowPaths: cfg.allow, fraction: cfg.fraction },
      upstreamTimeoutMs: cfg.upstreamTimeoutMs,
      log: (line) => log.debug(line),
    });
  } catch (err) {
    process.stderr.write(
      `scx-slo-shed: error: cannot listen on ${cfg.listen.host}:${cfg.listen.port}: ${(err as Error).message}\n`,
    );
    return 1;
  }
  signal.start();
  log.info(`listening on ${sidecar.url}, forwarding to ${cfg.upstream}, asking ${signal.url.href}`);

  const s = sidecar;
  await new Promise<void>((resolve) => {
    const stop = (name: string) => {
      log.info(`${name}: draining for up to ${cfg.graceMs} ms`);
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  await s.close(cfg.graceMs);
  signal.stop();
  const st = s.stats();
  const sig = signal.stats();
  log.info(
    `stopped: ${st.shed} shed, ${st.passed} passed (${st.allowListed} allow-listed), ${st.proxied} proxied, ` +
      `${st.upstreamErrors} upstream errors, ${st.clientAborts} client aborts, ` +
      `${sig.pollFailures} of ${sig.polls} polls failed`,
  );
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
