// Kubelet cgroup layout: path generation for every QoS class, driver and runtime, and detection and
// resolution against a real directory tree built the way the kubelet and the runtimes build it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import {
  containerCgroupPaths,
  detectCgroupDriver,
  KubepodsError,
  parseContainerId,
  podCgroupCandidates,
  podCgroupPath,
  podPathResolver,
  resolvePodCgroup,
  type CgroupDriver,
  type PodCgroupRef,
  type QosClass,
} from "../../src/cgroup/kubepods.js";

const UID = "5b7c2a1e-3f4d-4e8a-9b6c-0d1e2f3a4b5c";
const UID_ = "5b7c2a1e_3f4d_4e8a_9b6c_0d1e2f3a4b5c";
const CID = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

const expectedPodPaths: Record<QosClass, Record<CgroupDriver, string>> = {
  Guaranteed: {
    systemd: `/kubepods.slice/kubepods-pod${UID_}.slice`,
    cgroupfs: `/kubepods/pod${UID}`,
  },
  Burstable: {
    systemd: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice`,
    cgroupfs: `/kubepods/burstable/pod${UID}`,
  },
  BestEffort: {
    systemd: `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice`,
    cgroupfs: `/kubepods/besteffort/pod${UID}`,
  },
};

for (const qos of ["Guaranteed", "Burstable", "BestEffort"] as const) {
  for (const driver of ["systemd", "cgroupfs"] as const) {
    test(`pod path: ${qos} pod, ${driver} driver`, () => {
      assert.equal(
        podCgroupPath({ uid: UID, qosClass: qos }, driver),
        expectedPodPaths[qos][driver],
      );
    });
  }
}

const expectedLeaves: Record<string, Record<CgroupDriver, string>> = {
  containerd: { systemd: `cri-containerd-${CID}.scope`, cgroupfs: CID },
  "cri-o": { systemd: `crio-${CID}.scope`, cgroupfs: `crio-${CID}` },
  docker: { systemd: `docker-${CID}.scope`, cgroupfs: CID },
};

for (const runtime of ["containerd", "cri-o", "docker"]) {
  for (const driver of ["systemd", "cgroupfs"] as const) {
    for (const qos of ["Guaranteed", "Burstable", "BestEffort"] as const) {
      test(`container path: ${runtime}, ${driver} driver, ${qos} pod`, () => {
        const pod: PodCgroupRef = {
          uid: UID,
          qosClass: qos,
          containerIds: [`${runtime}://${CID}`],
        };
        assert.deepEqual(containerCgroupPaths(pod, driver), [
          `${expectedPodPaths[qos][driver]}/${expectedLeaves[runtime]![driver]}`,
        ]);
      });
    }
  }
}

test("container ids: unknown runtimes, empty ids and path tricks are left out", () => {
  assert.equal(parseContainerId("rkt://abc"), null);
  assert.equal(parseContainerId("containerd://"), null);
  assert.equal(parseContainerId("containerd://../../etc"), null);
  assert.equal(parseContainerId("abc"), null);
  assert.deepEqual(parseContainerId(`cri-o://${CID}`), { runtime: "cri-o", id: CID });
  const pod: PodCgroupRef = {
    uid: UID,
    qosClass: "Burstable",
    containerIds: ["", "rkt://abc", `containerd://${CID}`, "containerd://a/b"],
  };
  assert.equal(containerCgroupPaths(pod, "cgroupfs").length, 1);
});

test("a uid that could leave the pod's cgroup is refused", () => {
  for (const uid of ["", "../x", "a/b", "-leading", "pod uid"]) {
    assert.throws(() => podCgroupPath({ uid, qosClass: "Burstable" }, "systemd"), KubepodsError);
  }
});

test("candidates: systemd first, then cgroupfs", () => {
  assert.deepEqual(podCgroupCandidates({ uid: UID, qosClass: "BestEffort" }), [
    expectedPodPaths.BestEffort.systemd,
    expectedPodPaths.BestEffort.cgroupfs,
  ]);
});

test("systemd names map back to the uid the way the kubelet reverts them", () => {
  fc.assert(
    fc.property(
      fc.uuid(),
      fc.constantFrom<QosClass>("Guaranteed", "Burstable", "BestEffort"),
      (uid, qos) => {
        const leaf = path.basename(podCgroupPath({ uid, qosClass: qos }, "systemd"));
        // kubelet: strip ".slice", "-" separates levels, "_" stands for "-".
        const levels = leaf.replace(/\.slice$/, "").split("-");
        assert.equal(levels[0], "kubepods");
        assert.equal(levels[levels.length - 1]!.replaceAll("_", "-"), `pod${uid}`);
        assert.equal(levels.length, qos === "Guaranteed" ? 2 : 3);
      },
    ),
  );
});

// A kubelet-style tree: top level, QoS levels, pods, and the runtime's container leaves.
function buildTree(root: string, driver: CgroupDriver, pods: readonly PodCgroupRef[]): void {
  const top = driver === "systemd" ? "kubepods.slice" : "kubepods";
  mkdirSync(path.join(root, top), { recursive: true });
  for (const qos of ["burstable", "besteffort"]) {
    const dir =
      driver === "systemd" ? path.join(top, `kubepods-${qos}.slice`) : path.join(top, qos);
    mkdirSync(path.join(root, dir), { recursive: true });
  }
  for (const pod of pods) {
    mkdirSync(path.join(root, podCgroupPath(pod, driver)), { recursive: true });
    for (const c of containerCgroupPaths(pod, driver))
      mkdirSync(path.join(root, c), { recursive: true });
  }
}

function withTempRoot(fn: (root: string) => void): void {
  const root = mkdtempSync(path.join(tmpdir(), "scx-kubepods-"));
  try {
    fn(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const treePods: PodCgroupRef[] = [
  { uid: UID, qosClass: "Guaranteed", containerIds: [`containerd://${CID}`] },
  {
    uid: "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    qosClass: "Burstable",
    containerIds: [`containerd://${"a".repeat(64)}`, `containerd://${"b".repeat(64)}`],
  },
  {
    uid: "f0e1d2c3-b4a5-4968-8776-655443322110",
    qosClass: "BestEffort",
    containerIds: [`cri-o://${"c".repeat(64)}`],
  },
];

for (const driver of ["systemd", "cgroupfs"] as const) {
  test(`detect and resolve on a ${driver} tree`, () => {
    withTempRoot((root) => {
      buildTree(root, driver, treePods);
      assert.equal(detectCgroupDriver(root), driver);
      for (const pod of treePods) {
        assert.equal(resolvePodCgroup(root, pod), podCgroupPath(pod, driver));
      }
      const absent = {
        uid: "11111111-2222-4333-8444-555555555555",
        qosClass: "Burstable",
      } as const;
      assert.equal(resolvePodCgroup(root, absent), null);
      const resolve = podPathResolver(root);
      assert.equal(resolve(absent), podCgroupPath(absent, driver), "pure once the driver is known");
    });
  });
}

test("detect: nothing kubelet-made under the root means no driver", () => {
  withTempRoot((root) => {
    mkdirSync(path.join(root, "system.slice"));
    assert.equal(detectCgroupDriver(root), null);
    assert.equal(resolvePodCgroup(root, treePods[0]!), null);
    assert.equal(detectCgroupDriver(path.join(root, "missing")), null);
  });
});

test("detect: after a driver change the tree still holding pods wins", () => {
  withTempRoot((root) => {
    buildTree(root, "cgroupfs", treePods);
    buildTree(root, "systemd", []);
    assert.equal(detectCgroupDriver(root), "cgroupfs");
    buildTree(root, "systemd", treePods.slice(0, 1));
    assert.equal(detectCgroupDriver(root), "systemd");
  });
});

test("resolver: waits for the kubelet, then remembers the driver", () => {
  withTempRoot((root) => {
    const resolve = podPathResolver(root);
    assert.equal(resolve(treePods[1]!), null);
    buildTree(root, "cgroupfs", []);
    assert.equal(resolve(treePods[1]!), expectedPodPathFor(treePods[1]!, "cgroupfs"));
    rmSync(path.join(root, "kubepods"), { recursive: true });
    assert.equal(resolve(treePods[1]!), expectedPodPathFor(treePods[1]!, "cgroupfs"));
    assert.equal(
      podPathResolver(root, "systemd")(treePods[1]!),
      expectedPodPathFor(treePods[1]!, "systemd"),
    );
  });
});

function expectedPodPathFor(pod: PodCgroupRef, driver: CgroupDriver): string {
  const qos = pod.qosClass.toLowerCase();
  if (driver === "cgroupfs") {
    return pod.qosClass === "Guaranteed"
      ? `/kubepods/pod${pod.uid}`
      : `/kubepods/${qos}/pod${pod.uid}`;
  }
  const u = pod.uid.replaceAll("-", "_");
  return pod.qosClass === "Guaranteed"
    ? `/kubepods.slice/kubepods-pod${u}.slice`
    : `/kubepods.slice/kubepods-${qos}.slice/kubepods-${qos}-pod${u}.slice`;
}
