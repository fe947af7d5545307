// What a kubelet would do for the agent's tests, on a control plane that has none (control-plane.ts):
// register a Node, bind pods to it (spec.nodeName), report their status (phase, containerStatuses
// with containerIDs), and make their cgroups under a cgroup2 folder in the layout of either
// kubelet cgroup driver. Also: the ServiceAccount kubeconfig the agent runs with, and `kubectl
// apply -f deploy/` as the README tells a user.
//
// The cgroup names are spelled out here as the kubelet and containerd name them, independently of
// the agent's own src/cgroup/kubepods.ts, so a mistake there cannot hide behind the same mistake
// here.
import { randomBytes } from "node:crypto";
import { mkdirSync, rmdirSync, readdirSync, statSync, writeFileSync, existsSync } from "node:fs";
import path from "node:path";
import type { ControlPlane } from "./control-plane.js";

export type Driver = "systemd" | "cgroupfs";
export type Qos = "Guaranteed" | "Burstable" | "BestEffort";

export interface TestPod {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly qos: Qos;
  /** "containerd://<64 hex>", one per container. */
  readonly containerIds: readonly string[];
}

export interface PodSpecOptions {
  readonly namespace: string;
  readonly name: string;
  readonly nodeName: string;
  readonly qos?: Qos;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
  /** Container names (default one, "app"). */
  readonly containers?: readonly string[];
}

function resourcesFor(qos: Qos): Record<string, unknown> {
  switch (qos) {
    case "Guaranteed":
      return { requests: { cpu: "100m", memory: "64Mi" }, limits: { cpu: "100m", memory: "64Mi" } };
    case "Burstable":
      return { requests: { cpu: "50m", memory: "32Mi" }, limits: { memory: "128Mi" } };
    case "BestEffort":
      return {};
  }
}

/** A v1 Pod bound to a node, the way the scheduler would have left it. */
export function podManifest(o: PodSpecOptions): Record<string, unknown> {
  const qos = o.qos ?? "Burstable";
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: o.name,
      namespace: o.namespace,
      ...(o.labels ? { labels: o.labels } : {}),
      ...(o.annotations ? { annotations: o.annotations } : {}),
    },
    spec: {
      nodeName: o.nodeName,
      containers: (o.containers ?? ["app"]).map((name) => ({
        name,
        image: `registry.example.com/${o.namespace}/${name}:1.0`,
        resources: resourcesFor(qos),
      })),
    },
  };
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

/** The status a kubelet reports for a running pod (or a pending one whose containers wait). */
export function kubeletStatus(
  containers: readonly string[],
  phase: "Running" | "Pending" | "Succeeded",
  podIp: string,
): { status: Record<string, unknown>; containerIds: string[] } {
  const t = now();
  const ids = containers.map(() => `containerd://${randomBytes(32).toString("hex")}`);
  const running = phase !== "Pending";
  const cond = (type: string, ok: boolean) => ({
    type,
    status: ok ? "True" : "False",
    lastProbeTime: null,
    lastTransitionTime: t,
  });
  return {
    containerIds: running ? ids : [],
    status: {
      phase,
      conditions: [
        cond("PodReadyToStartContainers", running),
        cond("Initialized", true),
        cond("Ready", phase === "Running"),
        cond("ContainersReady", phase === "Running"),
        cond("PodScheduled", true),
      ],
      hostIP: "10.0.0.11",
      hostIPs: [{ ip: "10.0.0.11" }],
      ...(running ? { podIP: podIp, podIPs: [{ ip: podIp }] } : {}),
      startTime: t,
      containerStatuses: containers.map((name, i) => ({
        name,
        image: `registry.example.com/app/${name}:1.0`,
        imageID: `registry.example.com/app/${name}@sha256:${randomBytes(32).toString("hex")}`,
        ready: phase === "Running",
        restartCount: 0,
        started: phase === "Running",
        ...(running ? { containerID: ids[i] } : {}),
        state:
          phase === "Running"
            ? { running: { startedAt: t } }
            : phase === "Succeeded"
              ? {
                  terminated: {
                    exitCode: 0,
                    reason: "Completed",
                    startedAt: t,
                    finishedAt: t,
                    containerID: ids[i],
                  },
                }
              : { waiting: { reason: "ContainerCreating" } },
      })),
    },
  };
}

async function ok(
  cp: ControlPlane,
  pathAndQuery: string,
  opts: { method?: string; body?: string; contentType?: string },
  what: string,
): Promise<Record<string, unknown>> {
  const r = await cp.request(pathAndQuery, opts);
  if (r.status < 200 || r.status > 299) throw new Error(`${what}: HTTP ${r.status}: ${r.body}`);
  return JSON.parse(r.body) as Record<string, unknown>;
}

let ipCounter = 0;

/**
 * Creates the pod bound to nodeName, then patches its status as the kubelet would. The API server
 * itself sets status.qosClass from the containers' resources.
 */
export async function createPod(
  cp: ControlPlane,
  o: PodSpecOptions & { readonly phase?: "Running" | "Pending" | "Succeeded" },
): Promise<TestPod> {
  const created = await ok(
    cp,
    `/api/v1/namespaces/${o.namespace}/pods`,
    { body: JSON.stringify(podManifest(o)) },
    `create pod ${o.namespace}/${o.name}`,
  );
  const meta = created.metadata as { uid: string };
  const qos = (created.status as { qosClass: Qos }).qosClass;
  ipCounter++;
  const { status, containerIds } = kubeletStatus(
    o.containers ?? ["app"],
    o.phase ?? "Running",
    `10.244.${(ipCounter >> 8) & 255}.${ipCounter & 255}`,
  );
  await ok(
    cp,
    `/api/v1/namespaces/${o.namespace}/pods/${o.name}/status`,
    {
      method: "PATCH",
      body: JSON.stringify({ status }),
      contentType: "application/merge-patch+json",
    },
    `patch status of ${o.namespace}/${o.name}`,
  );
  return { namespace: o.namespace, name: o.name, uid: meta.uid, qos, containerIds };
}

/** Sets (or, with null, removes) annotations of a pod with a merge patch, as an admin. */
export async function annotatePod(
  cp: ControlPlane,
  namespace: string,
  name: string,
  annotations: Record<string, string | null>,
): Promise<void> {
  await ok(
    cp,
    `/api/v1/namespaces/${namespace}/pods/${name}`,
    {
      method: "PATCH",
      body: JSON.stringify({ metadata: { annotations } }),
      contentType: "application/merge-patch+json",
    },
    `annotate ${namespace}/${name}`,
  );
}

export async function deletePod(cp: ControlPlane, namespace: string, name: string): Promise<void> {
  // No kubelet confirms the end of the containers, so no grace period.
  await ok(
    cp,
    `/api/v1/namespaces/${namespace}/pods/${name}?gracePeriodSeconds=0`,
    { method: "DELETE" },
    `delete ${namespace}/${name}`,
  );
}

/** Registers a Node object, as a kubelet does on start. */
export async function createNode(cp: ControlPlane, name: string): Promise<void> {
  await ok(
    cp,
    "/api/v1/nodes",
    {
      body: JSON.stringify({
        apiVersion: "v1",
        kind: "Node",
        metadata: { name, labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux" } },
      }),
    },
    `create node ${name}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Cgroups, as the kubelet (pod level) and containerd (container level) make them.

/** The pod's cgroup and its containers' cgroups, relative to the cgroup root. */
export function kubeletCgroups(
  pod: TestPod,
  driver: Driver,
): { pod: string; containers: string[] } {
  const ids = pod.containerIds.map((c) => c.replace(/^containerd:\/\//, ""));
  if (driver === "cgroupfs") {
    const podDir =
      pod.qos === "Guaranteed"
        ? `/kubepods/pod${pod.uid}`
        : `/kubepods/${pod.qos.toLowerCase()}/pod${pod.uid}`;
    return { pod: podDir, containers: ids.map((id) => `${podDir}/${id}`) };
  }
  // systemd: every level a slice named after all its ancestors, "-" inside a name written "_".
  const uid = pod.uid.replaceAll("-", "_");
  const qos = pod.qos.toLowerCase();
  const podDir =
    pod.qos === "Guaranteed"
      ? `/kubepods.slice/kubepods-pod${uid}.slice`
      : `/kubepods.slice/kubepods-${qos}.slice/kubepods-${qos}-pod${uid}.slice`;
  return {
    pod: podDir,
    containers: ids.map((id) => `${podDir}/cri-containerd-${id}.scope`),
  };
}

/** Makes the pod's cgroups under root; returns the pod cgroup's id (its directory's inode). */
export function makePodCgroups(root: string, pod: TestPod, driver: Driver): bigint {
  const dirs = kubeletCgroups(pod, driver);
  mkdirSync(path.join(root, dirs.pod), { recursive: true });
  for (const c of dirs.containers) mkdirSync(path.join(root, c), { recursive: true });
  return cgroupId(root, dirs.pod);
}

export function cgroupId(root: string, rel: string): bigint {
  return statSync(path.join(root, rel), { bigint: true }).ino;
}

/** Removes a cgroup tree bottom-up (its processes must be gone). */
export function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) removeCgroupTree(path.join(dir, e.name));
  }
  rmdirSync(dir);
}

// ---------------------------------------------------------------------------------------------
// The agent's credentials.

/** A kubeconfig that authenticates with a bearer token (a ServiceAccount's) and trusts cp's CA. */
export function writeTokenKubeconfig(cp: ControlPlane, token: string, file: string): string {
  writeFileSync(
    file,
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "  - name: test",
      "    cluster:",
      `      server: ${JSON.stringify(cp.server)}`,
      `      certificate-authority: ${JSON.stringify(cp.caFile)}`,
      "users:",
      "  - name: agent",
      `    user: { token: ${JSON.stringify(token)} }`,
      "contexts:",
      "  - name: agent",
      "    context: { cluster: test, user: agent }",
      "current-context: agent",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  return file;
}

/** `kubectl apply -f deploy/`, as the README tells a user; returns kubectl's output. */
export async function applyDeploy(cp: ControlPlane, deployDir: string): Promise<string> {
  return cp.kubectlOk(["apply", "-f", deployDir]);
}

/** Makes a directory (and parents). */
export function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}
