// The shedding sidecar: a small reverse proxy in front of an app in the same pod. While the pod is
// overloaded it answers 429 + Retry-After itself, before the request body is even read (and, for
// `Expect: 100-continue`, before the client sends it); otherwise it forwards the request to the
// upstream, streaming bodies both ways. An upstream that cannot be reached, or resets, is a 502;
// one that goes silent past the upstream timeout is a 504.

import http from "node:http";
import type { AddressInfo } from "node:net";
import type { ListenAddress } from "../util/listen.js";
import { shedMiddleware, type ShedOptions, type ShedSignal } from "./middleware.js";

export interface SidecarOptions {
  readonly listen: ListenAddress;
  /** http://HOST:PORT[/base]; a base path is prefixed to every forwarded path. */
  readonly upstream: string | URL;
  readonly signal: ShedSignal;
  readonly shed?: ShedOptions;
  /** No byte from the upstream for this long (ms) is a 504 (default 60 000). */
  readonly upstreamTimeoutMs?: number;
  /** One line per notable event (upstream errors); default: nothing. */
  readonly log?: (line: string) => void;
}

export interface SidecarStats {
  readonly shed: number;
  readonly passed: number;
  readonly allowListed: number;
  /** Forwarded and answered by the upstream. */
  readonly proxied: number;
  /** Answered 502/504 (or cut off) because of the upstream. */
  readonly upstreamErrors: number;
  /** Clients that went away before their answer was complete. */
  readonly clientAborts: number;
}

export interface RunningSidecar {
  /** "http://host:port" as bound (port 0 resolves to the real port). */
  readonly url: string;
  stats(): SidecarStats;
  /** Stops accepting, lets requests in flight finish for up to graceMs (default 0), then cuts. */
  close(graceMs?: number): Promise<void>;
}

/** Connection-level headers (RFC 9110 7.6.1) that a proxy must not forward. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** The headers minus hop-by-hop ones and any the Connection header names. */
export function endToEndHeaders(
  headers: http.IncomingHttpHeaders,
  drop: readonly string[] = [],
): http.OutgoingHttpHeaders {
  const named = new Set(drop);
  const conn = headers.connection;
  if (conn !== undefined) {
    for (const t of conn.split(",")) named.add(t.trim().toLowerCase());
  }
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || named.has(k)) continue;
    out[k] = v;
  }
  return out;
}

export function parseUpstream(upstream: string | URL): URL {
  let u: URL;
  try {
    u = new URL(upstream);
  } catch {
    throw new Error(`upstream ${JSON.stringify(String(upstream))} is not a URL`);
  }
  if (u.protocol !== "http:") {
    throw new Error(`upstream ${JSON.stringify(String(upstream))} must be http://HOST:PORT`);
  }
  if (u.search !== "" || u.hash !== "" || u.username !== "" || u.password !== "") {
    throw new Error(`upstream ${JSON.stringify(String(upstream))}: no query, fragment or user`);
  }
  return u;
}

export function startSidecar(opts: SidecarOptions): Promise<RunningSidecar> {
  const upstream = parseUpstream(opts.upstream);
  const basePath = upstream.pathname.replace(/\/+$/, "");
  const upstreamTimeoutMs = opts.upstreamTimeoutMs ?? 60_000;
  const log = opts.log ?? (() => {});
  const shed = shedMiddleware(opts.signal, opts.shed);
  const agent = new http.Agent({ keepAlive: true });
  const counts = { proxied: 0, upstreamErrors: 0, clientAborts: 0 };

  function forward(req: http.IncomingMessage, res: http.ServerResponse, continued: boolean) {
    let target = req.url ?? "/";
    if (!target.startsWith("/")) {
      try {
        const abs = new URL(target);
        target = abs.pathname + abs.search;
      } catch {
        target = "/";
      }
    }
    // Expect was answered on this hop (100 Continue); the framing is re-done by node.
    const headers = endToEndHeaders(req.headers, continued ? ["expect"] : []);
    if (req.headers["transfer-encoding"] !== undefined && headers["content-length"] === undefined) {
      headers["transfer-encoding"] = "chunked";
    }
    const client = req.socket.remoteAddress;
    if (client !== undefined) {
      const prior = req.headers["x-forwarded-for"];
      headers["x-forwarded-for"] = prior ? `${prior}, ${client}` : client;
    }
    headers["x-forwarded-proto"] ??= "http";
    if (req.headers.host !== undefined) headers["x-forwarded-host"] ??= req.headers.host;

    let clientGone = false;
    let timedOut = false;
    const upreq = http.request({
      protocol: "http:",
      hostname: upstream.hostname.replace(/^\[|\]$/g, ""),
      port: upstream.port || 80,
      method: req.method,
      path: basePath + target,
      headers,
      agent,
    });

    const failUpstream = (status: number, what: string) => {
      counts.upstreamErrors++;
      log(`upstream ${req.method} ${target}: ${what}`);
      req.unpipe(upreq);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const body = `${status === 504 ? "upstream timed out" : "upstream unavailable"}\n`;
      // Drain what the client still sends; if it is not all here, do not reuse the connection.
      const drainNeeded = !req.complete;
      req.resume();
      res.writeHead(status, {
        "Content-Type": "text/plain; charset=utf-8",
        "Content-Length": Buffer.byteLength(body),
        "Cache-Control": "no-store",
        ...(drainNeeded ? { Connection: "close" } : {}),
      });
      res.end(req.method === "HEAD" ? undefined : body);
    };

    upreq.setTimeout(upstreamTimeoutMs, () => {
      timedOut = true;
      upreq.destroy(new Error(`no answer within ${upstreamTimeoutMs} ms`));
    });
    upreq.on("error", (err) => {
      if (clientGone) return;
      failUpstream(timedOut ? 504 : 502, err.message);
    });
    upreq.on("response", (upres) => {
      if (clientGone) {
        upres.resume();
        return;
      }
      res.writeHead(upres.statusCode ?? 502, upres.statusMessage, endToEndHeaders(upres.headers));
      upres.pipe(res);
      upres.on("close", () => {
        if (upres.complete) counts.proxied++;
        else if (!clientGone) {
          counts.upstreamErrors++;
          log(`upstream ${req.method} ${target}: answer cut off`);
          res.destroy();
        }
      });
    });
    res.on("close", () => {
      if (!res.writableFinished) {
        clientGone = true;
        counts.clientAborts++;
        upreq.destroy();
      }
    });
    req.pipe(upreq);
  }

  function handle(req: http.IncomingMessage, res: http.ServerResponse, expectsContinue: boolean) {
    if (shed(req, res)) return;
    if (expectsContinue) res.writeContinue();
    forward(req, res, expectsContinue);
  }

  const server = http.createServer((req, res) => handle(req, res, false));
  // Shed before the client even sends its body.
  server.on("checkContinue", (req: http.IncomingMessage, res: http.ServerResponse) =>
    handle(req, res, true),
  );
  server.on("upgrade", (_req, socket) => {
    socket.on("error", () => {});
    const body = "protocol upgrades (WebSocket) are not proxied by scx-slo-shed\n";
    socket.end(
      `HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.listen.port, opts.listen.host, () => {
      server.off("error", reject);
      const a = server.address() as AddressInfo;
      const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
      resolve({
        url: `http://${host}:${a.port}`,
        stats: () => ({ ...shed.counters, ...counts }),
        close: (graceMs = 0) =>
          new Promise<void>((done) => {
            const cut = setTimeout(() => server.closeAllConnections(), graceMs);
            server.close(() => {
              clearTimeout(cut);
              agent.destroy();
              done();
            });
            server.closeIdleConnections();
            if (graceMs <= 0) server.closeAllConnections();
          }),
      });
    });
  });
}
