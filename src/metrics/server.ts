// The agent's local HTTP endpoint. Read-only by construction: GET/HEAD only, and no route changes
// SLOs or safe mode (those go through the config file, Kubernetes, and the safe-mode flag file,
// which need node access, not just network access to this port).
//
//   /metrics   Prometheus exposition
//   /healthz   the process is alive
//   /readyz    config loaded, and the scheduler attached or deliberately not (safe mode, unsupported)
//   /overload  ?cgroup=/path or ?namespace=ns&pod=name: {overloaded, misses, runs, window_s, retry_after_s}
//   /status    the agent's view as JSON (what `scx-slo status` shows)

import http from "node:http";
import type { AddressInfo } from "node:net";

export const DEFAULT_LISTEN = "127.0.0.1:9617";

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** "HOST:PORT", "[v6]:PORT" or ":PORT" (all interfaces); throws with a usage message. */
export function parseListen(text: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new Error(`--listen ${JSON.stringify(text)}: expected HOST:PORT, e.g. ${DEFAULT_LISTEN}`);
  }
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

export interface OverloadQuery {
  readonly cgroup?: string;
  readonly namespace?: string;
  readonly pod?: string;
}

export interface JsonReply {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface HttpView {
  metrics(): Promise<{ contentType: string; body: string }>;
  ready(): { ready: boolean; reasons: string[] };
  overload(query: OverloadQuery): JsonReply;
  status(): unknown;
}

export interface RunningServer {
  /** "http://host:port" as bound (port 0 resolves to the real port). */
  readonly url: string;
  close(): Promise<void>;
}

function send(
  res: http.ServerResponse,
  status: number,
  type: string,
  body: string,
  headers: Readonly<Record<string, string>> = {},
) {
  res.writeHead(status, {
    "Content-Type": type,
    "Cache-Control": "no-store",
    ...headers,
  });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

function sendJson(res: http.ServerResponse, reply: JsonReply) {
  send(res, reply.status, "application/json", JSON.stringify(reply.body) + "\n", reply.headers);
}

async function handle(view: HttpView, req: http.IncomingMessage, res: http.ServerResponse) {
  if (req.method !== "GET" && req.method !== "HEAD") {
    send(res, 405, "text/plain", "read-only endpoint: only GET and HEAD\n", { Allow: "GET, HEAD" });
    return;
  }
  const url = new URL(req.url ?? "/", "http://agent");
  switch (url.pathname) {
    case "/metrics": {
      const m = await view.metrics();
      send(res, 200, m.contentType, m.body);
      return;
    }
    case "/healthz":
      send(res, 200, "text/plain", "ok\n");
      return;
    case "/readyz": {
      const r = view.ready();
      sendJson(res, { status: r.ready ? 200 : 503, body: r });
      return;
    }
    case "/overload": {
      const q: Record<string, string> = {};
      for (const k of ["cgroup", "namespace", "pod"]) {
        const v = url.searchParams.get(k);
        if (v !== null) q[k] = v;
      }
      sendJson(res, view.overload(q));
      return;
    }
    case "/status":
      sendJson(res, { status: 200, body: view.status() });
      return;
    default:
      send(res, 404, "text/plain", "not found: /metrics /healthz /readyz /overload /status\n");
  }
}

export function startHttpServer(view: HttpView, listen: ListenAddress): Promise<RunningServer> {
  const server = http.createServer((req, res) => {
    handle(view, req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, "text/plain", `internal error: ${String(err)}\n`);
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => {
      server.off("error", reject);
      const a = server.address() as AddressInfo;
      const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
      resolve({
        url: `http://${host}:${a.port}`,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}
