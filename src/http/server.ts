// A small read-only HTTP server: GET and HEAD only, every other method 405. What each path
// answers is routes.ts; this module owns the sockets, their limits and timeouts, and error
// handling. The limits keep one client, or a crowd, from holding the process: a connection count
// in all and per client address, and timeouts for clients that send or read slowly.

import http from "node:http";
import type { AddressInfo } from "node:net";
import type { ListenAddress } from "../util/listen.js";
import { chunksLength } from "../util/text-chunks.js";

export interface Reply {
  readonly status: number;
  readonly contentType: string;
  /**
   * Buffers are written as they are to every client that gets them (no copy per response); a
   * list of them is sent in order as one body.
   */
  readonly body: string | Buffer | readonly Buffer[];
  readonly headers?: Readonly<Record<string, string>>;
  /** Called once the response has been handed to the kernel; not if it was cut off before. */
  readonly sent?: () => void;
}

export interface ServerLimits {
  /** Open connections in all; more are closed as they arrive. */
  readonly maxConnections: number;
  /** Open connections from one client address. */
  readonly maxPerClient: number;
  /** A connection idle (nothing sent or read) this long is closed. */
  readonly idleTimeoutMs: number;
  /**
   * Connections the kernel queues before they are accepted: a crowd that fills the queue makes
   * every client, a health probe too, wait for a SYN retry.
   */
  readonly backlog: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  maxConnections: 256,
  maxPerClient: 32,
  idleTimeoutMs: 30_000,
  backlog: 4096,
};

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
  const { body, sent } = reply;
  if (sent) res.once("finish", sent);
  const chunks = typeof body === "string" || Buffer.isBuffer(body) ? null : body;
  res.writeHead(reply.status, {
    "Content-Type": reply.contentType,
    "Cache-Control": "no-store",
    ...(chunks ? { "Content-Length": String(chunksLength(chunks)) } : {}),
    ...reply.headers,
  });
  if (res.req.method === "HEAD") {
    res.end();
    return;
  }
  if (chunks === null) {
    res.end(body);
    return;
  }
  for (const c of chunks) res.write(c);
  res.end();
}

/**
 * Admits at most max concurrent calls of route; the rest get `busy` at once, so a crowd of slow
 * requests cannot queue up behind each other (or up memory) while cheap routes stay answered.
 */
export function bounded(route: Route, max: number, busy: () => Reply): Route {
  let inFlight = 0;
  return async (url) => {
    if (inFlight >= max) return busy();
    inFlight++;
    try {
      return await route(url);
    } finally {
      inFlight--;
    }
  };
}

export function startHttpServer(
  route: Route,
  listen: ListenAddress,
  limits: ServerLimits = DEFAULT_LIMITS,
): Promise<RunningServer> {
  const perClient = new Map<string, number>();
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
  server.timeout = limits.idleTimeoutMs;
  server.maxConnections = limits.maxConnections;
  server.on("connection", (socket) => {
    const who = socket.remoteAddress ?? "?";
    const n = (perClient.get(who) ?? 0) + 1;
    if (n > limits.maxPerClient) {
      socket.destroy();
      return;
    }
    perClient.set(who, n);
    socket.once("close", () => {
      const left = (perClient.get(who) ?? 1) - 1;
      if (left > 0) perClient.set(who, left);
      else perClient.delete(who);
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: listen.port, host: listen.host, backlog: limits.backlog }, () => {
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
