// The node's pods and the cluster's SloPolicy objects turned into the SloRule set the reconciler
// should hold. No I/O: the informers (informer.ts) hand it the complete current sets, it computes
// the rules and says when they, or the errors, change. A pod is placed at its pod-level cgroup
// (the kubelet's layout, cgroup/kubepods.ts); a pod or policy that cannot be used is skipped with
// an error naming it and the fix, and the others still count.

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
  type PodMeta,
  type SloPolicy,
} from "./annotations.js";

// API object shapes: only the fields the agent reads. The API server sends many more, and the
// official client's typed objects (V1Pod, ...) fit these shapes.

export interface ObjectMeta {
  readonly name?: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: ObjectMeta;
}

export interface ContainerStatus {
  readonly name?: string;
  /** "<runtime>://<id>"; absent until the runtime has created the container. */
  readonly containerID?: string;
}

export interface PodObject extends KubeObject {
  readonly spec?: { readonly nodeName?: string };
  readonly status?: {
    readonly phase?: string;
    readonly qosClass?: string;
    readonly containerStatuses?: readonly ContainerStatus[];
    readonly initContainerStatuses?: readonly ContainerStatus[];
    readonly ephemeralContainerStatuses?: readonly ContainerStatus[];
  };
}

// What the informers' caches keep of each object (informer.ts: transform): what this module and
// annotations.ts read, plus the name, namespace and resourceVersion the cache is keyed and
// versioned by. A pod as the API server sends it is several KiB (managedFields, spec, status);
// a full node's worth would cost the agent megabytes it never reads.

function keptMeta(m: ObjectMeta | undefined, withLabels: boolean): ObjectMeta {
  return {
    name: m?.name,
    namespace: m?.namespace,
    uid: m?.uid,
    resourceVersion: m?.resourceVersion,
    ...(withLabels && m?.labels ? { labels: m.labels } : {}),
  };
}

function keptStatuses(list?: readonly ContainerStatus[]): ContainerStatus[] | undefined {
  return list?.map((c) => ({ name: c.name, containerID: c.containerID }));
}

/** A pod as the cache keeps it: labels, the scx-slo.io annotations, phase, QoS, container ids. */
export function keptPod(pod: PodObject): PodObject {
  const annotations = Object.fromEntries(
    Object.entries(pod.metadata?.annotations ?? {}).filter(([k]) => k.startsWith("scx-slo.io/")),
  );
  return {
    metadata: { ...keptMeta(pod.metadata, true), annotations },
    spec: { nodeName: pod.spec?.nodeName },
    status: {
      phase: pod.status?.phase,
      qosClass: pod.status?.qosClass,
      containerStatuses: keptStatuses(pod.status?.containerStatuses),
      initContainerStatuses: keptStatuses(pod.status?.initContainerStatuses),
      ephemeralContainerStatuses: keptStatuses(pod.status?.ephemeralContainerStatuses),
    },
  };
}

/** An SloPolicy as the cache keeps it: its name and spec. */
export function keptPolicy(obj: KubeObject): KubeObject {
  const { metadata, spec } = obj as KubeObject & { readonly spec?: unknown };
  return { metadata: keptMeta(metadata, false), spec } as KubeObject;
}

/** Pods in these phases have (or are about to have) processes the scheduler sees. */
const LIVE_PHASES: ReadonlySet<string> = new Set(["Running", "Pending"]);

export interface PodSourceSnapshot {
  readonly rules: readonly SloRule[];
  /** One line per skipped pod or invalid policy, naming it and the fix. */
  readonly errors: readonly string[];
}

export interface PodSourceOptions {
  /** Pod-level cgroup path (see podPathResolver in cgroup/kubepods.ts); null while unknown. */
  readonly podPath: (pod: PodCgroupRef) => string | null;
  /** Called whenever the rules or the errors change, never for an update that changes neither. */
  readonly onChange?: (snapshot: PodSourceSnapshot) => void;
}

function key(meta: { readonly namespace?: string; readonly name?: string }): string {
  return `${meta.namespace ?? ""}/${meta.name ?? ""}`;
}

function byKey(a: KubeObject, b: KubeObject): number {
  const ka = key(a.metadata ?? {});
  const kb = key(b.metadata ?? {});
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

function containerIds(pod: PodObject): string[] {
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

/** What one pod comes to: a rule, an error, or nothing (no SLO, not live). */
interface PodOutcome {
  readonly rule?: SloRule;
  readonly error?: string;
  /** Its cgroup driver was unknown: worth computing again even when nothing changed. */
  readonly unplaced?: boolean;
}

interface Memo {
  readonly pod: PodObject;
  readonly policies: readonly SloPolicy[];
  readonly key: string;
  readonly outcome: PodOutcome;
}

const sameItems = <T>(a: readonly T[], b: readonly T[]): boolean =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The rules of every pod, recomputed for the pods that changed only: a change to one pod on a node
 * of a thousand computes that pod and reuses the other outcomes as they were (the same objects),
 * so a change of the rules is told from none by comparing objects, not by serialising them all.
 * The informers hand in the same object for a pod until it changes, so "changed" is "another
 * object"; a policy change recomputes every pod.
 */
export class PodSource {
  private pods: readonly PodObject[] = [];
  private policyObjects: readonly KubeObject[] = [];
  private parsed: {
    objects: readonly KubeObject[];
    policies: readonly SloPolicy[];
    errors: readonly string[];
  } = { objects: [], policies: [], errors: [] };
  private memo = new Map<string, Memo>();
  private snapshot: PodSourceSnapshot = { rules: [], errors: [] };
  private version = 0;
  private unplaced = 0;

  constructor(private readonly options: PodSourceOptions) {}

  get rules(): readonly SloRule[] {
    return this.snapshot.rules;
  }

  get errors(): readonly string[] {
    return this.snapshot.errors;
  }

  /** Counts changes of the rules (not of the errors alone): equal means the same rules. */
  get rulesVersion(): number {
    return this.version;
  }

  /**
   * Pods with an SLO whose cgroup could not be placed because the kubelet's cgroup driver is not
   * known yet (no kubepods cgroup): worth a refresh() once the kubelet has made it.
   */
  get unplacedPods(): number {
    return this.unplaced;
  }

  /** The node's pods, all of them (a list, or an informer's cache). */
  replacePods(items: readonly PodObject[]): void {
    this.pods = items;
    this.update();
  }

  /** Every SloPolicy object of the cluster. */
  replacePolicies(items: readonly KubeObject[]): void {
    this.policyObjects = items;
    this.update();
  }

  /** Both at once: one recomputation. */
  replaceAll(pods: readonly PodObject[], policies: readonly KubeObject[]): void {
    this.pods = pods;
    this.policyObjects = policies;
    this.update();
  }

  /** Recomputes without new objects: the cgroup driver may have become known since. */
  refresh(): void {
    this.update();
  }

  private update(): void {
    const next = this.compute();
    const rulesChanged = !sameItems(next.rules, this.snapshot.rules);
    if (!rulesChanged && sameItems(next.errors, this.snapshot.errors)) return;
    if (rulesChanged) this.version++;
    this.snapshot = next;
    this.options.onChange?.(next);
  }

  private policies(): typeof this.parsed {
    if (sameItems(this.policyObjects, this.parsed.objects)) return this.parsed;
    const errors: string[] = [];
    const policies: SloPolicy[] = [];
    for (const obj of [...this.policyObjects].sort(byKey)) {
      const parsed = parseSloPolicy(obj);
      if ("error" in parsed) errors.push(parsed.error);
      else policies.push(parsed.policy);
    }
    this.parsed = { objects: this.policyObjects, policies, errors };
    return this.parsed;
  }

  private compute(): PodSourceSnapshot {
    const { policies, errors: policyErrors } = this.policies();
    const memo = new Map<string, Memo>();
    let unplaced = 0;
    for (const pod of this.pods) {
      const uid = pod.metadata?.uid;
      if (!uid) continue;
      const was = this.memo.get(uid);
      let m: Memo;
      if (was && was.pod === pod && was.policies === policies && !was.outcome.unplaced) {
        m = was;
      } else {
        const outcome = this.outcome(pod, policies);
        // Most updates of a pod are its status: the same outcome keeps its old object.
        const same = was && JSON.stringify(was.outcome) === JSON.stringify(outcome);
        m = { pod, policies, key: key(pod.metadata ?? {}), outcome: same ? was.outcome : outcome };
      }
      if (m.outcome.unplaced) unplaced++;
      memo.set(uid, m);
    }
    this.memo = memo;
    this.unplaced = unplaced;
    const sorted = [...memo.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const rules: SloRule[] = [];
    const errors = [...policyErrors];
    for (const { outcome } of sorted) {
      if (outcome.rule) rules.push(outcome.rule);
      if (outcome.error !== undefined) errors.push(outcome.error);
    }
    return { rules, errors };
  }

  private outcome(pod: PodObject, policies: readonly SloPolicy[]): PodOutcome {
    if (!LIVE_PHASES.has(pod.status?.phase ?? "")) return {};
    const m = pod.metadata ?? {};
    if (!m.namespace || !m.name || !m.uid) return {};
    const meta: PodMeta = {
      namespace: m.namespace,
      name: m.name,
      labels: m.labels ?? {},
      annotations: m.annotations ?? {},
    };
    const decision = decidePodSlo(meta, policies);
    if (decision.kind === "none") return {};
    if (decision.kind === "error") return { error: decision.message };
    const id = `pod ${meta.namespace}/${meta.name}`;
    const qosClass = pod.status?.qosClass;
    if (!isQosClass(qosClass)) {
      return {
        error:
          `${id}: status.qosClass ${JSON.stringify(qosClass)} is not Guaranteed, Burstable or ` +
          "BestEffort, so its cgroup cannot be placed; it is retried on the pod's next update",
      };
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
      return { error: `${id}: ${err.message}` };
    }
    if (cgroupPath === null) {
      return {
        unplaced: true,
        error:
          `${id}: its cgroup is not known yet: no kubepods.slice or kubepods cgroup, so the ` +
          "kubelet's cgroup driver is unknown (is the kubelet running, and --cgroup-root the " +
          "node's cgroup2 mount?)",
      };
    }
    return { rule: podSloRule(meta, cgroupPath, decision) };
  }
}
