// Kubernetes mode: the node's pods (annotations and SloPolicy objects) through the existing
// PodSource, with pod cgroup paths from the kubelet's layout. While the API server is unreachable
// the last good rules stay in force. The node's `scx-slo.io/safe-mode=true` annotation is polled
// as a second safe-mode switch (the ClusterRole needs get/list on nodes for it).

import { podPathResolver } from "../../cgroup/kubepods.js";
import type { SloRule } from "../../slo/model.js";
import { errorMessage, OnceLog, silentLogger, type Logger } from "../../util/log.js";
import type { RuleSource } from "../rule-source.js";
import { KubeClient, loadInClusterConfig, type Backoff, type KubeObject } from "./client.js";
import { kubernetesPodSource, type PodSource } from "./pod-source.js";

/** The node annotation's word on safe mode. */
export interface NodeSafeMode {
  readonly on: boolean;
  readonly reason: string;
}

export const NODE_SAFE_MODE_ANNOTATION = "scx-slo.io/safe-mode";

export interface KubernetesSourceOptions {
  readonly nodeName: string;
  readonly cgroupRoot: string;
  readonly log?: Logger;
  readonly watchPolicies?: boolean;
  /** How often the node's safe-mode annotation is read. */
  readonly nodePollMs?: number;
  /** For tests: a client against a fake API server; default: in-cluster config. */
  readonly client?: KubeClient;
  readonly backoff?: Backoff;
  /** How often pods are re-placed and API health is checked. */
  readonly refreshMs?: number;
}

export class KubernetesRuleSource implements RuleSource {
  readonly kind = "kubernetes" as const;
  private readonly log: Logger;
  private readonly client: KubeClient;
  private readonly pods: PodSource;
  private readonly abort = new AbortController();
  private rules: readonly SloRule[] | null = null;
  private onChange: () => void = () => {};
  private running: Promise<void> | null = null;
  private refresh: NodeJS.Timeout | null = null;
  private nodePoll: NodeJS.Timeout | null = null;
  private nodeSafe: NodeSafeMode = { on: false, reason: "" };
  private readonly podErrors: OnceLog;
  private lastApiError: string | null = null;

  constructor(private readonly options: KubernetesSourceOptions) {
    this.log = options.log ?? silentLogger;
    this.client = options.client ?? new KubeClient(loadInClusterConfig());
    this.podErrors = new OnceLog((m) => this.log.warn(m));
    this.pods = kubernetesPodSource(this.client, options.nodeName, {
      podPath: podPathResolver(options.cgroupRoot),
      watchPolicies: options.watchPolicies ?? true,
      ...(options.backoff ? { backoff: options.backoff } : {}),
      onChange: (snap) => {
        this.podErrors.update(snap.errors);
        this.take();
      },
    });
  }

  get description(): string {
    return `node ${this.options.nodeName}`;
  }

  current(): readonly SloRule[] | null {
    return this.rules;
  }

  /** The node annotation's view of safe mode (off while unknown). */
  safeMode(): NodeSafeMode {
    return this.nodeSafe;
  }

  /** Nothing to re-read: the rules follow the API server's watch. */
  async reload(why: string): Promise<void> {
    this.log.info(`${why}: nothing to reload in kubernetes mode (SLOs follow the API server)`);
  }

  private take(): void {
    if (!this.pods.connected && this.rules === null) return;
    const next = this.pods.rules;
    if (this.rules !== null && JSON.stringify(next) === JSON.stringify(this.rules)) return;
    this.rules = next;
    this.log.info(`kubernetes: ${next.length} pod SLO rules on ${this.description}`);
    this.onChange();
  }

  async start(onChange: () => void): Promise<void> {
    this.onChange = onChange;
    this.running = this.pods.run(this.abort.signal).catch((err: unknown) => {
      if (!this.abort.signal.aborted)
        this.log.error(`kubernetes source stopped: ${errorMessage(err)}`);
    });
    // The first successful list may bring no SLO pods (so no onChange): notice it here, and
    // re-place pods whose cgroup driver was unknown at first.
    this.refresh = setInterval(() => {
      this.pods.refresh();
      this.take();
      const err = this.pods.lastError;
      if (err !== this.lastApiError) {
        if (err !== null) {
          this.log.warn(
            `kubernetes API: ${err}; keeping the last good SLOs (${this.rules?.length ?? 0} rules)`,
          );
        } else if (this.lastApiError !== null) this.log.info("kubernetes API reachable again");
        this.lastApiError = err;
      }
    }, this.options.refreshMs ?? 1000);
    const pollNode = () => void this.readNodeAnnotation();
    pollNode();
    this.nodePoll = setInterval(pollNode, this.options.nodePollMs ?? 10_000);
  }

  private async readNodeAnnotation(): Promise<void> {
    try {
      const list = await this.client.list<KubeObject>(
        "/api/v1/nodes",
        { fieldSelector: `metadata.name=${this.options.nodeName}` },
        this.abort.signal,
      );
      const value = list.items[0]?.metadata?.annotations?.[NODE_SAFE_MODE_ANNOTATION];
      const on = value === "true";
      if (on !== this.nodeSafe.on) {
        this.log.info(`node annotation ${NODE_SAFE_MODE_ANNOTATION}=${value ?? "(unset)"}`);
      }
      this.nodeSafe = {
        on,
        reason: on ? `node annotation ${NODE_SAFE_MODE_ANNOTATION}=true` : "",
      };
    } catch (err) {
      // Unreachable API or no RBAC for nodes: keep the last known value.
      this.log.debug(`reading node ${this.options.nodeName}: ${errorMessage(err)}`);
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    if (this.refresh) clearInterval(this.refresh);
    if (this.nodePoll) clearInterval(this.nodePoll);
    await this.running;
  }
}
