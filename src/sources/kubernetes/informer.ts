// One kind of API object kept current with the official client's informer (@kubernetes/client-node
// ListWatch): list once, then watch from the list's resourceVersion, holding every object in a
// cache. What this module adds to it:
//
// - bookmarks: each watch asks for them (allowWatchBookmarks), so a resumed watch starts from a
//   recent resourceVersion even when nothing it selects has changed;
// - a bounded watch: the server ends each one after a random 5-10 minutes (timeoutSeconds), and one
//   silent for longer than that is taken for a dead connection and dropped;
// - restarts: the library's informer stops at any error (API server gone, 403, a failed list). It
//   is started again after an exponential back-off (jittered, capped), and resumes watching from
//   the last resourceVersion it saw, so an API server that comes back is not sent a new list. Only
//   410 Gone (that version compacted away) makes it list again, which the library does by itself;
// - a watch the server ends at once, again and again, is retried after the same back-off instead
//   of in a tight loop.
//
// The client is loaded only in Kubernetes mode (the agent imports this folder's source lazily).

import {
  ApiException,
  ListWatch,
  Watch,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from "@kubernetes/client-node";
import { errorMessage } from "../../util/log.js";

export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

/**
 * From half a second, doubling, to 5 s (each wait jittered to between half and one and a half
 * times that): an API server back from a restart is seen within 7.5 s, and a fleet of agents
 * retrying against one that is down sends it one connection attempt per informer and node every
 * few seconds, spread out by the jitter.
 */
export const DEFAULT_BACKOFF: Backoff = { initialMs: 500, maxMs: 5000 };

/** The server ends each watch after a random time in [WATCH_SECONDS, 2 * WATCH_SECONDS). */
export const WATCH_SECONDS = 300;
/** A watch silent this long past its own timeout is a dead connection. */
const WATCH_DEADLINE_MARGIN_MS = 30_000;
/** A watch that ends sooner than this with no event counts as ended at once. */
const QUICK_WATCH_MS = 1000;

/** What an informer did, counted on the client's side. */
export interface InformerCounts {
  /** List requests sent (the first, and one after each 410 Gone or a restart that needs one). */
  lists: number;
  /** Watch requests sent. */
  watches: number;
  /** Failures reported (each followed by a restart after the back-off). */
  errors: number;
}

export interface InformerOptions<T extends KubernetesObject> {
  readonly kubeConfig: KubeConfig;
  /** For messages: "pods", "nodes", "slopolicies.scx-slo.io". */
  readonly resource: string;
  /** The collection's URL path, e.g. "/api/v1/pods". */
  readonly path: string;
  readonly fieldSelector?: string;
  /** The list call (the typed API's), with the same field selector. */
  readonly list: () => Promise<KubernetesListObject<T>>;
  /** Something in the cache changed, or a list completed (even one that changed nothing). */
  readonly onChange: () => void;
  /** A failure (message already explains it); the informer restarts by itself. */
  readonly onError?: (message: string) => void;
  /** The first success after a failure. */
  readonly onRecovered?: () => void;
  readonly backoff?: Backoff;
  /** Server-side watch length (the random extra on top is up to as much again). */
  readonly watchSeconds?: number;
  /**
   * What of each object the cache keeps (as client-go's informer transforms do): a pod as the API
   * server sends it is several KiB, mostly managedFields and spec, of which the agent reads a few
   * fields. Must keep metadata.name, namespace and resourceVersion (the cache's keys and its
   * change test).
   */
  readonly transform?: (obj: T) => T;
}

/** Why a request failed, with the fix when the status code names one. */
export function describeApiError(err: unknown, resource: string): string {
  let code: number | undefined;
  let message = errorMessage(err);
  if (err instanceof ApiException) {
    code = err.code;
    message = statusMessage(err.body) ?? `HTTP ${err.code}`;
  } else if (typeof (err as { statusCode?: unknown })?.statusCode === "number") {
    // A watch refused before streaming: the client gives the status line only.
    code = (err as { statusCode: number }).statusCode;
    message = `HTTP ${code} ${message}`;
  }
  return `${resource}: ${message}${hint(code, resource)}`;
}

function statusMessage(body: unknown): string | undefined {
  let parsed = body;
  if (typeof body === "string") {
    try {
      parsed = JSON.parse(body);
    } catch {
      return body.trim().slice(0, 300) || undefined;
    }
  }
  const m = (parsed as { message?: unknown } | null)?.message;
  return typeof m === "string" ? m : undefined;
}

function hint(code: number | undefined, resource: string): string {
  switch (code) {
    case 401:
      return " (the API server refused the credentials: is the service account token mounted and current?)";
    case 403:
      // An API server that has just started refuses for a moment, until its RBAC cache is filled.
      return (
        ` (the agent's ServiceAccount needs list and watch on ${resource}: the ClusterRole in ` +
        "deploy/rbac.yaml; just after an API server starts, this passes by itself)"
      );
    case 404:
      return resource.includes(".")
        ? ` (the ${resource} CustomResourceDefinition is not installed: apply deploy/crd-slopolicy.yaml)`
        : "";
    default:
      return "";
  }
}

/** The part of the informer a watch reports to. */
interface WatchHooks {
  readonly stopped: () => boolean;
  readonly watchSeconds: number;
  /** Waited before a watch request (non-zero after watches that ended at once). */
  readonly delayBeforeWatch: () => Promise<void>;
  readonly sent: () => void;
  /** Applied to each object a watch delivers (not to bookmarks or errors). */
  readonly transform: (obj: unknown) => unknown;
  readonly opened: () => void;
  readonly ended: (err: unknown, ms: number, events: number) => void;
}

/** The library's Watch with bookmarks, a server-side timeout and a client-side deadline. */
class BoundedWatch extends Watch {
  constructor(
    config: KubeConfig,
    private readonly hooks: WatchHooks,
  ) {
    super(config);
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    await this.hooks.delayBeforeWatch();
    if (this.hooks.stopped()) {
      // Stopped while a list was in flight: no new connection.
      const c = new AbortController();
      c.abort();
      return c;
    }
    const seconds = Math.round(this.hooks.watchSeconds * (1 + Math.random()));
    const started = Date.now();
    let events = 0;
    let ended = false;
    let deadline: NodeJS.Timeout | undefined;
    this.hooks.sent();
    let controller: AbortController;
    try {
      controller = await this.open(path, queryParams, seconds, callback, {
        ended: (err) => {
          ended = true;
          clearTimeout(deadline);
          this.hooks.ended(err, Date.now() - started, events);
          done(err);
        },
        event: () => events++,
      });
    } catch (err) {
      // Before any request (credentials unreadable, say): a failure like any other.
      if (!ended) {
        ended = true;
        done(err);
      }
      const c = new AbortController();
      c.abort();
      return c;
    }
    if (this.hooks.stopped()) {
      // Stopped while this request was on its way: the informer could not abort it yet, and an
      // open watch would keep the process alive until the server's timeout.
      controller.abort();
      return controller;
    }
    if (!ended) {
      // Streaming (HTTP 200). Aborting ends it with an error, so the informer restarts.
      this.hooks.opened();
      deadline = setTimeout(() => controller.abort(), seconds * 1000 + WATCH_DEADLINE_MARGIN_MS);
      deadline.unref();
    }
    return controller;
  }

  private open(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    seconds: number,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    on: { ended: (err: unknown) => void; event: () => void },
  ): Promise<AbortController> {
    return super.watch(
      path,
      { ...queryParams, allowWatchBookmarks: true, timeoutSeconds: seconds },
      (phase, obj, raw) => {
        on.event();
        const keep = phase === "ADDED" || phase === "MODIFIED" || phase === "DELETED";
        callback(phase, keep ? this.hooks.transform(obj) : obj, raw);
      },
      on.ended,
    );
  }
}

export class Informer<T extends KubernetesObject> {
  readonly counts: InformerCounts = { lists: 0, watches: 0, errors: 0 };
  private readonly lw: ListWatch<T>;
  private readonly backoff: Backoff;
  private stopped = false;
  private delayMs: number;
  private retry: NodeJS.Timeout | null = null;
  private quickEnds = 0;
  private listedOnce = false;
  private failedOnce = false;
  private error: string | null = null;
  private pendingChange: NodeJS.Immediate | null = null;

  constructor(private readonly o: InformerOptions<T>) {
    this.backoff = o.backoff ?? DEFAULT_BACKOFF;
    this.delayMs = this.backoff.initialMs;
    const watch = new BoundedWatch(o.kubeConfig, {
      stopped: () => this.stopped,
      watchSeconds: o.watchSeconds ?? WATCH_SECONDS,
      delayBeforeWatch: () => {
        if (this.quickEnds === 0) return Promise.resolve();
        const ms = Math.min(this.backoff.initialMs * 2 ** (this.quickEnds - 1), this.backoff.maxMs);
        return new Promise((r) => setTimeout(r, this.jittered(ms)));
      },
      sent: () => this.counts.watches++,
      transform: (obj) => (o.transform ? o.transform(obj as T) : obj),
      opened: () => this.healthy(),
      ended: (err, ms, events) => {
        this.quickEnds = !err && events === 0 && ms < QUICK_WATCH_MS ? this.quickEnds + 1 : 0;
      },
    });
    const list = async (): Promise<KubernetesListObject<T>> => {
      this.counts.lists++;
      const listed = await o.list();
      const result = o.transform ? { ...listed, items: listed.items.map(o.transform) } : listed;
      this.listedOnce = true;
      this.healthy();
      // A list that changes nothing is news too (the first one says the cache is complete).
      this.changed();
      return result;
    };
    this.lw = new ListWatch<T>(o.path, watch, list, false, undefined, o.fieldSelector);
    for (const verb of ["add", "update", "delete"] as const) this.lw.on(verb, () => this.changed());
    this.lw.on("error", (err: unknown) => this.failed(err));
  }

  /** Starts listing and watching; returns at once (results arrive through onChange). */
  start(): void {
    this.stopped = false;
    this.run();
  }

  stop(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    if (this.pendingChange) clearImmediate(this.pendingChange);
    this.pendingChange = null;
    void this.lw.stop();
  }

  /** The informer's start; anything it throws is a failure like the ones it reports. */
  private run(): void {
    this.lw.start().catch((err: unknown) => this.failed(err));
  }

  /** Every object in the cache. */
  items(): readonly T[] {
    return this.lw.list();
  }

  /** A list has succeeded at least once: items() is the API server's view, not a blank. */
  get synced(): boolean {
    return this.listedOnce;
  }

  /** Has failed at least once (e.g. the CRD is missing), so waiting for it is pointless. */
  get failedEver(): boolean {
    return this.failedOnce;
  }

  /** The latest failure not yet followed by a success; null when healthy. */
  get lastError(): string | null {
    return this.error;
  }

  /**
   * onChange once for a burst of events, after it: a list of a thousand pods reports each one as
   * added in one synchronous run, and the informer applies a list only after the list call
   * resolves, so the cache is complete by the time this runs.
   */
  private changed(): void {
    if (this.pendingChange || this.stopped) return;
    this.pendingChange = setImmediate(() => {
      this.pendingChange = null;
      if (!this.stopped) this.o.onChange();
    });
  }

  private healthy(): void {
    this.delayMs = this.backoff.initialMs;
    if (this.error !== null) {
      this.error = null;
      this.o.onRecovered?.();
    }
  }

  private failed(err: unknown): void {
    // Stopping aborts the watch, which the informer reports as an error too.
    if (this.stopped) return;
    this.counts.errors++;
    this.failedOnce = true;
    this.error = describeApiError(err, this.o.resource);
    this.o.onError?.(this.error);
    if (this.retry) clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      this.retry = null;
      if (!this.stopped) this.run();
    }, this.jittered(this.nextDelay()));
  }

  private nextDelay(): number {
    const d = this.delayMs;
    this.delayMs = Math.min(this.delayMs * 2, this.backoff.maxMs);
    return d;
  }

  /** Spread over [d/2, 3d/2), so agents that lost the API server together do not retry together. */
  private jittered(ms: number): number {
    return ms * (0.5 + Math.random());
  }
}
