// What the agent makes of the objects the API server sends, fed from payloads recorded from a
// real API server (test/fixtures/k8s/, written by test/cluster/record-fixtures.ts): a node's
// PodList (every QoS class and phase, status as a kubelet reports it, good and bad annotations), an
// SloPolicyList through the project's CRD, and the Status bodies of a refused and of an unknown
// resource. The list+watch itself is tested against the running API server in k8s-cluster.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { podCgroupPath, podPathResolver, type QosClass } from "../../src/cgroup/kubepods.js";
import { NS_PER_MS, type SloRule } from "../../src/slo/model.js";
import {
  ANNOTATION_BUDGET_MS,
  decidePodSlo,
  parseSloPolicy,
  type SloPolicy,
} from "../../src/sources/kubernetes/annotations.js";
import {
  keptPod,
  keptPolicy,
  PodSource,
  type KubeObject,
  type PodObject,
} from "../../src/sources/kubernetes/pod-source.js";

const FIXTURES = new URL("../../../test/fixtures/k8s/", import.meta.url);
const fixture = (name: string): string => readFileSync(new URL(name, FIXTURES), "utf8");

interface List<T> {
  kind: string;
  metadata: { resourceVersion: string };
  items: T[];
}
const podList = JSON.parse(fixture("podlist-worker-1.json")) as List<PodObject>;
const policyList = JSON.parse(fixture("slopolicies.json")) as List<KubeObject>;

const byName = (name: string, pods: readonly PodObject[] = podList.items): PodObject => {
  const pod = pods.find((p) => p.metadata?.name === name);
  assert.ok(pod, `fixture pod ${name}`);
  return pod;
};

// The cgroup layout of a systemd-driver node, the kubeadm default.
const podPath = podPathResolver("/nonexistent", "systemd");
const expectedPath = (name: string): string => {
  const pod = byName(name);
  return podCgroupPath(
    { uid: pod.metadata!.uid!, qosClass: pod.status!.qosClass as QosClass },
    "systemd",
  );
};
const ruleFor = (rules: readonly SloRule[], pod: string): SloRule | undefined =>
  rules.find((r) => r.labels.pod === pod);
const summary = (rules: readonly SloRule[]): Record<string, [number, number]> =>
  Object.fromEntries(rules.map((r) => [r.labels.pod!, [r.budgetNs / NS_PER_MS, r.importance]]));

test("the recorded PodList: the node's pods only, with the API server's qosClass", () => {
  assert.equal(podList.kind, "PodList");
  assert.match(podList.metadata.resourceVersion, /^\d+$/);
  assert.equal(podList.items.length, 8, "the other node's pod is not in it");
  assert.ok(podList.items.every((p) => p.spec?.nodeName === "worker-1"));
  const qos = new Set(podList.items.map((p) => p.status?.qosClass));
  assert.deepEqual([...qos].sort(), ["BestEffort", "Burstable", "Guaranteed"]);
});

test("annotated live pods become path rules; others are skipped or reported", () => {
  const changes: unknown[] = [];
  const source = new PodSource({ podPath, onChange: (s) => changes.push(s) });
  source.replacePods(podList.items);

  assert.deepEqual(summary(source.rules), {
    "fraud-scorer-0": [15, 70], // Pending, BestEffort, no container yet: its pod cgroup is still known
    "payment-api-7d9f8b6c5-x2k4p": [5, 90], // Guaranteed
    "web-frontend-6b8f9c7d4-qz7lm": [20, 50], // Burstable, importance defaulted
  });
  const api = ruleFor(source.rules, "payment-api-7d9f8b6c5-x2k4p")!;
  assert.deepEqual(api, {
    match: { kind: "path", path: expectedPath("payment-api-7d9f8b6c5-x2k4p") },
    budgetNs: 5 * NS_PER_MS,
    importance: 90,
    labels: { namespace: "payments", pod: "payment-api-7d9f8b6c5-x2k4p" },
    origin: { source: "k8s:pod/payments/payment-api-7d9f8b6c5-x2k4p" },
  });
  assert.match(
    api.match.kind === "path" ? api.match.path : "",
    /^\/kubepods\.slice\/kubepods-pod[0-9a-f_]+\.slice$/,
  );
  assert.match(
    (ruleFor(source.rules, "fraud-scorer-0")!.match as { path: string }).path,
    /^\/kubepods\.slice\/kubepods-besteffort\.slice\/kubepods-besteffort-pod[0-9a-f_]+\.slice$/,
  );
  // Succeeded pod with an annotation: no rule. Pods without annotations: no rule, no error.
  assert.equal(ruleFor(source.rules, "db-migrate-28912340-zx9vb"), undefined);
  assert.equal(ruleFor(source.rules, "coredns-76f75df574-9lq2w"), undefined);

  assert.equal(source.errors.length, 1);
  const [err] = source.errors;
  assert.match(err!, /pod shop\/cart-5f7d8c9b6-mm2rt/);
  assert.match(err!, new RegExp(ANNOTATION_BUDGET_MS.replace(".", "\\.")));
  assert.match(err!, /"fast"/);
  assert.match(err!, /set it to a number of milliseconds from 1 to 10000/);
  assert.equal(changes.length, 1);
});

test("SloPolicies apply to pods without annotations; annotations win; lowest budget wins", () => {
  // An object the CRD's schema would refuse now (budgetMs 0), as a cluster whose CRD predates the
  // schema may still hold one: the agent checks for itself.
  const broken = {
    ...structuredClone(policyList.items[0]!),
    metadata: { name: "broken", namespace: "kube-system", uid: "0" },
    spec: { selector: { matchLabels: { "k8s-app": "kube-dns" } }, budgetMs: 0 },
  };
  const source = new PodSource({ podPath });
  source.replaceAll(podList.items, [...policyList.items, broken]);
  const s = summary(source.rules);
  // batch/batch-default (200 ms) and batch/reports (500 ms) both select it: 200 ms wins.
  assert.deepEqual(s["report-builder-28912345-h7k2x"], [200, 10]);
  // payments/backend (25 ms) selects payment-api, but its own annotation (5 ms) wins.
  assert.deepEqual(s["payment-api-7d9f8b6c5-x2k4p"], [5, 90]);
  // kube-system/broken is invalid, so coredns gets nothing, and the error names the policy.
  assert.equal(s["coredns-76f75df574-9lq2w"], undefined);
  assert.ok(
    source.errors.some((e) => /SloPolicy kube-system\/broken: spec\.budgetMs=0 is invalid/.test(e)),
  );
  assert.ok(source.errors.some((e) => /cart-5f7d8c9b6-mm2rt/.test(e)));
});

test("policy order in the list does not change the outcome", () => {
  const policies = policyList.items.flatMap((o) => {
    const r = parseSloPolicy(o);
    return "policy" in r ? [r.policy] : [];
  });
  assert.equal(policies.length, 3, "every recorded policy parses");
  const pod = { namespace: "batch", name: "x", labels: { app: "report-builder" } };
  const tie = (name: string, importance: number): SloPolicy => ({
    ...policies[0]!,
    metadata: { name, namespace: "batch" },
    spec: { selector: {}, budgetMs: 200, importance },
  });
  const all = [...policies, tie("aaa", 10), tie("zzz", 40)];
  const reversed = [...all].reverse();
  assert.deepEqual(decidePodSlo(pod, all), decidePodSlo(pod, reversed));
  assert.deepEqual(decidePodSlo(pod, all), {
    kind: "slo",
    budgetMs: 200,
    importance: 40,
    from: "SloPolicy batch/zzz",
  });
});

test("importance annotation alone: overrides a policy, is an error without one", () => {
  const backend = policyList.items.find((p) => p.metadata?.name === "backend");
  const policies = [parseSloPolicy(backend)].flatMap((r) => ("policy" in r ? [r.policy] : []));
  const pod = (annotations: Record<string, string>, labels = { tier: "backend" }) => ({
    namespace: "payments",
    name: "p",
    labels,
    annotations,
  });
  assert.deepEqual(decidePodSlo(pod({ "scx-slo.io/importance": "99" }), policies), {
    kind: "slo",
    budgetMs: 25,
    importance: 99,
    from: "SloPolicy payments/backend",
  });
  const lone = decidePodSlo(pod({ "scx-slo.io/importance": "99" }, { tier: "web" }), policies);
  assert.equal(lone.kind, "error");
  assert.match((lone as { message: string }).message, /add scx-slo\.io\/budget-ms/);
  for (const bad of ["0", "101", "1.5", "high"]) {
    const d = decidePodSlo(pod({ "scx-slo.io/budget-ms": "10", "scx-slo.io/importance": bad }));
    assert.equal(d.kind, "error", bad);
    assert.match(
      (d as { message: string }).message,
      /pod payments\/p: annotation scx-slo\.io\/importance=/,
    );
  }
  for (const bad of ["0", "10001", "-5", "5ms", "", "2.0000001"]) {
    assert.equal(decidePodSlo(pod({ "scx-slo.io/budget-ms": bad })).kind, "error", bad);
  }
  assert.deepEqual(decidePodSlo(pod({ "scx-slo.io/budget-ms": " 2.5 " })), {
    kind: "slo",
    budgetMs: 2.5,
    importance: 50,
    from: "annotations",
  });
});

test("what the informers' caches keep of each object is enough: the same rules and errors", () => {
  const raw = new PodSource({ podPath });
  raw.replaceAll(podList.items, policyList.items);
  const kept = new PodSource({ podPath });
  const pods = podList.items.map(keptPod);
  kept.replaceAll(pods, policyList.items.map(keptPolicy));
  assert.ok(raw.rules.length > 0);
  assert.deepEqual(kept.rules, raw.rules);
  assert.deepEqual(kept.errors, raw.errors);
  const size = (x: unknown) => JSON.stringify(x).length;
  assert.ok(size(pods) * 4 < size(podList.items), `${size(pods)} of ${size(podList.items)} bytes`);
});

test("a status-only change (what most pod updates are) does not re-emit unchanged rules", () => {
  const emitted: unknown[] = [];
  const source = new PodSource({ podPath, onChange: (s) => emitted.push(s) });
  source.replacePods(podList.items);
  const pod = structuredClone(byName("web-frontend-6b8f9c7d4-qz7lm")) as PodObject & {
    metadata: { resourceVersion: string };
    status: { conditions: { type: string; status: string }[] };
  };
  pod.metadata.resourceVersion = String(Number(pod.metadata.resourceVersion) + 100);
  pod.status.conditions.find((c) => c.type === "Ready")!.status = "False";
  source.replacePods(podList.items.map((p) => (p.metadata?.name === pod.metadata.name ? pod : p)));
  assert.equal(emitted.length, 1);
  // An annotation change does.
  const changed = structuredClone(pod) as typeof pod & {
    metadata: { annotations: Record<string, string> };
  };
  changed.metadata.annotations[ANNOTATION_BUDGET_MS] = "8";
  source.replacePods(
    podList.items.map((p) => (p.metadata?.name === pod.metadata.name ? changed : p)),
  );
  assert.equal(emitted.length, 2);
  assert.deepEqual(summary(source.rules)["web-frontend-6b8f9c7d4-qz7lm"], [8, 50]);
});

test("a pod with an SLO on a node whose kubelet has made no kubepods cgroup yet is retried", () => {
  const source = new PodSource({ podPath: podPathResolver("/nonexistent") });
  source.replacePods(podList.items);
  assert.deepEqual(source.rules, []);
  assert.equal(source.unplacedPods, 3);
  assert.ok(source.errors.some((e) => /payment-api.*cgroup is not known yet/.test(e)));
});

test("the API server's refusals name the fix: RBAC for 403, the CRD for 404", async () => {
  // Loads the official client (only Kubernetes mode does so in the agent).
  const { ApiException } = await import("@kubernetes/client-node");
  const { describeApiError } = await import("../../src/sources/kubernetes/informer.js");
  const forbidden = new ApiException(403, "Forbidden", fixture("status-403-pods.json"), {});
  assert.match(
    describeApiError(forbidden, "pods"),
    /^pods: pods is forbidden: User "system:serviceaccount:shop:no-rbac" cannot list resource "pods".* \(the agent's ServiceAccount needs .*list and watch on pods: the ClusterRole in deploy\/rbac\.yaml; .*\)$/,
  );
  const missing = new ApiException(404, "Not Found", fixture("status-404-slopolicies.txt"), {});
  assert.match(
    describeApiError(missing, "slopolicies.scx-slo.io"),
    /404 page not found \(the slopolicies\.scx-slo\.io CustomResourceDefinition is not installed: apply deploy\/crd-slopolicy\.yaml\)/,
  );
  // A watch refused before it streams carries only the status code.
  const watchRefused = Object.assign(new Error("Forbidden"), { statusCode: 403 });
  assert.match(describeApiError(watchRefused, "nodes"), /^nodes: HTTP 403 Forbidden \(/);
});
