// A small read-only HTTP server: GET and HEAD only, every other method 405. What each path
// answers is routes.ts; this module owns the socket, timeouts and error handling.

import http from "node:http";
import type { AddressInfo } from "node:net";
import type { ListenAddress } from "../util/listen.js";

export interface Reply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Answers one GET/HEAD request for a path and its query. */
export type Route = (url: URL) => Reply | Promise<Reply>;

export interface RunningServer {
  /** "http://host:port" as bound (port 0 resolves to the real port). */
  readonly url: string;
  close(): Promise<void>;
}

export function jsonReply(
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): Reply {
  return { status, contentType: "application/json", body: JSON.stringify(body) + "\n", headers };
}

export function textReply(status: number, body: string): Reply {
  return { status, contentType: "text/plain", body };
}

function send(res: http.ServerResponse, reply: Reply): void {
  res.writeHead(reply.status, {
    "Content-Type": reply.contentType,
    "Cache-Control": "no-store",
    ...reply.headers,
  });
  res.end(res.req.method === "HEAD" ? undefined : reply.body);
}

export function startHttpServer(route: Route, listen: ListenAddress): Promise<RunningServer> {
  const server = http.createServer((req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(res, {
        ...textReply(405, "read-only endpoint: only GET and HEAD\n"),
        headers: { Allow: "GET, HEAD" },
      });
      return;
    }
    Promise.resolve()
      .then(() => route(new URL(req.url ?? "/", "http://agent")))
      .then(
        (reply) => send(res, reply),
        (err: unknown) => {
          if (!res.headersSent) send(res, textReply(500, `internal error: ${String(err)}\n`));
          else res.destroy();
        },
      );
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
