// Records the API payloads test/unit/k8s-source-recorded-payloads.test.ts reads, from a real API
// server (control-plane.ts; needs `make cluster`):
//   node dist/test/cluster/record-fixtures.js [--out test/fixtures/k8s]
// It builds the scene a kubelet and the controllers would have left on a node "worker-1" (pods of
// every QoS class and phase, status as a kubelet reports it, annotations good and bad), adds
// SloPolicies through the project's CRD, and writes what the agent's informers receive:
//   podlist-worker-1.json   GET /api/v1/pods?fieldSelector=spec.nodeName=worker-1
//   slopolicies.json        GET /apis/scx-slo.io/v1alpha1/slopolicies
//   status-403-pods.json    the same pod list by a ServiceAccount without RBAC
//   status-404-slopolicies.txt  the policy list before the CRD is installed
// uids, resourceVersions, containerIDs and times differ on every run.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { findProjectRoot } from "../../src/util/project-root.js";
import { startControlPlane, type ControlPlane } from "./control-plane.js";
import { createNode, createPod, type Qos } from "./kubelet.js";

const i = process.argv.indexOf("--out");
const out = path.resolve(
  i > 0 ? process.argv[i + 1]! : path.join(findProjectRoot(), "test/fixtures/k8s"),
);
mkdirSync(out, { recursive: true });

interface Scene {
  ns: string;
  name: string;
  qos: Qos;
  phase: "Running" | "Pending" | "Succeeded";
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  containers?: string[];
  node?: string;
}

const scene: Scene[] = [
  {
    ns: "payments",
    name: "payment-api-7d9f8b6c5-x2k4p",
    qos: "Guaranteed",
    phase: "Running",
    labels: { app: "payment-api", tier: "backend", "pod-template-hash": "7d9f8b6c5" },
    annotations: { "scx-slo.io/budget-ms": "5", "scx-slo.io/importance": "90" },
  },
  {
    ns: "monitoring",
    name: "node-exporter-4kx9d",
    qos: "Guaranteed",
    phase: "Running",
    labels: { "app.kubernetes.io/name": "node-exporter" },
  },
  {
    ns: "shop",
    name: "web-frontend-6b8f9c7d4-qz7lm",
    qos: "Burstable",
    phase: "Running",
    labels: { app: "web-frontend", "pod-template-hash": "6b8f9c7d4" },
    annotations: {
      "scx-slo.io/budget-ms": "20",
      "kubectl.kubernetes.io/restartedAt": "2026-11-03T09:10:00Z",
    },
    containers: ["web", "envoy"],
  },
  {
    ns: "shop",
    name: "cart-5f7d8c9b6-mm2rt",
    qos: "Burstable",
    phase: "Running",
    labels: { app: "cart", "pod-template-hash": "5f7d8c9b6" },
    annotations: { "scx-slo.io/budget-ms": "fast" },
  },
  {
    ns: "kube-system",
    name: "coredns-76f75df574-9lq2w",
    qos: "Burstable",
    phase: "Running",
    labels: { "k8s-app": "kube-dns", "pod-template-hash": "76f75df574" },
  },
  {
    ns: "batch",
    name: "report-builder-28912345-h7k2x",
    qos: "BestEffort",
    phase: "Running",
    labels: { app: "report-builder", "job-name": "report-builder-28912345" },
  },
  {
    ns: "payments",
    name: "fraud-scorer-0",
    qos: "BestEffort",
    phase: "Pending",
    labels: { app: "fraud-scorer", "statefulset.kubernetes.io/pod-name": "fraud-scorer-0" },
    annotations: { "scx-slo.io/budget-ms": "15", "scx-slo.io/importance": "70" },
  },
  {
    ns: "shop",
    name: "db-migrate-28912340-zx9vb",
    qos: "Burstable",
    phase: "Succeeded",
    labels: { "job-name": "db-migrate-28912340" },
    annotations: { "scx-slo.io/budget-ms": "50" },
  },
  {
    // Another node's pod: the field selector leaves it out of the recording.
    ns: "shop",
    name: "web-frontend-6b8f9c7d4-r8w2p",
    qos: "Burstable",
    phase: "Running",
    labels: { app: "web-frontend", "pod-template-hash": "6b8f9c7d4" },
    annotations: { "scx-slo.io/budget-ms": "20" },
    node: "worker-2",
  },
];

const policies = [
  { ns: "batch", name: "batch-default", selector: {}, budgetMs: 200, importance: 10 },
  {
    ns: "batch",
    name: "reports",
    selector: { matchLabels: { app: "report-builder" } },
    budgetMs: 500,
    importance: 30,
  },
  {
    ns: "payments",
    name: "backend",
    selector: { matchLabels: { tier: "backend" } },
    budgetMs: 25,
    importance: 80,
  },
];

async function get(cp: ControlPlane, p: string, token?: string): Promise<string> {
  const r = await cp.request(p, token === undefined ? {} : { token });
  return r.body;
}

const pretty = (body: string) => JSON.stringify(JSON.parse(body), null, 2) + "\n";

const cp = await startControlPlane();
try {
  for (const ns of ["payments", "monitoring", "shop", "batch", "kube-system"])
    await cp.ensureNamespace(ns);
  for (const n of ["worker-1", "worker-2"]) await createNode(cp, n);

  await cp.kubectlOk(["create", "serviceaccount", "no-rbac", "-n", "shop"]);
  const token = await cp.createToken("shop", "no-rbac");
  writeFileSync(
    path.join(out, "status-403-pods.json"),
    pretty(await get(cp, "/api/v1/pods?fieldSelector=spec.nodeName%3Dworker-1", token)),
  );
  writeFileSync(
    path.join(out, "status-404-slopolicies.txt"),
    await get(cp, "/apis/scx-slo.io/v1alpha1/slopolicies"),
  );

  const crd = path.join(findProjectRoot(), "deploy", "crd-slopolicy.yaml");
  await cp.kubectlOk(["apply", "-f", "-"], { input: readFileSync(crd, "utf8") });
  await cp.kubectlOk(["wait", "--for=condition=Established", "crd/slopolicies.scx-slo.io"]);
  for (const p of policies) {
    await cp.kubectlOk(["apply", "-f", "-"], {
      input: JSON.stringify({
        apiVersion: "scx-slo.io/v1alpha1",
        kind: "SloPolicy",
        metadata: { name: p.name, namespace: p.ns },
        spec: { selector: p.selector, budgetMs: p.budgetMs, importance: p.importance },
      }),
    });
  }
  for (const s of scene) {
    await createPod(cp, {
      namespace: s.ns,
      name: s.name,
      nodeName: s.node ?? "worker-1",
      qos: s.qos,
      phase: s.phase,
      labels: s.labels,
      ...(s.annotations ? { annotations: s.annotations } : {}),
      ...(s.containers ? { containers: s.containers } : {}),
    });
  }
  writeFileSync(
    path.join(out, "podlist-worker-1.json"),
    pretty(await get(cp, "/api/v1/pods?fieldSelector=spec.nodeName%3Dworker-1")),
  );
  writeFileSync(
    path.join(out, "slopolicies.json"),
    pretty(await get(cp, "/apis/scx-slo.io/v1alpha1/slopolicies")),
  );
  console.log(`[record] wrote ${out}`);
} finally {
  await cp.stop();
}
