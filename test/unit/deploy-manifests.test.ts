// The Kubernetes manifests agree with the code: the CRD with the SloPolicy the agent parses, the
// RBAC with the API calls the agent makes, the DaemonSet with the paths the loader needs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import { createAgentMetrics } from "../../src/metrics/agent-metrics.js";
import { defaultLoaderPaths, readAbi } from "../../src/sched/loader.js";
import { findProjectRoot } from "../../src/util/project-root.js";
import { SLO_POLICY_CRD } from "../../src/sources/kubernetes/annotations.js";
import {
  BUDGET_MAX_MS,
  BUDGET_MIN_MS,
  IMPORTANCE_MAX,
  IMPORTANCE_MIN,
} from "../../src/slo/model.js";
import { DEFAULT_PIN_DIR } from "../../src/sched/loader.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;
const load = (f: string): Doc[] =>
  parseAllDocuments(readFileSync(path.join(findProjectRoot(), "deploy", f), "utf8")).map(
    (d) => d.toJS() as Doc,
  );

test("the SloPolicy CRD matches the group, names and limits the agent uses", () => {
  const [crd] = load("crd-slopolicy.yaml");
  assert.equal(crd.spec.group, SLO_POLICY_CRD.group);
  assert.equal(crd.spec.names.kind, SLO_POLICY_CRD.kind);
  assert.equal(crd.spec.names.plural, SLO_POLICY_CRD.plural);
  assert.equal(crd.spec.scope, SLO_POLICY_CRD.scope);
  const version = crd.spec.versions.find((v: Doc) => v.name === SLO_POLICY_CRD.version);
  const spec = version.schema.openAPIV3Schema.properties.spec.properties;
  assert.deepEqual([spec.budgetMs.minimum, spec.budgetMs.maximum], [BUDGET_MIN_MS, BUDGET_MAX_MS]);
  assert.deepEqual(
    [spec.importance.minimum, spec.importance.maximum],
    [IMPORTANCE_MIN, IMPORTANCE_MAX],
  );
});

test("RBAC grants read-only access to exactly what the agent lists and watches", () => {
  const role = load("rbac.yaml").find((d) => d.kind === "ClusterRole");
  const can = (group: string, resource: string, verb: string) =>
    role.rules.some(
      (r: Doc) =>
        r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb),
    );
  for (const verb of ["list", "watch"]) {
    assert.ok(can("", "pods", verb), `pods ${verb}`);
    assert.ok(can(SLO_POLICY_CRD.group, SLO_POLICY_CRD.plural, verb), `slopolicies ${verb}`);
  }
  // Exactly what the informers use (k8s-cluster.test.ts checks it against a real API server).
  const verbs = new Set(role.rules.flatMap((r: Doc) => r.verbs as string[]));
  assert.deepEqual([...verbs].sort(), ["list", "watch"]);
  assert.ok(can("", "nodes", "watch"), "nodes watch (the safe-mode annotation)");
});

test("the DaemonSet mounts bpffs, cgroup2 and sched_ext's sysfs, and passes NODE_NAME", () => {
  const [ds] = load("daemonset.yaml");
  const pod = ds.spec.template.spec;
  const agent = pod.containers[0];
  const mounts = agent.volumeMounts.map((m: Doc) => m.mountPath);
  assert.ok(mounts.includes(path.dirname(DEFAULT_PIN_DIR)), "bpffs for the pins");
  assert.ok(mounts.includes("/sys/fs/cgroup"));
  assert.ok(mounts.includes("/sys/kernel"));
  assert.equal(
    agent.env.find((e: Doc) => e.name === "NODE_NAME").valueFrom.fieldRef.fieldPath,
    "spec.nodeName",
  );
  assert.equal(
    pod.serviceAccountName,
    load("rbac.yaml").find((d) => d.kind === "ServiceAccount").metadata.name,
  );
  assert.equal(agent.readinessProbe.httpGet.path, "/readyz");
  assert.equal(agent.livenessProbe.httpGet.path, "/healthz");
});

test("every metric the Grafana dashboard queries is one the agent exports", async () => {
  const root = findProjectRoot();
  const dashboard = readFileSync(
    path.join(root, "deploy", "grafana", "scx-slo-dashboard.json"),
    "utf8",
  );
  const sample = {
    cgroup: "/a",
    namespace: "ns",
    pod: "p",
    budgetNs: 1e6,
    importance: 50,
    stats: {
      cgroupId: 1n,
      runs: 1,
      waitSumNs: 1,
      waitMaxNs: 1,
      misses: 0,
      budgetNs: 1e6,
      importance: 50,
      hist: [1],
    },
    overloaded: false,
  };
  const abi = await readAbi(defaultLoaderPaths());
  const metrics = createAgentMetrics(
    {
      slos: () => [sample],
      counters: () => ({}),
      schedulerState: () => "attached",
      mode: () => "enforce",
      reattaches: () => 0,
      unplannedDetaches: () => 0,
      lastExit: () => null,
    },
    { counters: abi.counters },
  );
  const text = await metrics.render();
  const families = new Set([...text.matchAll(/^# TYPE scx_slo_([a-z_]+) /gm)].map((m) => m[1]!));
  const used = new Set(
    [...dashboard.matchAll(/scx_slo_([a-z_]+)/g)].map((m) =>
      m[1]!.replace(/_(bucket|sum|count)$/, ""),
    ),
  );
  assert.ok(used.size >= 8);
  for (const name of used) assert.ok(families.has(name), `scx_slo_${name}`);
});

test("docs/load-shedding.md shows the Service deploy/ ships, and says it is there", () => {
  const doc = readFileSync(path.join(findProjectRoot(), "docs", "load-shedding.md"), "utf8");
  assert.doesNotMatch(doc, /not in `?deploy\/`? yet/);
  assert.match(doc, /deploy\/service\.yaml/);
  const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const shown = blocks
    .map((b) => parseAllDocuments(b)[0]?.toJS() as Doc)
    .filter((d) => d?.kind === "Service");
  assert.equal(shown.length, 1, "one Service in the page");
  const [service] = load("service.yaml");
  assert.deepEqual(shown[0].metadata, {
    name: service.metadata.name,
    namespace: service.metadata.namespace,
  });
  assert.deepEqual(shown[0].spec, service.spec);
  // The sidecar's --agent URL in the page names that Service.
  assert.match(
    doc,
    new RegExp(
      `--agent=http://${service.metadata.name}\\.${service.metadata.namespace}\\.svc:${service.spec.ports[0].port}`,
    ),
  );
});
