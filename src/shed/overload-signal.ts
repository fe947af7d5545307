// The client side of the agent's per-pod overload signal. A poller asks the node agent's
// GET /overload every interval and keeps the latest verdict in memory, so a request handler's
// check is a synchronous read with no I/O.
//
// Fail-open: when the agent cannot be reached, answers late, answers an error status, or answers
// something that is not a verdict, the signal is "unknown" and nothing is shed. A load shedder
// that sheds on a broken agent turns a monitoring outage into a service outage.

import http from "node:http";
import { DEFAULT_AGENT_URL } from "../api/endpoints.js";
import {
  MAX_OVERLOAD_WINDOW_S,
  parseVerdict,
  type OverloadQuery,
  type OverloadVerdict,
} from "../api/overload.js";

export const DEFAULT_INTERVAL_MS = 100;

export type SignalState = "unknown" | "ok" | "overloaded";

export interface OverloadSignalOptions {
  /** The agent's base URL, http only (default http://127.0.0.1:9617). */
  readonly agentUrl?: string;
  readonly target: OverloadQuery;
  /** Poll period in ms (default 100). */
  readonly intervalMs?: number;
  /** Per-request timeout in ms; must be below the interval (default half the interval). */
  readonly timeoutMs?: number;
  /**
   * A verdict older than this (ms) counts as unknown, should polling ever stall (default ten
   * intervals, at least 1 s).
   */
  readonly maxAgeMs?: number;
  /** Called when the state changes; `reason` says why for "unknown". */
  readonly onChange?: (
    state: SignalState,
    verdict: OverloadVerdict | undefined,
    reason: string,
  ) => void;
}

export interface SignalStats {
  readonly state: SignalState;
  readonly polls: number;
  readonly pollFailures: number;
  readonly consecutiveFailures: number;
  readonly lastError: string | undefined;
  /** Date.now() of the last good verdict, 0 when none yet. */
  readonly lastOkAt: number;
}

const MAX_BODY = 64 * 1024;

/** Builds the /overload URL for a target; throws on a non-http agent URL or an empty target. */
export function overloadUrl(agentUrl: string, target: OverloadQuery): URL {
  let base: URL;
  try {
    base = new URL(agentUrl);
  } catch {
    throw new Error(
      `agent URL ${JSON.stringify(agentUrl)} is not a URL; e.g. ${DEFAULT_AGENT_URL}`,
    );
  }
  if (base.protocol !== "http:") {
    throw new Error(`agent URL ${JSON.stringify(agentUrl)} must be http://HOST:PORT`);
  }
  const url = new URL(base.pathname.replace(/\/+$/, "") + "/overload", base);
  if ("cgroup" in target) {
    if (!target.cgroup.startsWith("/")) {
      throw new Error(`cgroup ${JSON.stringify(target.cgroup)} must be an absolute path`);
    }
    url.searchParams.set("cgroup", target.cgroup);
  } else {
    if (target.namespace === "" || target.pod === "") {
      throw new Error("namespace and pod must both be non-empty");
    }
    url.searchParams.set("namespace", target.namespace);
    url.searchParams.set("pod", target.pod);
  }
  return url;
}

/**
 * Seconds for a Retry-After header: the agent's figure rounded up, at least 1 and at most its
 * window. retry_after_s is the time until the agent's sliding window clears, so it can never
 * rightly exceed the window, and no window exceeds MAX_OVERLOAD_WINDOW_S. A larger figure comes
 * from a broken agent; passed through, it would tell every client of the pod to stay away for
 * that long (1e+300 s) on the word of one bad answer.
 */
export function retryAfterSeconds(
  retryAfterS: number,
  windowS: number = MAX_OVERLOAD_WINDOW_S,
): number {
  const max = Number.isFinite(windowS)
    ? Math.max(1, Math.min(Math.ceil(windowS), MAX_OVERLOAD_WINDOW_S))
    : MAX_OVERLOAD_WINDOW_S;
  return Number.isFinite(retryAfterS) && retryAfterS > 1
    ? Math.min(Math.ceil(retryAfterS), max)
    : 1;
}

export class OverloadSignal {
  readonly url: URL;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly maxAgeMs: number;

  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private readonly onChange: OverloadSignalOptions["onChange"];
  private timer: NodeJS.Timeout | undefined;
  private inflight: http.ClientRequest | undefined;
  private running = false;
  /** Bumped by stop(): a poll that started before it leaves no trace. */
  private generation = 0;
  private current: OverloadVerdict | undefined;
  /** The state last passed to onChange; undefined until the first poll's outcome. */
  private reported: SignalState | undefined;
  private firstPoll: Promise<void> | undefined;
  private counts = { polls: 0, pollFailures: 0, consecutiveFailures: 0 };
  private lastError: string | undefined = "not polled yet";
  private lastOkAt = 0;

  constructor(opts: OverloadSignalOptions) {
    this.url = overloadUrl(opts.agentUrl ?? DEFAULT_AGENT_URL, opts.target);
    this.intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
    if (!Number.isInteger(this.intervalMs) || this.intervalMs < 10) {
      throw new RangeError(`intervalMs must be an integer >= 10, got ${opts.intervalMs}`);
    }
    this.timeoutMs = opts.timeoutMs ?? Math.floor(this.intervalMs / 2);
    if (
      !Number.isInteger(this.timeoutMs) ||
      this.timeoutMs < 1 ||
      this.timeoutMs >= this.intervalMs
    ) {
      throw new RangeError(
        `timeoutMs must be an integer from 1 to ${this.intervalMs - 1} (below the interval), got ${opts.timeoutMs}`,
      );
    }
    this.maxAgeMs = opts.maxAgeMs ?? Math.max(1000, 10 * this.intervalMs);
    this.onChange = opts.onChange;
  }

  /** Starts polling (the first poll right away). Idempotent. Returns this. */
  start(): this {
    if (this.running) return this;
    this.running = true;
    this.firstPoll = this.tick();
    return this;
  }

  /** Stops polling, aborts a poll in flight, closes the agent connection; the verdict is dropped. */
  stop(): void {
    this.running = false;
    this.generation++;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.inflight?.destroy();
    this.inflight = undefined;
    this.agent.destroy();
    // Unknown from now on, without an onChange: stopping is not an agent problem to report.
    this.current = undefined;
    this.lastError = "stopped";
    this.reported = "unknown";
  }

  /** Resolves once the first poll after start() has finished, well or not. */
  ready(): Promise<void> {
    return this.firstPoll ?? Promise.resolve();
  }

  /** "overloaded", "ok", or "unknown" (no fresh verdict: not started, agent down, bad answer). */
  get state(): SignalState {
    const v = this.current;
    if (v === undefined || Date.now() - this.lastOkAt > this.maxAgeMs) return "unknown";
    return v.overloaded ? "overloaded" : "ok";
  }

  /** True only on a fresh verdict of overload: the one check a request handler makes. */
  get overloaded(): boolean {
    return this.state === "overloaded";
  }

  /** The latest good verdict while it is fresh. */
  get verdict(): OverloadVerdict | undefined {
    return this.state === "unknown" ? undefined : this.current;
  }

  /** Seconds a shed client should wait: ceil(retry_after_s), from 1 to the agent's window. */
  get retryAfterS(): number {
    return retryAfterSeconds(this.current?.retry_after_s ?? 1, this.current?.window_s);
  }

  stats(): SignalStats {
    return {
      state: this.state,
      ...this.counts,
      lastError: this.lastError,
      lastOkAt: this.lastOkAt,
    };
  }

  /** One poll now, outside the schedule (tests, a manual refresh). */
  async pollOnce(): Promise<void> {
    const gen = this.generation;
    this.counts.polls++;
    try {
      const body = await this.fetchJson();
      const v = parseVerdict(body);
      if (typeof v === "string") throw new Error(v);
      if (gen !== this.generation) return;
      this.current = v;
      this.lastOkAt = Date.now();
      this.lastError = undefined;
      this.counts.consecutiveFailures = 0;
      this.report("");
    } catch (err) {
      if (gen !== this.generation) return;
      this.fail(err instanceof Error ? err.message : String(err));
    }
  }

  private async tick(): Promise<void> {
    const gen = this.generation;
    const started = Date.now();
    await this.pollOnce();
    if (!this.running || gen !== this.generation) return;
    const delay = Math.max(0, this.intervalMs - (Date.now() - started));
    this.timer = setTimeout(() => void this.tick(), delay);
    // The poller never keeps a process alive on its own.
    this.timer.unref();
  }

  private fail(reason: string): void {
    this.counts.pollFailures++;
    this.counts.consecutiveFailures++;
    this.current = undefined;
    this.lastError = reason;
    this.report(reason);
  }

  private report(reason: string): void {
    const s = this.state;
    if (s === this.reported) return;
    this.reported = s;
    this.onChange?.(s, this.verdict, reason);
  }

  private fetchJson(): Promise<unknown> {
    const gen = this.generation;
    return new Promise((resolve, reject) => {
      let settled = false;
      let req: http.ClientRequest;
      const done = (err: Error | undefined, value?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timeout);
        if (this.inflight === req) this.inflight = undefined;
        if (err) reject(err);
        else resolve(value);
      };
      const send = (retry: boolean) => {
        req = http.get(
          this.url,
          { agent: this.agent, headers: { accept: "application/json" } },
          (res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            res.on("data", (c: Buffer) => {
              size += c.length;
              if (size > MAX_BODY) {
                req.destroy();
                done(new Error(`agent answer over ${MAX_BODY} bytes`));
              } else chunks.push(c);
            });
            res.on("error", (e) => done(e));
            res.on("end", () => {
              const text = Buffer.concat(chunks).toString("utf8");
              if (res.statusCode !== 200) {
                const detail = text.trim().slice(0, 200);
                done(new Error(`agent answered ${res.statusCode}${detail ? `: ${detail}` : ""}`));
                return;
              }
              try {
                done(undefined, JSON.parse(text));
              } catch {
                done(new Error("agent answer is not JSON"));
              }
            });
          },
        );
        this.inflight = req;
        const sent = req;
        req.on("error", (e: NodeJS.ErrnoException) => {
          // A kept-alive connection the agent closed just as this poll reused it: once more.
          if (retry && sent.reusedSocket && (e.code === "ECONNRESET" || e.code === "EPIPE")) {
            if (!settled && gen === this.generation) send(false);
            else done(new Error("poll cancelled"));
            return;
          }
          done(new Error(`agent unreachable: ${e.message}`));
        });
      };
      const timeout = setTimeout(() => {
        req.destroy();
        done(new Error(`agent did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      send(true);
    });
  }
}
