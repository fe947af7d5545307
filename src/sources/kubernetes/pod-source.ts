// The node's pods (and, optionally, the cluster's SloPolicy objects) kept current by list+watch,
// turned into the SloRule set the reconciler should hold. While the API server is unreachable the
// last good sets stay in force: a scheduler that forgot every SLO during a control-plane outage
// would hurt exactly the workloads the SLOs protect.

import {
  KubepodsError,
  QOS_CLASSES,
  type PodCgroupRef,
  type QosClass,
} from "../../cgroup/kubepods.js";
import type { SloRule } from "../../slo/model.js";
import {
  decidePodSlo,
  parseSloPolicy,
  podSloRule,
  SLO_POLICY_CRD,
  type PodMeta,
  type SloPolicy,
} from "./annotations.js";
import {
  DEFAULT_BACKOFF,
  runListWatch,
  type Backoff,
  type KubeClient,
  type KubeObject,
  type ObjectEvent,
  type ResourceApi,
  type V1Pod,
} from "./client.js";

/** Pods in these phases have (or are about to have) processes the scheduler sees. */
const LIVE_PHASES: ReadonlySet<string> = new Set(["Running", "Pending"]);

export interface PodSourceSnapshot {
  readonly rules: readonly SloRule[];
  /** One line per skipped pod or invalid policy, naming it and the fix. */
  readonly errors: readonly string[];
}

export interface PodSourceOptions {
  readonly pods: ResourceApi<V1Pod>;
  /** SloPolicy objects; left out, only pod annotations count. */
  readonly policies?: ResourceApi<KubeObject>;
  /** Pod-level cgroup path (see podPathResolver in cgroup/kubepods.ts); null while unknown. */
  readonly podPath: (pod: PodCgroupRef) => string | null;
  /** Called whenever the rules or the errors change, never for an update that changes neither. */
  readonly onChange?: (snapshot: PodSourceSnapshot) => void;
  readonly backoff?: Backoff;
}

function key(meta: { readonly namespace?: string; readonly name?: string }): string {
  return `${meta.namespace ?? ""}/${meta.name ?? ""}`;
}

function containerIds(pod: V1Pod): string[] {
  const s = pod.status;
  return [
    ...(s?.initContainerStatuses ?? []),
    ...(s?.containerStatuses ?? []),
    ...(s?.ephemeralContainerStatuses ?? []),
  ]
    .map((c) => c.containerID ?? "")
    .filter((id) => id !== "");
}

function isQosClass(v: unknown): v is QosClass {
  return typeof v === "string" && (QOS_CLASSES as readonly string[]).includes(v);
}

export class PodSource {
  private readonly pods = new Map<string, V1Pod>();
  private readonly policyObjects = new Map<string, KubeObject>();
  private snapshot: PodSourceSnapshot = { rules: [], errors: [] };
  private snapshotKey = JSON.stringify(this.snapshot);
  private podsConnected = false;
  private podsError: string | null = null;
  private policiesError: string | null = null;

  constructor(private readonly options: PodSourceOptions) {}

  get rules(): readonly SloRule[] {
    return this.snapshot.rules;
  }

  get errors(): readonly string[] {
    return this.snapshot.errors;
  }

  /** True between a successful pod list and the next failure. */
  get connected(): boolean {
    return this.podsConnected;
  }

  /** The latest API failure not yet followed by a successful list; null when healthy. */
  get lastError(): string | null {
    return this.podsError ?? this.policiesError;
  }

  replacePods(items: readonly V1Pod[]): void {
    this.pods.clear();
    for (const pod of items) {
      const uid = pod.metadata?.uid;
      if (uid) this.pods.set(uid, pod);
    }
    this.update();
  }

  applyPodEvent(event: ObjectEvent<V1Pod>): void {
    const uid = event.object.metadata?.uid;
    if (!uid) return;
    if (event.type === "DELETED") this.pods.delete(uid);
    else this.pods.set(uid, event.object);
    this.update();
  }

  replacePolicies(items: readonly KubeObject[]): void {
    this.policyObjects.clear();
    for (const p of items) this.policyObjects.set(key(p.metadata ?? {}), p);
    this.update();
  }

  applyPolicyEvent(event: ObjectEvent<KubeObject>): void {
    const k = key(event.object.metadata ?? {});
    if (event.type === "DELETED") this.policyObjects.delete(k);
    else this.policyObjects.set(k, event.object);
    this.update();
  }

  /** Recomputes without an API event: the cgroup driver may have become known since. */
  refresh(): void {
    this.update();
  }

  /** Runs list+watch for pods (and policies) until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const backoff = this.options.backoff ?? DEFAULT_BACKOFF;
    const loops = [
      runListWatch(
        this.options.pods,
        {
          onList: (items) => {
            this.podsConnected = true;
            this.podsError = null;
            this.replacePods(items);
          },
          onEvent: (ev) => this.applyPodEvent(ev),
          onError: (err) => {
            this.podsConnected = false;
            this.podsError = err.message;
          },
        },
        signal,
        backoff,
      ),
    ];
    if (this.options.policies !== undefined) {
      loops.push(
        runListWatch(
          this.options.policies,
          {
            onList: (items) => {
              this.policiesError = null;
              this.replacePolicies(items);
            },
            onEvent: (ev) => this.applyPolicyEvent(ev),
            onError: (err) => {
              this.policiesError = err.message;
            },
          },
          signal,
          backoff,
        ),
      );
    }
    await Promise.all(loops);
  }

  private update(): void {
    const next = this.compute();
    const nextKey = JSON.stringify(next);
    if (nextKey === this.snapshotKey) return;
    this.snapshot = next;
    this.snapshotKey = nextKey;
    this.options.onChange?.(next);
  }

  private compute(): PodSourceSnapshot {
    const errors: string[] = [];
    const policies: SloPolicy[] = [];
    for (const k of [...this.policyObjects.keys()].sort()) {
      const parsed = parseSloPolicy(this.policyObjects.get(k));
      if ("error" in parsed) errors.push(parsed.error);
      else policies.push(parsed.policy);
    }

    const rules: SloRule[] = [];
    const live = [...this.pods.values()]
      .filter((p) => LIVE_PHASES.has(p.status?.phase ?? ""))
      .sort((a, b) => (key(a.metadata ?? {}) < key(b.metadata ?? {}) ? -1 : 1));
    for (const pod of live) {
      const m = pod.metadata ?? {};
      if (!m.namespace || !m.name || !m.uid) continue;
      const meta: PodMeta = {
        namespace: m.namespace,
        name: m.name,
        labels: m.labels ?? {},
        annotations: m.annotations ?? {},
      };
      const decision = decidePodSlo(meta, policies);
      if (decision.kind === "none") continue;
      if (decision.kind === "error") {
        errors.push(decision.message);
        continue;
      }
      const id = `pod ${meta.namespace}/${meta.name}`;
      const qosClass = pod.status?.qosClass;
      if (!isQosClass(qosClass)) {
        errors.push(
          `${id}: status.qosClass ${JSON.stringify(qosClass)} is not Guaranteed, Burstable or ` +
            "BestEffort, so its cgroup cannot be placed; it is retried on the pod's next update",
        );
        continue;
      }
      let cgroupPath: string | null;
      try {
        cgroupPath = this.options.podPath({
          uid: m.uid,
          qosClass,
          containerIds: containerIds(pod),
        });
      } catch (err) {
        if (!(err instanceof KubepodsError)) throw err;
        errors.push(`${id}: ${err.message}`);
        continue;
      }
      if (cgroupPath === null) {
        errors.push(
          `${id}: its cgroup is not known yet: no kubepods.slice or kubepods cgroup, so the ` +
            "kubelet's cgroup driver is unknown; set it in the agent's configuration",
        );
        continue;
      }
      rules.push(podSloRule(meta, cgroupPath, decision));
    }
    return { rules, errors };
  }
}

/** A PodSource for one node, talking to the API server through client. */
export function kubernetesPodSource(
  client: KubeClient,
  nodeName: string,
  options: Omit<PodSourceOptions, "pods" | "policies"> & { readonly watchPolicies?: boolean },
): PodSource {
  const { watchPolicies, ...rest } = options;
  return new PodSource({
    ...rest,
    pods: client.pods(nodeName),
    ...(watchPolicies
      ? {
          policies: client.custom<KubeObject>(
            SLO_POLICY_CRD.group,
            SLO_POLICY_CRD.version,
            SLO_POLICY_CRD.plural,
          ),
        }
      : {}),
  });
}
