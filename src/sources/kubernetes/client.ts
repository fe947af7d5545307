// A deliberately small Kubernetes API client: in-cluster config, list, watch, and the list+watch
// loop. Only `httpGet` touches the network; everything that interprets bytes (lists, the
// newline-delimited watch stream, Status errors) works on strings and streams so tests can feed it
// recorded payloads.

import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import { StringDecoder } from "node:string_decoder";
import { setTimeout as sleep } from "node:timers/promises";
import { isRecord } from "../../slo/validate.js";

// ---------------------------------------------------------------------------------------------
// API object shapes: only the fields the agent reads; the API server sends many more.

export interface ObjectMeta {
  readonly name?: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly deletionTimestamp?: string;
}

export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: ObjectMeta;
}

export interface V1ContainerStatus {
  readonly name?: string;
  /** "<runtime>://<id>"; absent until the runtime has created the container. */
  readonly containerID?: string;
}

export interface V1Pod extends KubeObject {
  readonly spec?: { readonly nodeName?: string };
  readonly status?: {
    readonly phase?: string;
    readonly qosClass?: string;
    readonly containerStatuses?: readonly V1ContainerStatus[];
    readonly initContainerStatuses?: readonly V1ContainerStatus[];
    readonly ephemeralContainerStatuses?: readonly V1ContainerStatus[];
  };
}

export interface KubeList<T> {
  readonly items: readonly T[];
  /** Where a watch resumes so that nothing between the list and the watch is missed. */
  readonly resourceVersion: string;
}

export type ObjectEvent<T> = {
  readonly type: "ADDED" | "MODIFIED" | "DELETED";
  readonly object: T;
};
export type WatchEvent<T> =
  ObjectEvent<T> | { readonly type: "BOOKMARK"; readonly resourceVersion: string };

/** How a watch ended: the server closed it (resume from the last version) or history expired (relist). */
export type WatchEnd = "closed" | "expired";

export class KubeApiError extends Error {
  override name = "KubeApiError";
  constructor(
    message: string,
    readonly code?: number,
    readonly reason?: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// In-cluster configuration.

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface KubeConfig {
  /** "https://10.96.0.1:443"; http:// only for tests against a local server. */
  readonly server: string;
  readonly ca?: string | Buffer;
  /** Re-read periodically: the kubelet rotates projected service account tokens in place. */
  readonly tokenFile?: string;
  readonly token?: string;
  readonly namespace?: string;
}

export interface InClusterPaths {
  readonly tokenFile?: string;
  readonly caFile?: string;
  readonly namespaceFile?: string;
}

export function loadInClusterConfig(
  paths: InClusterPaths = {},
  env: NodeJS.ProcessEnv = process.env,
): KubeConfig {
  const tokenFile = paths.tokenFile ?? path.join(SERVICE_ACCOUNT_DIR, "token");
  const caFile = paths.caFile ?? path.join(SERVICE_ACCOUNT_DIR, "ca.crt");
  const namespaceFile = paths.namespaceFile ?? path.join(SERVICE_ACCOUNT_DIR, "namespace");
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new KubeApiError(
      "not running in a Kubernetes pod: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are unset; " +
        "run the agent as the DaemonSet in deploy/, or use the file SLO source",
    );
  }
  const readOrExplain = (file: string, what: string): string => {
    try {
      return readFileSync(file, "utf8");
    } catch (err) {
      throw new KubeApiError(
        `cannot read the service account ${what} at ${file} (${(err as Error).message}); ` +
          "the agent's pod needs automountServiceAccountToken: true",
      );
    }
  };
  const token = readOrExplain(tokenFile, "token").trim();
  const ca = readOrExplain(caFile, "CA certificate");
  let namespace: string | undefined;
  try {
    namespace = readFileSync(namespaceFile, "utf8").trim();
  } catch {
    namespace = undefined; // only informational
  }
  // An IPv6 service address must be bracketed inside a URL.
  const hostPart = host.includes(":") ? `[${host}]` : host;
  return { server: `https://${hostPart}:${port}`, ca, tokenFile, token, namespace };
}

// ---------------------------------------------------------------------------------------------
// The one place that speaks HTTP.

const TOKEN_REREAD_MS = 60_000;
const LIST_DEADLINE_MS = 60_000;
const MAX_LIST_BYTES = 256 * 1024 * 1024;
const MAX_WATCH_LINE_BYTES = 16 * 1024 * 1024;

interface TokenCache {
  value: string | undefined;
  readAt: number;
}

function bearerToken(config: KubeConfig, cache: TokenCache): string | undefined {
  if (config.tokenFile === undefined) return config.token;
  if (cache.value === undefined || Date.now() - cache.readAt > TOKEN_REREAD_MS) {
    try {
      cache.value = readFileSync(config.tokenFile, "utf8").trim();
      cache.readAt = Date.now();
    } catch {
      // Mid-rotation the file can be briefly absent; the last token is still valid for a while.
      cache.value ??= config.token;
    }
  }
  return cache.value;
}

function httpGet(
  config: KubeConfig,
  token: string | undefined,
  pathAndQuery: string,
  signal: AbortSignal,
): Promise<http.IncomingMessage> {
  const url = new URL(pathAndQuery, config.server);
  const headers: Record<string, string> = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  return new Promise((resolve, reject) => {
    const options: https.RequestOptions = { headers, signal };
    if (url.protocol === "https:" && config.ca !== undefined) options.ca = config.ca;
    const get = url.protocol === "https:" ? https.get : http.get;
    const req = get(url, options, resolve);
    req.on("error", reject);
  });
}

// ---------------------------------------------------------------------------------------------
// Parsing: strings and streams in, typed values or KubeApiError out.

function hintFor(code: number | undefined, what: string): string {
  switch (code) {
    case 401:
      return "; the API server rejected the service account token (is it mounted and current?)";
    case 403:
      return `; the agent's ServiceAccount needs list and watch on ${what} (the ClusterRole in deploy/)`;
    case 404:
      return what.includes(".")
        ? `; the ${what} CustomResourceDefinition is not installed (apply it from deploy/)`
        : "";
    default:
      return "";
  }
}

/** A KubeApiError from a non-2xx answer, using the Status object the API server sends when it can. */
export function statusError(httpStatus: number, body: string, what: string): KubeApiError {
  let message = body.trim().slice(0, 500) || `HTTP ${httpStatus}`;
  let reason: string | undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    if (isRecord(parsed) && parsed.kind === "Status") {
      if (typeof parsed.message === "string") message = parsed.message;
      if (typeof parsed.reason === "string") reason = parsed.reason;
    }
  } catch {
    // not JSON (a proxy's HTML page, say): keep the raw text
  }
  return new KubeApiError(
    `${what}: ${httpStatus}${reason ? ` ${reason}` : ""}: ${message}${hintFor(httpStatus, what)}`,
    httpStatus,
    reason,
  );
}

/** Parses a list response ("PodList", "SloPolicyList", ...). */
export function parseList<T extends KubeObject>(body: string, what: string): KubeList<T> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw new KubeApiError(`${what}: list response is not JSON: ${(err as Error).message}`);
  }
  if (!isRecord(parsed) || !Array.isArray(parsed.items) || !isRecord(parsed.metadata)) {
    throw new KubeApiError(`${what}: list response has no items/metadata`);
  }
  const rv = parsed.metadata.resourceVersion;
  if (typeof rv !== "string" || rv === "") {
    throw new KubeApiError(`${what}: list response has no metadata.resourceVersion`);
  }
  const items = parsed.items.filter((i): i is T => isRecord(i) && isRecord(i.metadata));
  return { items, resourceVersion: rv };
}

/** One parsed line of a watch stream: an event for the caller, or how the watch must end. */
export type WatchLine<T> =
  { readonly kind: "event"; readonly event: WatchEvent<T> } | { readonly kind: "expired" };

/**
 * Parses one watch line. ERROR carries a Status: code 410 (reason "Expired" or "Gone") means the
 * requested resourceVersion has been compacted away and only a fresh list can resync; any other
 * ERROR is thrown.
 */
export function parseWatchLine<T extends KubeObject>(line: string, what: string): WatchLine<T> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (err) {
    throw new KubeApiError(`${what}: watch line is not JSON: ${(err as Error).message}`);
  }
  if (!isRecord(parsed) || typeof parsed.type !== "string" || !isRecord(parsed.object)) {
    throw new KubeApiError(`${what}: watch line is not a {type, object} event`);
  }
  const object = parsed.object;
  switch (parsed.type) {
    case "ADDED":
    case "MODIFIED":
    case "DELETED":
      if (!isRecord(object.metadata)) {
        throw new KubeApiError(`${what}: ${parsed.type} event without object.metadata`);
      }
      return { kind: "event", event: { type: parsed.type, object: object as T } };
    case "BOOKMARK": {
      // A bookmark's object holds only metadata.resourceVersion: progress, not a change.
      const rv = isRecord(object.metadata) ? object.metadata.resourceVersion : undefined;
      if (typeof rv !== "string" || rv === "") {
        throw new KubeApiError(`${what}: BOOKMARK without metadata.resourceVersion`);
      }
      return { kind: "event", event: { type: "BOOKMARK", resourceVersion: rv } };
    }
    case "ERROR": {
      const code = typeof object.code === "number" ? object.code : undefined;
      if (code === 410) return { kind: "expired" };
      const reason = typeof object.reason === "string" ? object.reason : undefined;
      const message = typeof object.message === "string" ? object.message : JSON.stringify(object);
      throw new KubeApiError(
        `${what}: watch error ${code ?? "?"}${reason ? ` ${reason}` : ""}: ${message}`,
        code,
        reason,
      );
    }
    default:
      throw new KubeApiError(`${what}: unknown watch event type ${JSON.stringify(parsed.type)}`);
  }
}

/** Splits a byte or string stream into lines, whatever the chunk boundaries. */
export async function* readLines(
  stream: AsyncIterable<Uint8Array | string>,
  maxLineBytes = MAX_WATCH_LINE_BYTES,
): AsyncGenerator<string> {
  const decoder = new StringDecoder("utf8");
  let pending = "";
  for await (const chunk of stream) {
    pending += typeof chunk === "string" ? chunk : decoder.write(Buffer.from(chunk));
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (line !== "") yield line;
    }
    if (pending.length > maxLineBytes) {
      throw new KubeApiError(`watch line longer than ${maxLineBytes} bytes`);
    }
  }
  pending += decoder.end();
  if (pending.trim() !== "") yield pending.trim();
}

/** Feeds a watch stream's events to onEvent until it ends; returns why it ended. */
export async function consumeWatchStream<T extends KubeObject>(
  stream: AsyncIterable<Uint8Array | string>,
  onEvent: (event: WatchEvent<T>) => void,
  what: string,
): Promise<WatchEnd> {
  for await (const line of readLines(stream)) {
    const parsed = parseWatchLine<T>(line, what);
    if (parsed.kind === "expired") return "expired";
    onEvent(parsed.event);
  }
  return "closed";
}

async function readBody(res: AsyncIterable<Uint8Array | string>, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    const buf = Buffer.from(chunk);
    size += buf.length;
    if (size > limit) throw new KubeApiError(`response larger than ${limit} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString("utf8");
}

// ---------------------------------------------------------------------------------------------
// The client.

export interface WatchOptions {
  /** Server-side watch length; the server closes the stream after it and the loop resumes. */
  readonly timeoutSeconds?: number;
}

export interface ResourceApi<T extends KubeObject> {
  list(signal?: AbortSignal): Promise<KubeList<T>>;
  watch(
    resourceVersion: string,
    onEvent: (event: WatchEvent<T>) => void,
    signal?: AbortSignal,
  ): Promise<WatchEnd>;
}

const DEFAULT_WATCH_SECONDS = 300;
// The server should end the watch at timeoutSeconds; a stream silent past this margin is a dead
// connection (a NAT or load balancer dropped it) and would otherwise hang forever.
const WATCH_DEADLINE_MARGIN_MS = 30_000;

export class KubeClient {
  private readonly token: TokenCache = { value: undefined, readAt: 0 };

  constructor(
    readonly config: KubeConfig,
    private readonly watchOptions: WatchOptions = {},
  ) {
    if (config.token !== undefined) this.token = { value: config.token, readAt: Date.now() };
  }

  async list<T extends KubeObject>(
    resourcePath: string,
    query: Readonly<Record<string, string>>,
    signal: AbortSignal = new AbortController().signal,
  ): Promise<KubeList<T>> {
    const what = `GET ${resourcePath}`;
    const timeout = AbortSignal.timeout(LIST_DEADLINE_MS);
    const combined = AbortSignal.any([signal, timeout]);
    let res: http.IncomingMessage;
    let body: string;
    try {
      res = await this.get(resourcePath, query, combined, what);
      body = await readBody(res, MAX_LIST_BYTES);
    } catch (err) {
      if (timeout.aborted && !signal.aborted) {
        throw new KubeApiError(
          `${what}: API server ${this.config.server} did not answer within ${LIST_DEADLINE_MS / 1000}s`,
        );
      }
      throw err;
    }
    if (res.statusCode !== 200) {
      throw statusError(res.statusCode ?? 0, body, resourceOf(resourcePath));
    }
    return parseList<T>(body, what);
  }

  async watch<T extends KubeObject>(
    resourcePath: string,
    query: Readonly<Record<string, string>>,
    resourceVersion: string,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal = new AbortController().signal,
  ): Promise<WatchEnd> {
    const what = `WATCH ${resourcePath}`;
    const seconds = this.watchOptions.timeoutSeconds ?? DEFAULT_WATCH_SECONDS;
    const deadline = AbortSignal.timeout(seconds * 1000 + WATCH_DEADLINE_MARGIN_MS);
    const combined = AbortSignal.any([signal, deadline]);
    const fullQuery = {
      ...query,
      watch: "true",
      resourceVersion,
      allowWatchBookmarks: "true",
      timeoutSeconds: String(seconds),
    };
    try {
      const res = await this.get(resourcePath, fullQuery, combined, what);
      if (res.statusCode !== 200) {
        const body = await readBody(res, 1024 * 1024);
        // Older API servers refuse a too-old resourceVersion with HTTP 410 instead of an ERROR event.
        if (res.statusCode === 410) return "expired";
        throw statusError(res.statusCode ?? 0, body, resourceOf(resourcePath));
      }
      return await consumeWatchStream<T>(res, onEvent, what);
    } catch (err) {
      if (deadline.aborted && !signal.aborted) return "closed";
      throw err;
    }
  }

  /** Pods bound to one node, across all namespaces. */
  pods(nodeName: string): ResourceApi<V1Pod> {
    const query = { fieldSelector: `spec.nodeName=${nodeName}` };
    return {
      list: (signal) => this.list<V1Pod>("/api/v1/pods", query, signal),
      watch: (rv, onEvent, signal) => this.watch<V1Pod>("/api/v1/pods", query, rv, onEvent, signal),
    };
  }

  listPods(nodeName: string, signal?: AbortSignal): Promise<KubeList<V1Pod>> {
    return this.pods(nodeName).list(signal);
  }

  watchPods(
    nodeName: string,
    resourceVersion: string,
    onEvent: (event: WatchEvent<V1Pod>) => void,
    signal?: AbortSignal,
  ): Promise<WatchEnd> {
    return this.pods(nodeName).watch(resourceVersion, onEvent, signal);
  }

  /** Objects of a custom resource across all namespaces, e.g. ("scx-slo.io", "v1alpha1", "slopolicies"). */
  custom<T extends KubeObject>(group: string, version: string, plural: string): ResourceApi<T> {
    const p = `/apis/${group}/${version}/${plural}`;
    return {
      list: (signal) => this.list<T>(p, {}, signal),
      watch: (rv, onEvent, signal) => this.watch<T>(p, {}, rv, onEvent, signal),
    };
  }

  private async get(
    resourcePath: string,
    query: Readonly<Record<string, string>>,
    signal: AbortSignal,
    what: string,
  ): Promise<http.IncomingMessage> {
    const qs = new URLSearchParams(query).toString();
    try {
      return await httpGet(
        this.config,
        bearerToken(this.config, this.token),
        qs ? `${resourcePath}?${qs}` : resourcePath,
        signal,
      );
    } catch (err) {
      if (signal.aborted) throw err;
      throw new KubeApiError(
        `${what}: API server ${this.config.server} unreachable: ${(err as Error).message}`,
      );
    }
  }
}

function resourceOf(resourcePath: string): string {
  // "/api/v1/pods" -> "pods"; "/apis/scx-slo.io/v1alpha1/slopolicies" -> "slopolicies.scx-slo.io"
  const parts = resourcePath.split("/").filter(Boolean);
  const plural = parts[parts.length - 1] ?? resourcePath;
  return parts[0] === "apis" && parts[1] !== undefined ? `${plural}.${parts[1]}` : plural;
}

// ---------------------------------------------------------------------------------------------
// The list+watch loop.

export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 500, maxMs: 30_000 };

export interface ListWatchHandlers<T extends KubeObject> {
  /** A complete, fresh set of objects: replaces whatever the caller had. */
  onList(items: readonly T[]): void;
  onEvent(event: ObjectEvent<T>): void;
  /** The API server is unreachable or refused: the caller keeps its last good state. */
  onError(err: Error): void;
}

const QUICK_WATCH_MS = 1_000;

/**
 * List, then watch from the list's resourceVersion, resuming after every normal close and listing
 * again after 410 Gone. On any failure: report, wait with exponential back-off (jittered, so a
 * fleet of agents does not stampede a recovering API server), and list again. Returns when the
 * signal aborts.
 */
export async function runListWatch<T extends KubeObject>(
  api: ResourceApi<T>,
  handlers: ListWatchHandlers<T>,
  signal: AbortSignal,
  backoff: Backoff = DEFAULT_BACKOFF,
): Promise<void> {
  let delay = backoff.initialMs;
  const pause = async (): Promise<void> => {
    const ms = delay * (0.8 + Math.random() * 0.4);
    delay = Math.min(delay * 2, backoff.maxMs);
    await sleep(ms, undefined, { signal }).catch(() => undefined);
  };
  while (!signal.aborted) {
    try {
      const listed = await api.list(signal);
      handlers.onList(listed.items);
      let rv = listed.resourceVersion;
      for (;;) {
        const started = Date.now();
        let events = 0;
        const end = await api.watch(
          rv,
          (ev) => {
            events++;
            if (ev.type === "BOOKMARK") {
              rv = ev.resourceVersion;
              return;
            }
            rv = ev.object.metadata?.resourceVersion ?? rv;
            handlers.onEvent(ev);
          },
          signal,
        );
        if (signal.aborted) return;
        // A server that ends every watch at once would otherwise be hammered in a tight loop.
        if (events > 0 || Date.now() - started >= QUICK_WATCH_MS) delay = backoff.initialMs;
        else await pause();
        if (end === "expired") break;
      }
    } catch (err) {
      if (signal.aborted) return;
      handlers.onError(err instanceof Error ? err : new Error(String(err)));
      await pause();
    }
  }
}
