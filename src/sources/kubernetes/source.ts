// Kubernetes mode: three informers of the official client (informer.ts) keep the node's pods, the
// cluster's SloPolicy objects and the node itself current; PodSource turns the first two into
// rules, with pod cgroup paths from the kubelet's layout. Nothing is polled: a change reaches the
// rules as the watch delivers it. While the API server is unreachable the caches, and so the last
// good rules, stay in force. The node's `scx-slo.io/safe-mode=true` annotation is a second
// safe-mode switch, told to the agent as soon as the node's watch delivers it.
//
// Credentials: in a pod, the mounted ServiceAccount token and CA (in-cluster config); elsewhere a
// kubeconfig file (`scx-slo run --kubeconfig FILE`, or $KUBECONFIG).

import { existsSync } from "node:fs";
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from "@kubernetes/client-node";
import { podPathResolver } from "../../cgroup/kubepods.js";
import type { SloRule } from "../../slo/model.js";
import { errorMessage, OnceLog, silentLogger, type Logger } from "../../util/log.js";
import type { RuleSource } from "../rule-source.js";
import { SLO_POLICY_CRD } from "./annotations.js";
import { Informer, type Backoff, type InformerCounts } from "./informer.js";
import { keptPod, keptPolicy, PodSource, type KubeObject, type PodObject } from "./pod-source.js";

/** The node annotation's word on safe mode. */
export interface NodeSafeMode {
  readonly on: boolean;
  readonly reason: string;
}

export const NODE_SAFE_MODE_ANNOTATION = "scx-slo.io/safe-mode";

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

// What the node's cache keeps: its name, resourceVersion and the safe-mode annotation (the pod
// and policy caches keep what pod-source.ts reads: keptPod, keptPolicy).
function keptNode(obj: KubernetesObject): KubernetesObject {
  const m = obj.metadata;
  const value = m?.annotations?.[NODE_SAFE_MODE_ANNOTATION];
  return {
    metadata: {
      name: m?.name,
      resourceVersion: m?.resourceVersion,
      annotations: value === undefined ? {} : { [NODE_SAFE_MODE_ANNOTATION]: value },
    },
  };
}

/** The official client's objects are these shapes, and more. */
const asClientTransform = (f: (o: PodObject) => KubeObject) =>
  f as unknown as (o: KubernetesObject) => KubernetesObject;

/** Pods with an SLO whose cgroup driver is not known yet are placed again this often. */
const UNPLACED_RETRY_MS = 1000;

export interface KubernetesSourceOptions {
  readonly nodeName: string;
  readonly cgroupRoot: string;
  readonly log?: Logger;
  readonly watchPolicies?: boolean;
  /** A kubeconfig file, or a loaded config; default: in-cluster config (the pod's ServiceAccount). */
  readonly kubeconfig?: string | KubeConfig;
  readonly backoff?: Backoff;
  /** Server-side watch length in seconds (informer.ts). */
  readonly watchSeconds?: number;
  /** The node's safe-mode annotation changed (safeMode() says how). */
  readonly onSafeModeChange?: () => void;
}

/**
 * The client configuration: the kubeconfig file when one is named, else the pod's in-cluster
 * config. Throws with what is missing and how to fix it.
 */
export function loadKubeConfig(file?: string, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  if (file !== undefined && file !== "") {
    if (file.includes(":")) {
      throw new Error(
        `kubeconfig ${JSON.stringify(file)}: name one file (a list of files is not supported)`,
      );
    }
    try {
      kc.loadFromFile(file);
    } catch (err) {
      throw new Error(`cannot load kubeconfig ${file}: ${errorMessage(err)}`);
    }
    if (!kc.getCurrentCluster()) {
      throw new Error(`kubeconfig ${file}: its current context names no cluster`);
    }
    return kc;
  }
  if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) {
    throw new Error(
      "not running in a Kubernetes pod: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are unset; " +
        "run the agent as the DaemonSet in deploy/, give it a kubeconfig (--kubeconfig FILE or " +
        "$KUBECONFIG), or use the file SLO source",
    );
  }
  for (const f of ["token", "ca.crt"]) {
    if (!existsSync(`${SERVICE_ACCOUNT_DIR}/${f}`)) {
      throw new Error(
        `no service account ${f} at ${SERVICE_ACCOUNT_DIR}/${f}: the agent's pod needs ` +
          "automountServiceAccountToken: true",
      );
    }
  }
  kc.loadFromCluster();
  return kc;
}

export class KubernetesRuleSource implements RuleSource {
  readonly kind = "kubernetes" as const;
  private readonly log: Logger;
  private readonly pods: PodSource;
  private readonly podInformer: Informer<KubernetesObject>;
  private readonly policyInformer: Informer<KubernetesObject> | null;
  private readonly nodeInformer: Informer<KubernetesObject>;
  private rules: readonly SloRule[] | null = null;
  private takenVersion = -1;
  private onChange: () => void = () => {};
  private nodeSafe: NodeSafeMode = { on: false, reason: "" };
  private readonly podErrors: OnceLog;
  private pending: NodeJS.Immediate | null = null;
  private retry: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly options: KubernetesSourceOptions) {
    this.log = options.log ?? silentLogger;
    const kc =
      options.kubeconfig instanceof KubeConfig
        ? options.kubeconfig
        : loadKubeConfig(options.kubeconfig);
    this.podErrors = new OnceLog((m) => this.log.warn(m));
    this.pods = new PodSource({
      podPath: podPathResolver(options.cgroupRoot),
      onChange: (snap) => this.podErrors.update(snap.errors),
    });
    const core = kc.makeApiClient(CoreV1Api);
    const node = options.nodeName;
    const common = {
      kubeConfig: kc,
      onError: (m: string) =>
        this.log.warn(
          `kubernetes API: ${m}; retrying, and keeping the last good SLOs ` +
            `(${this.rules?.length ?? 0} rules)`,
        ),
      ...(options.backoff ? { backoff: options.backoff } : {}),
      ...(options.watchSeconds !== undefined ? { watchSeconds: options.watchSeconds } : {}),
    };
    const recovered = (resource: string) => () =>
      this.log.info(`kubernetes API: ${resource} reachable again`);

    const podSelector = `spec.nodeName=${node}`;
    this.podInformer = new Informer({
      ...common,
      resource: "pods",
      path: "/api/v1/pods",
      fieldSelector: podSelector,
      list: () =>
        core.listPodForAllNamespaces({ fieldSelector: podSelector }) as Promise<
          KubernetesListObject<KubernetesObject>
        >,
      transform: asClientTransform(keptPod),
      onChange: () => this.schedule(),
      onRecovered: recovered("pods"),
    });

    if (options.watchPolicies ?? true) {
      const custom = kc.makeApiClient(CustomObjectsApi);
      const { group, version, plural } = SLO_POLICY_CRD;
      this.policyInformer = new Informer({
        ...common,
        resource: `${plural}.${group}`,
        path: `/apis/${group}/${version}/${plural}`,
        list: () =>
          custom.listClusterCustomObject({ group, version, plural }) as Promise<
            KubernetesListObject<KubernetesObject>
          >,
        transform: asClientTransform(keptPolicy),
        onChange: () => this.schedule(),
        onRecovered: recovered(`${plural}.${group}`),
      });
    } else {
      this.policyInformer = null;
    }

    const nodeSelector = `metadata.name=${node}`;
    this.nodeInformer = new Informer({
      ...common,
      resource: "nodes",
      path: "/api/v1/nodes",
      fieldSelector: nodeSelector,
      list: () =>
        core.listNode({ fieldSelector: nodeSelector }) as Promise<
          KubernetesListObject<KubernetesObject>
        >,
      transform: keptNode,
      onChange: () => this.readNodeAnnotation(),
      onRecovered: recovered("nodes"),
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

  /** Requests sent and failures seen by each informer (client side). */
  apiCounts(): Readonly<Record<"pods" | "slopolicies" | "nodes", InformerCounts | null>> {
    return {
      pods: this.podInformer.counts,
      slopolicies: this.policyInformer?.counts ?? null,
      nodes: this.nodeInformer.counts,
    };
  }

  /** Nothing to re-read: the rules follow the API server's watch. */
  async reload(why: string): Promise<void> {
    this.log.info(`${why}: nothing to reload in kubernetes mode (SLOs follow the API server)`);
  }

  async start(onChange: () => void): Promise<void> {
    this.onChange = onChange;
    this.stopped = false;
    // Results arrive through the informers' callbacks; the agent serves meanwhile, not ready.
    this.podInformer.start();
    this.policyInformer?.start();
    this.nodeInformer.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pending) clearImmediate(this.pending);
    if (this.retry) clearTimeout(this.retry);
    this.podInformer.stop();
    this.policyInformer?.stop();
    this.nodeInformer.stop();
  }

  /** One recomputation when the pods and the policies changed together. */
  private schedule(): void {
    if (this.pending || this.stopped) return;
    this.pending = setImmediate(() => {
      this.pending = null;
      this.update();
    });
  }

  private update(): void {
    if (this.stopped) return;
    const policies = this.policyInformer;
    // Rules only from a complete view: the pods listed, and the policies listed (or failing,
    // e.g. no CRD installed, in which case annotations alone count).
    if (!this.podInformer.synced) return;
    if (policies && !policies.synced && !policies.failedEver) return;
    this.pods.replaceAll(
      this.podInformer.items() as readonly PodObject[],
      (policies?.items() ?? []) as readonly KubeObject[],
    );
    if (this.pods.unplacedPods > 0 && this.retry === null) {
      this.retry = setTimeout(() => {
        this.retry = null;
        this.update();
      }, UNPLACED_RETRY_MS);
    }
    if (this.rules !== null && this.pods.rulesVersion === this.takenVersion) return;
    const next = this.pods.rules;
    this.rules = next;
    this.takenVersion = this.pods.rulesVersion;
    this.log.info(`kubernetes: ${next.length} pod SLO rules on ${this.description}`);
    this.onChange();
  }

  private readNodeAnnotation(): void {
    const nodeObj = this.nodeInformer.items()[0];
    const value = nodeObj?.metadata?.annotations?.[NODE_SAFE_MODE_ANNOTATION];
    const on = value === "true";
    if (on === this.nodeSafe.on) return;
    this.log.info(`node annotation ${NODE_SAFE_MODE_ANNOTATION}=${value ?? "(unset)"}`);
    this.nodeSafe = { on, reason: on ? `node annotation ${NODE_SAFE_MODE_ANNOTATION}=true` : "" };
    this.options.onSafeModeChange?.();
  }
}
