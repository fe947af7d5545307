// The agent's endpoints. Read-only by construction: no route changes SLOs or safe mode (those go
// through the config file, Kubernetes, and the safe-mode flag file, which need node access, not
// just network access to this port).
//
//   /metrics   Prometheus exposition
//   /healthz   the process is alive
//   /readyz    config loaded, and the scheduler attached or deliberately not (safe mode, unsupported)
//   /overload  ?cgroup=/path or ?namespace=ns&pod=name: {overloaded, misses, runs, window_s, retry_after_s}
//   /status    the agent's view as JSON (what `scx-slo status` shows)

import type { OverloadVerdict } from "../api/overload.js";
import type { AgentStatus } from "../api/status.js";
import { bounded, jsonReply, textReply, type Reply, type Route } from "./server.js";

/** An SLO cgroup as the overload route finds it. */
export interface OverloadKey {
  readonly cgroup: string;
  readonly namespace?: string;
  readonly pod?: string;
}

/** A body shared by readers; sent is called once it has been sent (not if it was cut off). */
export interface SharedBody {
  readonly body: string | Buffer | readonly Buffer[];
  readonly sent?: () => void;
}

/** What the routes read from the agent. */
export interface AgentView {
  metrics(): Promise<SharedBody & { readonly contentType: string }>;
  ready(): { ready: boolean; reasons: string[] };
  /** The SLO cgroups on this node, for /overload's lookup. */
  sloCgroups(): readonly OverloadKey[];
  /** The verdict over these cgroups together. */
  verdict(cgroups: readonly string[]): Promise<OverloadVerdict>;
  /** /status, as its JSON text (shared by concurrent readers) or as a value. */
  status(): Promise<AgentStatus | SharedBody>;
}

export async function overloadReply(view: AgentView, params: URLSearchParams): Promise<Reply> {
  const cgroup = params.get("cgroup");
  const namespace = params.get("namespace");
  const pod = params.get("pod");
  let keys: string[];
  if (cgroup !== null) {
    keys = view.sloCgroups().some((d) => d.cgroup === cgroup) ? [cgroup] : [];
    if (keys.length === 0) return jsonReply(404, { error: `no SLO cgroup ${cgroup} on this node` });
  } else if (namespace !== null && pod !== null) {
    keys = view
      .sloCgroups()
      .filter((d) => d.namespace === namespace && d.pod === pod)
      .map((d) => d.cgroup);
    if (keys.length === 0) {
      return jsonReply(404, { error: `no SLO for pod ${namespace}/${pod} on this node` });
    }
  } else {
    return jsonReply(400, { error: "ask with ?cgroup=/path or ?namespace=NS&pod=NAME" });
  }
  const v = await view.verdict(keys);
  return jsonReply(
    200,
    { ...v, cgroups: keys },
    v.overloaded ? { "Retry-After": String(v.retry_after_s) } : {},
  );
}

/** /metrics and /status in flight at once; more are told to come back (503, Retry-After). */
export const MAX_HEAVY_IN_FLIGHT = 16;

const busy = (): Reply =>
  jsonReply(
    503,
    { error: "busy: too many /metrics and /status requests in flight" },
    {
      "Retry-After": "1",
    },
  );

export function agentRoutes(view: AgentView): Route {
  // Renders and stats reads are shared between concurrent callers (see the agent); the bound is
  // on how many responses are being written at once.
  const heavy = bounded(
    async (url) => {
      if (url.pathname === "/status") {
        const s = await view.status();
        return "body" in s
          ? { status: 200, contentType: "application/json", ...s }
          : jsonReply(200, s);
      }
      return { status: 200, ...(await view.metrics()) };
    },
    MAX_HEAVY_IN_FLIGHT,
    busy,
  );
  return async (url) => {
    switch (url.pathname) {
      case "/metrics":
      case "/status":
        return heavy(url);
      case "/healthz":
        return textReply(200, "ok\n");
      case "/readyz": {
        const r = view.ready();
        return jsonReply(r.ready ? 200 : 503, r);
      }
      case "/overload":
        return overloadReply(view, url.searchParams);
      default:
        return textReply(404, "not found: /metrics /healthz /readyz /overload /status\n");
    }
  };
}
