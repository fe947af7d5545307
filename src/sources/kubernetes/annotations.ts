// A pod's SLO, from its own annotations or from the SloPolicy objects of its namespace.
//
// Precedence: a pod's scx-slo.io/budget-ms annotation decides its whole SLO (policies are ignored
// for it), because whoever annotated the pod said exactly what it needs. Without that annotation the
// matching policy with the lowest budget applies (the strictest promise wins, so adding a policy can
// only tighten a pod), and a scx-slo.io/importance annotation still overrides the policy's
// importance. A malformed value skips that pod only, with an error naming pod, field and fix.

import { z } from "zod";
import {
  BUDGET_MAX_MS,
  BUDGET_MIN_MS,
  IMPORTANCE_MAX,
  IMPORTANCE_MIN,
  NS_PER_MS,
  type SloRule,
} from "../../slo/model.js";
import {
  checkBudgetMs,
  checkImportance,
  isRecord,
  parseBudgetText,
  parseImportanceText,
} from "../../slo/validate.js";

export const ANNOTATION_BUDGET_MS = "scx-slo.io/budget-ms";
export const ANNOTATION_IMPORTANCE = "scx-slo.io/importance";
export const DEFAULT_IMPORTANCE = 50;

/** The SloPolicy custom resource (deploy/ carries its CustomResourceDefinition). */
export const SLO_POLICY_CRD = {
  group: "scx-slo.io",
  version: "v1alpha1",
  apiVersion: "scx-slo.io/v1alpha1",
  kind: "SloPolicy",
  listKind: "SloPolicyList",
  plural: "slopolicies",
  singular: "slopolicy",
  scope: "Namespaced",
} as const;

export interface SloPolicySpec {
  /** Empty or absent matchLabels selects every pod of the namespace, as in Kubernetes selectors. */
  readonly selector: { readonly matchLabels?: Readonly<Record<string, string>> };
  readonly budgetMs: number;
  readonly importance?: number;
}

export interface SloPolicy {
  readonly apiVersion: typeof SLO_POLICY_CRD.apiVersion;
  readonly kind: typeof SLO_POLICY_CRD.kind;
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly uid?: string;
    readonly resourceVersion?: string;
  };
  readonly spec: SloPolicySpec;
}

/** The parts of a v1 Pod's metadata the SLO depends on. */
export interface PodMeta {
  readonly namespace: string;
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

export type PodSloDecision =
  | { readonly kind: "none" }
  | {
      readonly kind: "slo";
      readonly budgetMs: number;
      readonly importance: number;
      /** "annotations" or "SloPolicy <ns>/<name>", for logs. */
      readonly from: string;
    }
  | { readonly kind: "error"; readonly message: string };

const budgetHint = `a number of milliseconds from ${BUDGET_MIN_MS} to ${BUDGET_MAX_MS}, e.g. "20"`;
const importanceHint = `an integer from ${IMPORTANCE_MIN} to ${IMPORTANCE_MAX} (default ${DEFAULT_IMPORTANCE})`;

function podName(pod: PodMeta): string {
  return `${pod.namespace}/${pod.name}`;
}

type Parsed = { readonly value?: number; readonly error?: string };

function parseBudgetAnnotation(pod: PodMeta): Parsed {
  const raw = pod.annotations?.[ANNOTATION_BUDGET_MS];
  if (raw === undefined) return {};
  const budget = parseBudgetText(raw.trim());
  if (!budget.ok) {
    return {
      error:
        `pod ${podName(pod)}: annotation ${ANNOTATION_BUDGET_MS}=${JSON.stringify(raw)} is invalid; ` +
        `set it to ${budgetHint}`,
    };
  }
  return { value: Number(raw.trim()) };
}

function parseImportanceAnnotation(pod: PodMeta): Parsed {
  const raw = pod.annotations?.[ANNOTATION_IMPORTANCE];
  if (raw === undefined) return {};
  const importance = parseImportanceText(raw.trim());
  if (!importance.ok) {
    return {
      error:
        `pod ${podName(pod)}: annotation ${ANNOTATION_IMPORTANCE}=${JSON.stringify(raw)} is invalid; ` +
        `set it to ${importanceHint}, or remove it`,
    };
  }
  return { value: importance.value };
}

// The shape of an SloPolicy as the API server stores it; values are checked afterwards with the
// vocabulary every source shares, so the error can name the policy, the field and the fix.
const PolicyObjectSchema = z.object({
  metadata: z.object({
    name: z.string().min(1),
    namespace: z.string().min(1),
    uid: z.string().optional(),
    resourceVersion: z.string().optional(),
  }),
  spec: z.object({
    selector: z
      .object({ matchLabels: z.record(z.string()).optional() })
      .passthrough()
      .optional(),
    budgetMs: z.unknown(),
    importance: z.unknown(),
  }),
});

/** What is wrong with the policy's shape, for the first issue zod found. */
function shapeError(issue: z.ZodIssue | undefined): string {
  const at = issue?.path.join(".") ?? "";
  if (at.startsWith("metadata")) return "metadata.name and metadata.namespace are required";
  if (at === "spec") return "spec is missing; set spec.budgetMs and spec.selector";
  if (at === "spec.selector")
    return "spec.selector must be an object like {matchLabels: {app: web}}";
  if (at.startsWith("spec.selector.matchLabels")) {
    return "spec.selector.matchLabels must map label names to string values";
  }
  return `${at || "the object"}: ${issue?.message ?? "invalid"}`;
}

/** Checks an object from the API server; the error names the policy, the field and the fix. */
export function parseSloPolicy(
  obj: unknown,
): { readonly policy: SloPolicy } | { readonly error: string } {
  const meta = isRecord(obj) && isRecord(obj.metadata) ? obj.metadata : {};
  const id = `SloPolicy ${typeof meta.namespace === "string" && meta.namespace ? meta.namespace : "?"}/${typeof meta.name === "string" && meta.name ? meta.name : "?"}`;
  const parsed = PolicyObjectSchema.safeParse(obj);
  if (!parsed.success) return { error: `${id}: ${shapeError(parsed.error.issues[0])}` };
  const { metadata, spec } = parsed.data;
  const budgetMs = spec.budgetMs;
  if (typeof budgetMs !== "number" || !checkBudgetMs(budgetMs, String(budgetMs)).ok) {
    return {
      error: `${id}: spec.budgetMs=${JSON.stringify(budgetMs)} is invalid; set it to ${budgetHint.replace(/"/g, "")}`,
    };
  }
  const importance = spec.importance;
  if (
    importance !== undefined &&
    (typeof importance !== "number" || !checkImportance(importance, String(importance)).ok)
  ) {
    return {
      error: `${id}: spec.importance=${JSON.stringify(importance)} is invalid; set it to ${importanceHint}, or remove it`,
    };
  }
  const matchLabels = spec.selector?.matchLabels;
  return {
    policy: {
      apiVersion: SLO_POLICY_CRD.apiVersion,
      kind: SLO_POLICY_CRD.kind,
      metadata: {
        name: metadata.name,
        namespace: metadata.namespace,
        ...(metadata.uid !== undefined ? { uid: metadata.uid } : {}),
        ...(metadata.resourceVersion !== undefined
          ? { resourceVersion: metadata.resourceVersion }
          : {}),
      },
      spec: {
        selector: matchLabels === undefined ? {} : { matchLabels: { ...matchLabels } },
        budgetMs,
        ...(importance === undefined ? {} : { importance }),
      },
    },
  };
}

export function policySelectsPod(policy: SloPolicy, pod: PodMeta): boolean {
  if (policy.metadata.namespace !== pod.namespace) return false;
  const wanted = policy.spec.selector.matchLabels ?? {};
  return Object.entries(wanted).every(([k, v]) => pod.labels?.[k] === v);
}

/**
 * The policy that governs a pod: lowest budget; then the higher importance; then the policy name,
 * so the answer never depends on the order the API server listed them in.
 */
export function selectPolicy(pod: PodMeta, policies: readonly SloPolicy[]): SloPolicy | null {
  let best: SloPolicy | null = null;
  for (const p of policies) {
    if (!policySelectsPod(p, pod)) continue;
    if (best === null || comparePolicies(p, best) < 0) best = p;
  }
  return best;
}

function comparePolicies(a: SloPolicy, b: SloPolicy): number {
  if (a.spec.budgetMs !== b.spec.budgetMs) return a.spec.budgetMs - b.spec.budgetMs;
  const ia = a.spec.importance ?? DEFAULT_IMPORTANCE;
  const ib = b.spec.importance ?? DEFAULT_IMPORTANCE;
  if (ia !== ib) return ib - ia;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

export function decidePodSlo(pod: PodMeta, policies: readonly SloPolicy[] = []): PodSloDecision {
  const budget = parseBudgetAnnotation(pod);
  const importance = parseImportanceAnnotation(pod);
  if (budget.error !== undefined) return { kind: "error", message: budget.error };
  if (importance.error !== undefined) return { kind: "error", message: importance.error };

  if (budget.value !== undefined) {
    return {
      kind: "slo",
      budgetMs: budget.value,
      importance: importance.value ?? DEFAULT_IMPORTANCE,
      from: "annotations",
    };
  }
  const policy = selectPolicy(pod, policies);
  if (policy === null) {
    if (importance.value === undefined) return { kind: "none" };
    return {
      kind: "error",
      message:
        `pod ${podName(pod)}: annotation ${ANNOTATION_IMPORTANCE} is set but there is no ` +
        `${ANNOTATION_BUDGET_MS} and no SloPolicy selects the pod; add ${ANNOTATION_BUDGET_MS} ` +
        `(${budgetHint})`,
    };
  }
  return {
    kind: "slo",
    budgetMs: policy.spec.budgetMs,
    importance: importance.value ?? policy.spec.importance ?? DEFAULT_IMPORTANCE,
    from: `SloPolicy ${policy.metadata.namespace}/${policy.metadata.name}`,
  };
}

export function podOrigin(pod: PodMeta): string {
  return `k8s:pod/${pod.namespace}/${pod.name}`;
}

/** The rule for one pod whose pod-level cgroup is cgroupPath. */
export function podSloRule(
  pod: PodMeta,
  cgroupPath: string,
  slo: { readonly budgetMs: number; readonly importance: number },
): SloRule {
  return {
    match: { kind: "path", path: cgroupPath },
    budgetNs: Math.round(slo.budgetMs * NS_PER_MS),
    importance: slo.importance,
    labels: { namespace: pod.namespace, pod: pod.name },
    origin: { source: podOrigin(pod) },
  };
}
