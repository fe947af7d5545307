// Starts the test control plane, makes a pod and reads it back, checks a ServiceAccount token,
// prints start-up time and memory, and stops it. For places the test runner is not at hand, such
// as the sched_ext VM guest:
//   node dist/vm/cli.js --memory 2048 -- node dist/test/cluster/smoke.js
import { startControlPlane } from "./control-plane.js";

const mib = (kib: number) => (kib / 1024).toFixed(0);
// --ready-timeout-s N: how long the API server may take (software emulation is slow).
const i = process.argv.indexOf("--ready-timeout-s");
const readyTimeoutMs = i > 0 ? Number(process.argv[i + 1]) * 1000 : undefined;
const cp = await startControlPlane({ readyTimeoutMs });
try {
  const atReady = cp.rss();
  console.log(
    `[smoke] ready in ${cp.startupMs} ms; RSS etcd ${mib(atReady.etcdKiB)} MiB, ` +
      `kube-apiserver ${mib(atReady.apiServerKiB)} MiB`,
  );
  // kubectl's first write fetches /openapi/v2 with a fixed 32 s timeout; the API server builds that
  // document on first use, which takes longer than that under software emulation. Build it first.
  const t1 = Date.now();
  const openapi = await cp.request("/openapi/v2", { timeoutMs: 900_000 });
  if (openapi.status !== 200) throw new Error(`/openapi/v2: HTTP ${openapi.status}`);
  console.log(`[smoke] /openapi/v2 built in ${Date.now() - t1} ms`);
  const t0 = Date.now();
  await cp.ensureNamespace("smoke");
  await cp.kubectlOk(["apply", "-f", "-"], {
    input: JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "p", namespace: "smoke" },
      spec: { nodeName: "node-a", containers: [{ name: "c", image: "registry.invalid/none:1" }] },
    }),
  });
  const nodeName = await cp.kubectlOk([
    "get",
    "pod",
    "p",
    "-n",
    "smoke",
    "-o",
    "jsonpath={.spec.nodeName}",
  ]);
  if (nodeName !== "node-a") throw new Error(`pod read back with nodeName ${nodeName}`);
  await cp.kubectlOk(["create", "serviceaccount", "agent", "-n", "smoke"]);
  const token = await cp.createToken("smoke", "agent");
  const denied = await cp.request("/api/v1/namespaces/smoke/pods", { token });
  if (denied.status !== 403) throw new Error(`token request got ${denied.status}, expected 403`);
  const after = cp.rss();
  console.log(
    `[smoke] pod, token and RBAC checks in ${Date.now() - t0} ms; RSS etcd ` +
      `${mib(after.etcdKiB)} MiB, kube-apiserver ${mib(after.apiServerKiB)} MiB`,
  );
} finally {
  await cp.stop();
}
console.log("[smoke] ok");
