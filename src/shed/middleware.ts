// Early load shedding for node:http and Express/Connect: while the pod is overloaded, answer 429
// with Retry-After before any work is done. The decision is a synchronous read of the in-memory
// verdict an OverloadSignal keeps; nothing here does I/O per request.
//
//   const shed = shedMiddleware(signal, { allowPaths: ["/healthz"] });
//   http.createServer((req, res) => shed(req, res, () => app(req, res)));   // node:http
//   expressApp.use(shed);                                                  // Express / Connect

import type http from "node:http";
import { retryAfterSeconds } from "./overload-signal.js";

/** What the middleware reads from the signal (an OverloadSignal fits). */
export interface ShedSignal {
  /** True only on a fresh verdict of overload; an unknown signal is not overloaded (fail-open). */
  readonly overloaded: boolean;
  /** Whole seconds for Retry-After, at least 1. */
  readonly retryAfterS: number;
}

export interface ShedOptions {
  /**
   * Paths never shed: a string matches the path exactly (query ignored), a RegExp is tested
   * against the path. E.g. ["/healthz", "/readyz", /^\/internal\//].
   */
  readonly allowPaths?: readonly (string | RegExp)[];
  /**
   * Share of requests shed while overloaded, 0..1 (default 1: all). Deterministic: 0.5 sheds
   * every second request, 0.25 every fourth; the first request of a run is shed. 0 sheds nothing
   * (counts only: a dry run).
   */
  readonly fraction?: number;
  /** Called for each shed request, after the 429 is written (logging, metrics). */
  readonly onShed?: (req: http.IncomingMessage, retryAfterS: number) => void;
}

export interface ShedCounters {
  /** Answered 429. */
  readonly shed: number;
  /** Let through (allow-listed ones included). */
  readonly passed: number;
  /** Let through because the path is allow-listed, while overloaded. */
  readonly allowListed: number;
}

export type NextFn = (err?: unknown) => void;

export interface ShedMiddleware {
  /**
   * Sheds (writes the 429, returns true, does not call next) or passes (calls next when given,
   * returns false).
   */
  (req: http.IncomingMessage, res: http.ServerResponse, next?: NextFn): boolean;
  readonly counters: ShedCounters;
}

/** Fixed-point units for the fraction, so the every-Nth pattern is exact. */
const UNIT = 1_000_000;

/** The request's path without query or fragment; Express's originalUrl when mounted. */
export function requestPath(req: http.IncomingMessage): string {
  const raw = (req as { originalUrl?: string }).originalUrl ?? req.url ?? "/";
  if (!raw.startsWith("/")) {
    // absolute-form ("http://host/path") or "*"
    try {
      return new URL(raw).pathname;
    } catch {
      return raw;
    }
  }
  const q = raw.search(/[?#]/);
  return q < 0 ? raw : raw.slice(0, q);
}

export function shedMiddleware(signal: ShedSignal, opts: ShedOptions = {}): ShedMiddleware {
  const fraction = opts.fraction ?? 1;
  if (!(fraction >= 0 && fraction <= 1)) {
    throw new RangeError(`fraction must be from 0 to 1, got ${opts.fraction}`);
  }
  const step = Math.round(fraction * UNIT);
  const exact = new Set<string>();
  const patterns: RegExp[] = [];
  for (const p of opts.allowPaths ?? []) {
    if (typeof p === "string") exact.add(p);
    else patterns.push(p);
  }
  const allowed = (path: string) => exact.has(path) || patterns.some((re) => re.test(path));
  // Starts one step short of a whole unit, so the first overloaded request is shed.
  let acc = UNIT - step;
  const counters = { shed: 0, passed: 0, allowListed: 0 };

  const pass = (next: NextFn | undefined): false => {
    counters.passed++;
    next?.();
    return false;
  };

  const mw = (req: http.IncomingMessage, res: http.ServerResponse, next?: NextFn): boolean => {
    if (!signal.overloaded || res.headersSent) return pass(next);
    if ((exact.size > 0 || patterns.length > 0) && allowed(requestPath(req))) {
      counters.allowListed++;
      return pass(next);
    }
    acc += step;
    if (acc < UNIT) return pass(next);
    acc -= UNIT;
    const secs = retryAfterSeconds(signal.retryAfterS);
    const body = `overloaded, retry after ${secs} s\n`;
    res.writeHead(429, {
      "Retry-After": String(secs),
      "Content-Type": "text/plain; charset=utf-8",
      "Content-Length": Buffer.byteLength(body),
      "Cache-Control": "no-store",
    });
    res.end(req.method === "HEAD" ? undefined : body);
    counters.shed++;
    opts.onShed?.(req, secs);
    return true;
  };
  Object.defineProperty(mw, "counters", { value: counters, enumerable: true });
  return mw as ShedMiddleware;
}
