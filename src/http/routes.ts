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
import { jsonReply, textReply, type Reply, type Route } from "./server.js";

/** An SLO cgroup as the overload route finds it. */
export interface OverloadKey {
  readonly cgroup: string;
  readonly namespace?: string;
  readonly pod?: string;
}

/** What the routes read from the agent. */
export interface AgentView {
  metrics(): Promise<{ contentType: string; body: string }>;
  ready(): { ready: boolean; reasons: string[] };
  /** The SLO cgroups on this node, for /overload's lookup. */
  sloCgroups(): readonly OverloadKey[];
  /** The verdict over these cgroups together. */
  verdict(cgroups: readonly string[]): OverloadVerdict;
  status(): AgentStatus;
}

export function overloadReply(view: AgentView, params: URLSearchParams): Reply {
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
  const v = view.verdict(keys);
  return jsonReply(
    200,
    { ...v, cgroups: keys },
    v.overloaded ? { "Retry-After": String(v.retry_after_s) } : {},
  );
}

export function agentRoutes(view: AgentView): Route {
  return async (url) => {
    switch (url.pathname) {
      case "/metrics": {
        const m = await view.metrics();
        return { status: 200, contentType: m.contentType, body: m.body };
      }
      case "/healthz":
        return textReply(200, "ok\n");
      case "/readyz": {
        const r = view.ready();
        return jsonReply(r.ready ? 200 : 503, r);
      }
      case "/overload":
        return overloadReply(view, url.searchParams);
      case "/status":
        return jsonReply(200, view.status());
      default:
        return textReply(404, "not found: /metrics /healthz /readyz /overload /status\n");
    }
  };
}
