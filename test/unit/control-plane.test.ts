// The test control plane (test/cluster) against itself: a real etcd and kube-apiserver built from
// source by `make cluster`, which `make test` runs first. Objects round-trip through kubectl,
// ServiceAccount tokens authenticate, RBAC refuses what was not granted, a forced compaction makes
// an old watch fail with 410 Gone, and the API server comes back over the same etcd.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startControlPlane, type ControlPlane } from "../cluster/control-plane.js";

const NS = "scx-cp-test";
let cp: ControlPlane;

before(async () => {
  cp = await startControlPlane();
  const rss = cp.rss();
  console.log(
    `# control plane ready in ${cp.startupMs} ms; RSS etcd ${rss.etcdKiB} KiB, ` +
      `kube-apiserver ${rss.apiServerKiB} KiB`,
  );
  await cp.ensureNamespace(NS);
});

after(async () => {
  await cp?.stop();
});

const pod = (name: string, nodeName: string) =>
  JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: NS, annotations: { "scx-slo.io/budget-ms": "5" } },
    spec: { nodeName, containers: [{ name: "c", image: "registry.invalid/none:1" }] },
  });

test("a pod bound to a node round-trips through kubectl apply and get", async () => {
  await cp.kubectlOk(["apply", "-f", "-"], { input: pod("web-1", "node-a") });
  const got = JSON.parse(await cp.kubectlOk(["get", "pod", "web-1", "-n", NS, "-o", "json"]));
  assert.equal(got.spec.nodeName, "node-a");
  assert.equal(got.metadata.annotations["scx-slo.io/budget-ms"], "5");
  // Admission ran: the ServiceAccount plugin filled in the default account.
  assert.equal(got.spec.serviceAccountName, "default");
  // The agent's query: pods of one node, across namespaces.
  const list = await cp.request("/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a");
  assert.equal(list.status, 200);
  assert.deepEqual(
    JSON.parse(list.body).items.map((p: { metadata: { name: string } }) => p.metadata.name),
    ["web-1"],
  );
});

test("a ServiceAccount token authenticates, and RBAC refuses what it was not granted", async () => {
  await cp.kubectlOk(["create", "serviceaccount", "agent", "-n", NS]);
  const token = await cp.createToken(NS, "agent");

  const review = await cp.request("/apis/authentication.k8s.io/v1/selfsubjectreviews", {
    token,
    body: JSON.stringify({ apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" }),
  });
  assert.equal(review.status, 201, review.body);
  assert.equal(
    JSON.parse(review.body).status.userInfo.username,
    `system:serviceaccount:${NS}:agent`,
  );

  const forged = await cp.request(`/api/v1/namespaces/${NS}/pods`, { token: token + "x" });
  assert.equal(forged.status, 401);

  const denied = await cp.request(`/api/v1/namespaces/${NS}/pods`, { token });
  assert.equal(denied.status, 403, denied.body);
  assert.match(JSON.parse(denied.body).message, /cannot list resource "pods"/);

  await cp.kubectlOk(["create", "role", "pod-reader", "-n", NS, "--verb=list", "--resource=pods"]);
  await cp.kubectlOk(
    ["create", "rolebinding", "agent-pod-reader", "-n", NS, "--role=pod-reader"].concat(
      `--serviceaccount=${NS}:agent`,
    ),
  );
  // RBAC reads roles through an informer: a new binding applies within moments, not at once.
  let status = 0;
  for (let i = 0; i < 50 && status !== 200; i++) {
    status = (await cp.request(`/api/v1/namespaces/${NS}/pods`, { token })).status;
    if (status !== 200) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(status, 200);
  // Granted list in its namespace only: pods across the cluster and writes stay refused.
  assert.equal((await cp.request("/api/v1/pods", { token })).status, 403);
  const write = await cp.request(`/api/v1/namespaces/${NS}/pods`, { token, body: pod("x", "n") });
  assert.equal(write.status, 403);
});

test("after a forced etcd compaction, a watch from an older resourceVersion gets 410 Gone", async () => {
  const list = JSON.parse((await cp.request(`/api/v1/namespaces/${NS}/pods`)).body);
  const oldRv: string = list.metadata.resourceVersion;
  // A watch from oldRv resumes at oldRv + 1, so two writes put that past the compacted revision.
  await cp.kubectlOk(["apply", "-f", "-"], { input: pod("web-2", "node-a") });
  await cp.kubectlOk(["apply", "-f", "-"], { input: pod("web-3", "node-b") });
  const revision = await cp.compactEtcd();
  assert.ok(revision > Number(oldRv) + 1, `compacted at ${revision}, list was at ${oldRv}`);

  const watch = await cp.request(
    `/api/v1/namespaces/${NS}/pods?watch=1&resourceVersion=${oldRv}&timeoutSeconds=5`,
  );
  assert.equal(watch.status, 200);
  const first = JSON.parse(watch.body.split("\n")[0] ?? "");
  assert.equal(first.type, "ERROR", watch.body);
  assert.equal(first.object.code, 410);
  assert.equal(first.object.reason, "Expired");
});

test("the API server stops and comes back over the same etcd", async () => {
  await cp.stopApiServer();
  await assert.rejects(cp.request("/readyz"), /ECONNREFUSED/);
  const readyMs = await cp.startApiServer();
  console.log(`# kube-apiserver ready again in ${readyMs} ms`);
  const got = JSON.parse(await cp.kubectlOk(["get", "pod", "web-1", "-n", NS, "-o", "json"]));
  assert.equal(got.spec.nodeName, "node-a");
});
