// Where the kubelet puts a pod's cgroups on a cgroup v2 node, for both kubelet cgroup drivers.
//
// The kubelet names cgroups abstractly ("kubepods", "burstable", "pod<uid>") and each driver spells
// that differently: cgroupfs joins the parts as directories; systemd turns every level into a slice
// whose name repeats its ancestors joined by "-" (so a "-" inside a part is written "_", otherwise
// systemd would read it as another level). Guaranteed pods have no QoS level of their own.
// Container leaves are named by the runtime, not by the kubelet.

import { readdirSync, statSync } from "node:fs";
import path from "node:path";

export type QosClass = "Guaranteed" | "Burstable" | "BestEffort";
export type CgroupDriver = "systemd" | "cgroupfs";
export type ContainerRuntime = "containerd" | "cri-o" | "docker";

/** What a pod's cgroup location depends on: all from the v1 Pod's metadata and status. */
export interface PodCgroupRef {
  readonly uid: string;
  readonly qosClass: QosClass;
  /** status.containerStatuses[].containerID, e.g. "containerd://4f1c..."; empty ones are skipped. */
  readonly containerIds: readonly string[];
}

export const QOS_CLASSES: readonly QosClass[] = ["Guaranteed", "Burstable", "BestEffort"];

const RUNTIME_PREFIXES: Readonly<Record<string, ContainerRuntime>> = {
  containerd: "containerd",
  "cri-o": "cri-o",
  docker: "docker",
};

// The uid and the container id become path components; anything outside these alphabets could
// walk out of the pod's cgroup ("..", "/"), so it is refused rather than escaped.
const UID_RE = /^[0-9A-Za-z][0-9A-Za-z-]*$/;
const CONTAINER_ID_RE = /^[0-9A-Za-z]+$/;

export class KubepodsError extends Error {
  override name = "KubepodsError";
}

function checkUid(uid: string): void {
  if (!UID_RE.test(uid)) {
    throw new KubepodsError(
      `pod uid ${JSON.stringify(uid)} is not a Kubernetes uid (letters, digits and "-")`,
    );
  }
}

/** Splits "containerd://abc" into runtime and id; null for an unknown runtime or a malformed id. */
export function parseContainerId(
  containerId: string,
): { readonly runtime: ContainerRuntime; readonly id: string } | null {
  const sep = containerId.indexOf("://");
  if (sep < 0) return null;
  const runtime = RUNTIME_PREFIXES[containerId.slice(0, sep)];
  const id = containerId.slice(sep + 3);
  if (runtime === undefined || !CONTAINER_ID_RE.test(id)) return null;
  return { runtime, id };
}

/** The pod-level cgroup, relative to the cgroup2 mount. Throws KubepodsError on a malformed uid. */
export function podCgroupPath(
  pod: Pick<PodCgroupRef, "uid" | "qosClass">,
  driver: CgroupDriver,
): string {
  checkUid(pod.uid);
  const qos = pod.qosClass === "Guaranteed" ? null : pod.qosClass.toLowerCase();
  if (driver === "cgroupfs") {
    return qos === null ? `/kubepods/pod${pod.uid}` : `/kubepods/${qos}/pod${pod.uid}`;
  }
  const podPart = `pod${pod.uid.replaceAll("-", "_")}`;
  return qos === null
    ? `/kubepods.slice/kubepods-${podPart}.slice`
    : `/kubepods.slice/kubepods-${qos}.slice/kubepods-${qos}-${podPart}.slice`;
}

/** The leaf a runtime creates for one container inside the pod's cgroup. */
export function containerLeafName(
  container: { readonly runtime: ContainerRuntime; readonly id: string },
  driver: CgroupDriver,
): string {
  if (driver === "systemd") {
    // The runtimes ask systemd for a transient scope "<prefix>-<id>.scope" under the pod slice.
    const prefix = { containerd: "cri-containerd", "cri-o": "crio", docker: "docker" }[
      container.runtime
    ];
    return `${prefix}-${container.id}.scope`;
  }
  // containerd and dockerd use the bare id; CRI-O prefixes its cgroupfs leaves too.
  return container.runtime === "cri-o" ? `crio-${container.id}` : container.id;
}

/** Container cgroups of the pod, in containerIds order; unknown runtimes are left out. */
export function containerCgroupPaths(pod: PodCgroupRef, driver: CgroupDriver): string[] {
  const podPath = podCgroupPath(pod, driver);
  const out: string[] = [];
  for (const raw of pod.containerIds) {
    const parsed = parseContainerId(raw);
    if (parsed !== null) out.push(`${podPath}/${containerLeafName(parsed, driver)}`);
  }
  return out;
}

/** The pod-level cgroup under each driver, systemd first (the kubeadm default since 1.22). */
export function podCgroupCandidates(pod: Pick<PodCgroupRef, "uid" | "qosClass">): string[] {
  return [podCgroupPath(pod, "systemd"), podCgroupPath(pod, "cgroupfs")];
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function hasPodCgroup(dir: string): boolean {
  // Pod cgroups sit at depth 1 (Guaranteed) or 2 (under a QoS level).
  const podName = /(^|-)pod[0-9A-Za-z_-]+(\.slice)?$/;
  try {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      if (podName.test(entry.name)) return true;
      const inner = path.join(dir, entry.name);
      if (
        readdirSync(inner, { withFileTypes: true }).some(
          (e) => e.isDirectory() && podName.test(e.name),
        )
      ) {
        return true;
      }
    }
  } catch {
    // A cgroup removed while reading it is simply not evidence either way.
  }
  return false;
}

/**
 * Which driver the kubelet on this node uses, from the top-level kubepods cgroup it created under
 * cgroupRoot (the cgroup2 mount, e.g. /sys/fs/cgroup). Null when there is neither (not a node, or
 * the kubelet has not started yet). Both exist only after a driver change without a reboot; the one
 * that still holds pods is the live one.
 */
export function detectCgroupDriver(cgroupRoot: string): CgroupDriver | null {
  const systemdDir = path.join(cgroupRoot, "kubepods.slice");
  const cgroupfsDir = path.join(cgroupRoot, "kubepods");
  const systemd = isDir(systemdDir);
  const cgroupfs = isDir(cgroupfsDir);
  if (systemd && cgroupfs) {
    if (hasPodCgroup(cgroupfsDir) && !hasPodCgroup(systemdDir)) return "cgroupfs";
    return "systemd";
  }
  if (systemd) return "systemd";
  if (cgroupfs) return "cgroupfs";
  return null;
}

/** The first candidate pod cgroup that exists under cgroupRoot, or null (not created yet). */
export function resolvePodCgroup(
  cgroupRoot: string,
  pod: Pick<PodCgroupRef, "uid" | "qosClass">,
): string | null {
  for (const candidate of podCgroupCandidates(pod)) {
    if (isDir(path.join(cgroupRoot, candidate))) return candidate;
  }
  return null;
}

/**
 * A pod -> pod cgroup path function for the agent. With a driver given it is pure; otherwise the
 * driver is detected on first use and remembered, since a kubelet does not change driver while
 * running. Before the kubelet has created kubepods, a pod whose cgroup already exists is still
 * found; anything else is null (the caller retries on the next update).
 */
export function podPathResolver(
  cgroupRoot: string,
  driver?: CgroupDriver,
): (pod: Pick<PodCgroupRef, "uid" | "qosClass">) => string | null {
  let known: CgroupDriver | null = driver ?? null;
  return (pod) => {
    if (known === null) known = detectCgroupDriver(cgroupRoot);
    return known !== null ? podCgroupPath(pod, known) : resolvePodCgroup(cgroupRoot, pod);
  };
}
