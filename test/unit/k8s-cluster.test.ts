// The agent's Kubernetes mode against a real API server (etcd and kube-apiserver built by `make
// cluster`, test/cluster/control-plane.ts), with the project's own manifests and RBAC, on this
// machine's kernel. One control plane for the whole file.
//
// This host's kernel has BPF and BTF but no sched_ext, so the agent (in auto mode, as the DaemonSet
// runs it) starts the tracing observer by itself and writes each SLO into the observer's slo_map:
// "the BPF map" below is that map, read back through a loader session on the observer's pin
// folder. scx_slo's own map is written by the same reconciler code (the VM tests cover that path).
//
// There is no kubelet: the test registers the Node, binds pods to it (spec.nodeName), reports their
// status as a kubelet would (the API server sets qosClass; containerStatuses carry containerIDs),
// and makes their cgroups under a folder of the cgroup2 mount in the kubelet's layout, for the
// systemd driver and then for the cgroupfs driver. Requests are counted on the API server's side
// from its audit log, which records the agent's ServiceAccount and nobody else.
//
// Needs root (cgroups, BPF).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Agent } from "../../src/agent/agent.js";
import { AgentStatusSchema, type AgentStatus } from "../../src/api/status.js";
import { defaultLoaderPaths } from "../../src/sched/loader.js";
import { defaultObserverPaths, stopObserver } from "../../src/sched/observer.js";
import { LoaderSession } from "../../src/sched/session.js";
import { NS_PER_MS } from "../../src/slo/model.js";
import { KubernetesRuleSource } from "../../src/sources/kubernetes/source.js";
import { createLogger } from "../../src/util/log.js";
import { findProjectRoot } from "../../src/util/project-root.js";
import { auditOf, countByVerb, readAudit, type AuditSetup } from "../cluster/audit.js";
import { missingBinaries, startControlPlane, type ControlPlane } from "../cluster/control-plane.js";
import {
  annotatePod,
  applyDeploy,
  cgroupId,
  createNode,
  createPod,
  deletePod,
  kubeletCgroups,
  makePodCgroups,
  removeCgroupTree,
  writeTokenKubeconfig,
  type Driver,
  type TestPod,
} from "../cluster/kubelet.js";
import { cgroup2Root, ensureBpffs } from "../observer-rig.js";

const NODE = "node-1";
const OTHER_NODE = "node-2";
const AGENT_USER = "system:serviceaccount:kube-system:scx-slo";

const isRoot = process.getuid?.() === 0;
const observerPaths = {
  ...defaultObserverPaths(),
  pinDir: `/sys/fs/bpf/scx_slo_k8s_test_${process.pid}`,
};
const skip = !isRoot
  ? "needs root (cgroups, BPF)"
  : missingBinaries().length > 0
    ? `run \`make cluster\` (missing: ${missingBinaries().join(", ")})`
    : !existsSync(observerPaths.object)
      ? "run `make build`"
      : existsSync("/sys/kernel/sched_ext/state")
        ? "this kernel has sched_ext: the agent would load scx_slo; these tests drive observe mode"
        : false;

const tmp = mkdtempSync(path.join(tmpdir(), "scx-k8s-cluster-"));
let cp: ControlPlane | undefined;
let audit: AuditSetup;
let session: LoaderSession | undefined;
const roots: Record<Driver, string> = { systemd: "", cgroupfs: "" };

interface RunningAgent {
  agent: Agent;
  url: string;
  log: string[];
  driver: Driver;
}
let running: RunningAgent | undefined;
let kubeconfig = "";
/** The scx-slo ServiceAccount's token, minted by the API server (TokenRequest). */
let token = "";

before(async () => {
  if (skip) return;
  ensureBpffs();
  for (const d of ["systemd", "cgroupfs"] as const) {
    roots[d] = path.join(cgroup2Root(), `scx-slo-k8s-${process.pid}-${d}`);
    mkdirSync(roots[d]);
  }
  audit = auditOf(AGENT_USER, tmp);
  cp = await startControlPlane({
    // The agent's DaemonSet is privileged, which an API server allows only when told to (kubeadm
    // and managed clusters do; the README names it among the cluster requirements).
    extraApiServerArgs: ["--allow-privileged=true", ...audit.apiServerArgs],
  });
  console.log(`# control plane ready in ${cp.startupMs} ms`);
  await createNode(cp, NODE);
  await createNode(cp, OTHER_NODE);
  for (const ns of ["shop", "batch"]) await cp.ensureNamespace(ns);
});

after(async () => {
  await running?.agent.stop();
  await session?.close();
  if (isRoot) await stopObserver(observerPaths, true).catch(() => {});
  await cp?.stop();
  for (const r of Object.values(roots)) if (r) removeCgroupTree(r);
  rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 15_000,
  everyMs = 50,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) {
      const tail = running?.log.slice(-15).join("") ?? "";
      assert.fail(
        `timed out (${timeoutMs} ms) waiting for: ${what}${last ? ` (${last})` : ""}\n${tail}`,
      );
    }
    await sleep(everyMs);
  }
}

async function startAgent(driver: Driver): Promise<RunningAgent> {
  const log: string[] = [];
  const agent = new Agent({
    source: { kind: "kubernetes", nodeName: NODE, kubeconfig },
    listen: { host: "127.0.0.1", port: 0 },
    loaderPaths: { ...defaultLoaderPaths(), pinDir: path.join(tmp, "scx-pins") },
    observerPaths,
    log: createLogger({ write: (l) => log.push(l) }),
    cgroupRoot: roots[driver],
    safeModeFile: path.join(tmp, "safe-mode"),
    scxSysfsDir: path.join(tmp, "no-sched-ext"),
    selfCgroup: null,
  });
  const url = await agent.start();
  return { agent, url, log, driver };
}

async function status(): Promise<AgentStatus> {
  const r = await fetch(`${running!.url}/status`);
  return AgentStatusSchema.parse(await r.json());
}

/** The observer's map entry for a cgroup id, or null. */
async function entry(id: bigint): Promise<{ budgetMs: number; importance: number } | null> {
  session ??= new LoaderSession(observerPaths);
  const e = await session.get(id);
  return e === null ? null : { budgetMs: e.budgetNs / NS_PER_MS, importance: e.importance };
}

async function entryIs(id: bigint, budgetMs: number, importance: number): Promise<boolean> {
  const e = await entry(id);
  return e !== null && e.budgetMs === budgetMs && e.importance === importance;
}

/** Kernel ids of the observer's pinned links and their programs: new ones after any reload. */
function observerLinks(): string[] {
  return readdirSync(observerPaths.pinDir)
    .filter((f) => f.startsWith("link_"))
    .sort()
    .map((f) => {
      // bpftool prints the link and may still exit non-zero (it fails on a detail it cannot
      // read for some link types), so its output decides.
      const r = spawnSync(
        "bpftool",
        ["-j", "link", "show", "pinned", path.join(observerPaths.pinDir, f)],
        {
          encoding: "utf8",
        },
      );
      const l = JSON.parse(r.stdout) as { id: number; prog_id: number };
      assert.ok(l.id > 0 && l.prog_id > 0, `${f}: ${r.stdout}${r.stderr}`);
      return `${f}:${l.id}:${l.prog_id}`;
    });
}

const pods: Record<string, TestPod> = {};

/** A pod bound to NODE (unless nodeName says otherwise), status patched, cgroups made. */
async function addPod(
  name: string,
  o: {
    namespace?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    qos?: "Guaranteed" | "Burstable" | "BestEffort";
    nodeName?: string;
  } = {},
): Promise<bigint> {
  const pod = await createPod(cp!, {
    namespace: o.namespace ?? "shop",
    name,
    nodeName: o.nodeName ?? NODE,
    ...(o.qos ? { qos: o.qos } : {}),
    ...(o.annotations ? { annotations: o.annotations } : {}),
    ...(o.labels ? { labels: o.labels } : {}),
  });
  pods[name] = pod;
  return makePodCgroups(roots[running!.driver], pod, running!.driver);
}

function podId(name: string, driver: Driver = running!.driver): bigint {
  return cgroupId(roots[driver], kubeletCgroups(pods[name]!, driver).pod);
}

function agentRequests(since = 0): Record<string, number> {
  return countByVerb(readAudit(audit.logFile), since);
}

// ---------------------------------------------------------------------------------------------

test(
  "kubectl apply -f deploy/ is accepted; the CRD's schema refuses bad SloPolicies",
  { skip },
  async () => {
    const out = await applyDeploy(cp!, path.join(findProjectRoot(), "deploy"));
    for (const made of [
      "customresourcedefinition.apiextensions.k8s.io/slopolicies.scx-slo.io created",
      "serviceaccount/scx-slo created",
      "clusterrole.rbac.authorization.k8s.io/scx-slo created",
      "clusterrolebinding.rbac.authorization.k8s.io/scx-slo created",
      "daemonset.apps/scx-slo created",
      "service/scx-slo created",
    ]) {
      assert.ok(out.includes(made), `${made}\n${out}`);
    }
    const ds = JSON.parse(
      await cp!.kubectlOk(["get", "daemonset", "scx-slo", "-n", "kube-system", "-o", "json"]),
    );
    assert.equal(ds.spec.template.spec.serviceAccountName, "scx-slo");
    await cp!.kubectlOk([
      "wait",
      "--for=condition=Established",
      "crd/slopolicies.scx-slo.io",
      "--timeout=60s",
    ]);

    const policy = (spec: Record<string, unknown>) =>
      JSON.stringify({
        apiVersion: "scx-slo.io/v1alpha1",
        kind: "SloPolicy",
        metadata: { name: "p", namespace: "shop" },
        spec: { selector: { matchLabels: { app: "x" } }, budgetMs: 20, ...spec },
      });
    const refused = async (spec: Record<string, unknown>, message: RegExp) => {
      const r = await cp!.kubectl(["apply", "-f", "-"], { input: policy(spec) });
      assert.notEqual(r.code, 0, `accepted: ${JSON.stringify(spec)}`);
      assert.match(r.stderr, message);
    };
    await refused(
      { budgetMs: 0 },
      /spec\.budgetMs: Invalid value: 0: spec\.budgetMs in body should be greater than or equal to 1/,
    );
    await refused(
      { importance: 101 },
      /spec\.importance: Invalid value: 101: spec\.importance in body should be less than or equal to 100/,
    );
    await refused({ budgetMS: 20 }, /unknown field "spec\.budgetMS"/);
    // A good one is accepted, and defaulted by the schema.
    await cp!.kubectlOk(["apply", "-f", "-"], { input: policy({}) });
    const got = JSON.parse(
      await cp!.kubectlOk(["get", "slopolicy", "p", "-n", "shop", "-o", "json"]),
    );
    assert.equal(got.spec.importance, 50);
    await cp!.kubectlOk(["delete", "slopolicy", "p", "-n", "shop"]);
  },
);

test(
  "each watch asks for bookmarks, ends at its timeout and resumes from its version: no new list",
  { skip },
  async () => {
    token = await cp!.createToken("kube-system", "scx-slo");
    kubeconfig = writeTokenKubeconfig(cp!, token, path.join(tmp, "agent.kubeconfig"));
    const mark = Date.now();
    // The agent's source alone, with 2-4 s watches instead of 5-10 minutes.
    const source = new KubernetesRuleSource({
      nodeName: NODE,
      cgroupRoot: roots.systemd,
      kubeconfig,
      watchSeconds: 2,
    });
    await source.start(() => {});
    await sleep(9000);
    await source.stop();
    const requests = readAudit(audit.logFile).filter((r) => r.at >= mark);
    const counts = countByVerb(requests);
    for (const r of ["pods", "slopolicies", "nodes"]) {
      assert.equal(counts[`list ${r}`], 1, `one list of ${r}: ${JSON.stringify(counts)}`);
      assert.ok(
        (counts[`watch ${r}`] ?? 0) >= 3,
        `watches of ${r} renewed: ${JSON.stringify(counts)}`,
      );
    }
    for (const w of requests.filter((r) => r.verb === "watch")) {
      const q = new URL(w.uri, "https://x").searchParams;
      assert.equal(q.get("allowWatchBookmarks"), "true", w.uri);
      assert.match(q.get("timeoutSeconds") ?? "", /^[234]$/, w.uri);
      assert.match(q.get("resourceVersion") ?? "", /^\d+$/, w.uri);
    }
    assert.deepEqual(
      Object.values(source.apiCounts()).map((c) => [c?.lists, c?.errors]),
      [
        [1, 0],
        [1, 0],
        [1, 0],
      ],
    );
  },
);

test(
  "the agent runs on the scx-slo ServiceAccount's token under the project's RBAC alone",
  { skip },
  async () => {
    running = await startAgent("systemd");
    await until("the first pod list", async () => (await status()).ready.ready);
    const st = await status();
    assert.equal(st.source.kind, "kubernetes");
    assert.equal(st.mode.mode, "observe", "no sched_ext here: the observer measures");

    // What it needed worked: every request the API server got from it succeeded, and it needed
    // nothing but list and watch of pods, SloPolicies and nodes.
    const requests = readAudit(audit.logFile);
    const needed = [
      "list pods",
      "watch pods",
      "list slopolicies",
      "watch slopolicies",
      "list nodes",
      "watch nodes",
    ];
    await until("a watch of each", async () => {
      const seen = countByVerb(readAudit(audit.logFile));
      return needed.every((k) => (seen[k] ?? 0) >= 1);
    });
    for (const r of readAudit(audit.logFile)) {
      assert.equal(r.code, 200, `${r.verb} ${r.uri}`);
      assert.ok(needed.includes(`${r.verb} ${r.resource}`), `${r.verb} ${r.uri}`);
    }
    assert.ok(requests.every((r) => r.user === AGENT_USER));

    // A write it was not granted is refused, by the API server, with the same token.
    await addPod("rbac-probe");
    const write = async (
      p: string,
      method: string,
      body: unknown,
      contentType = "application/json",
    ) => cp!.request(p, { token, method, body: JSON.stringify(body), contentType });
    const checks = [
      await write(
        "/api/v1/namespaces/shop/pods/rbac-probe",
        "PATCH",
        { metadata: { labels: { a: "b" } } },
        "application/merge-patch+json",
      ),
      await write("/apis/scx-slo.io/v1alpha1/namespaces/shop/slopolicies", "POST", {
        apiVersion: "scx-slo.io/v1alpha1",
        kind: "SloPolicy",
        metadata: { name: "mine" },
        spec: { selector: {}, budgetMs: 1 },
      }),
      await write(
        `/api/v1/nodes/${NODE}`,
        "PATCH",
        { metadata: { annotations: { a: "b" } } },
        "application/merge-patch+json",
      ),
    ];
    for (const [i, verb, resource] of [
      [0, "patch", "pods"],
      [1, "create", "slopolicies"],
      [2, "patch", "nodes"],
    ] as const) {
      assert.equal(checks[i]!.status, 403, checks[i]!.body);
      assert.match(
        JSON.parse(checks[i]!.body).message,
        new RegExp(`cannot ${verb} resource "${resource}"`),
      );
    }
    await deletePod(cp!, "shop", "rbac-probe");
  },
);

test(
  "as in its pod: `scx-slo run` with in-cluster config (the mounted token and CA) lists and watches",
  { skip },
  async () => {
    // What a pod of the DaemonSet sees: KUBERNETES_SERVICE_HOST/PORT, and the ServiceAccount's
    // token, CA and namespace under /var/run/secrets/kubernetes.io/serviceaccount, here in a
    // private mount namespace (a tmpfs over /run) so the host's /run is left alone. --mode enforce
    // keeps a second observer out: on this kernel that means no scheduler, only the source.
    const sa = path.join(tmp, "sa");
    mkdirSync(sa);
    writeFileSync(path.join(sa, "token"), token);
    writeFileSync(path.join(sa, "ca.crt"), readFileSync(cp!.caFile));
    writeFileSync(path.join(sa, "namespace"), "kube-system");
    const mark = Date.now();
    const port = new URL(cp!.server).port;
    const script =
      "mount -t tmpfs tmpfs /run && d=/var/run/secrets/kubernetes.io/serviceaccount && " +
      'mkdir -p "$d" && cp "$SA"/token "$SA"/ca.crt "$SA"/namespace "$d"/ && exec "$@"';
    const child = spawn(
      "unshare",
      ["--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh", process.execPath]
        .concat([path.join(findProjectRoot(), "dist/src/cli/main.js"), "run"])
        .concat(["--source", "kubernetes", "--mode", "enforce", "--listen", "127.0.0.1:0"])
        .concat(["--cgroup-root", roots.systemd, "--self-budget-ms", "0"])
        .concat(["--safe-mode-file", path.join(tmp, "pod-safe-mode")]),
      {
        env: {
          ...process.env,
          SA: sa,
          NODE_NAME: NODE,
          KUBERNETES_SERVICE_HOST: "127.0.0.1",
          KUBERNETES_SERVICE_PORT: port,
          KUBECONFIG: "",
          SCX_SLO_PIN_DIR: path.join(tmp, "pod-pins"),
        },
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    let log = "";
    child.stderr.on("data", (d: Buffer) => (log += d.toString()));
    try {
      await until(
        "the pod list, in the agent's log",
        async () =>
          /kubernetes: \d+ pod SLO rules on node node-1/.test(log) || child.exitCode !== null,
        30_000,
        100,
      );
      assert.equal(child.exitCode, null, log);
      const seen = countByVerb(readAudit(audit.logFile), mark);
      for (const r of ["pods", "slopolicies", "nodes"]) {
        assert.equal(seen[`list ${r}`], 1, `${r}: ${JSON.stringify(seen)}\n${log}`);
      }
      assert.ok(
        readAudit(audit.logFile)
          .filter((r) => r.at >= mark)
          .every((r) => r.code === 200 && r.user === AGENT_USER),
      );
      // Stopped right after its first list (its watches being opened), it exits at once: no
      // watch outlives the stop and holds the process.
      const t0 = Date.now();
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once("exit", r)));
      assert.ok(Date.now() - t0 < 10_000, `exited ${Date.now() - t0} ms after SIGTERM`);
      assert.equal(child.exitCode, 0, log);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  },
);

let webId = 0n;

test(
  "an annotated pod's SLO reaches the BPF map; a changed annotation changes it live",
  { skip },
  async () => {
    webId = await addPod("web", {
      annotations: { "scx-slo.io/budget-ms": "20", "scx-slo.io/importance": "80" },
    });
    await until("web's SLO in the map", () => entryIs(webId, 20, 80));
    // /status may be up to a second old.
    const c = await until("web in /status", async () =>
      (await status()).cgroups.find((x) => x.pod === "web"),
    );
    assert.equal(c.namespace, "shop");
    assert.equal(c.cgroup, kubeletCgroups(pods.web!, "systemd").pod);

    // Live: the same observer (no reload, so its links and programs keep their kernel ids; for
    // scx_slo the equivalent is an unchanged enable_seq), a new budget in its map.
    const links = observerLinks();
    assert.equal(links.length, 4);
    const t0 = Date.now();
    await annotatePod(cp!, "shop", "web", { "scx-slo.io/budget-ms": "35" });
    await until("the new budget", () => entryIs(webId, 35, 80));
    console.log(`# annotation change to map in ${Date.now() - t0} ms`);
    assert.deepEqual(observerLinks(), links, "the observer was not reloaded");

    // Its metrics carry the pod's name once its container runs and waits.
    const container = path.join(roots.systemd, kubeletCgroups(pods.web!, "systemd").containers[0]!);
    const child = spawn(
      "/bin/sh",
      ["-c", 'echo $$ > "$0/cgroup.procs" && for i in $(seq 50); do sleep 0.01; done', container],
      {
        stdio: "ignore",
      },
    );
    await new Promise((r) => child.on("exit", r));
    await until(
      "runs of web in /metrics",
      async () => {
        const text = await (await fetch(`${running!.url}/metrics`)).text();
        const m = /^scx_slo_runs_total\{[^}]*namespace="shop",pod="web"[^}]*\} (\d+)$/m.exec(text);
        return m && Number(m[1]) > 0;
      },
      5000,
      300,
    );
  },
);

test("an SloPolicy selects pods by label", { skip }, async () => {
  await cp!.kubectlOk(["apply", "-f", "-"], {
    input: JSON.stringify({
      apiVersion: "scx-slo.io/v1alpha1",
      kind: "SloPolicy",
      metadata: { name: "reports", namespace: "batch" },
      spec: { selector: { matchLabels: { app: "report" } }, budgetMs: 200, importance: 10 },
    }),
  });
  const selected = await addPod("report-1", {
    namespace: "batch",
    labels: { app: "report" },
    qos: "BestEffort",
  });
  const other = await addPod("etl-1", {
    namespace: "batch",
    labels: { app: "etl" },
    qos: "Guaranteed",
  });
  await until("the policy's SLO on report-1", () => entryIs(selected, 200, 10));
  assert.equal(await entry(other), null, "a pod the selector does not match gets nothing");
  // The policy changes: so does the pod's SLO.
  await cp!.kubectlOk([
    "patch",
    "slopolicy",
    "reports",
    "-n",
    "batch",
    "--type=merge",
    "-p",
    '{"spec":{"budgetMs":150}}',
  ]);
  await until("the policy's new budget", () => entryIs(selected, 150, 10));
});

test("a deleted pod's entry goes; a pod of another node is ignored", { skip }, async () => {
  // Its cgroups are made here too, so only the node it is bound to can keep it out.
  const foreign = await addPod("elsewhere", {
    annotations: { "scx-slo.io/budget-ms": "5" },
    nodeName: OTHER_NODE,
  });
  const marker = await addPod("after-elsewhere", { annotations: { "scx-slo.io/budget-ms": "7" } });
  await until("a later pod of this node", () => entryIs(marker, 7, 50));
  assert.equal(await entry(foreign), null);
  await until("after-elsewhere in /status", async () =>
    (await status()).cgroups.some((c) => c.pod === "after-elsewhere"),
  );
  assert.ok(!(await status()).cgroups.some((c) => c.pod === "elsewhere"));

  await deletePod(cp!, "shop", "web");
  await until("web's entry gone", async () => (await entry(webId)) === null);
  await until(
    "web gone from /status",
    async () => !(await status()).cgroups.some((c) => c.pod === "web"),
  );
});

test(
  "cgroupfs driver: a new agent on a cgroupfs node places the same pods there",
  { skip },
  async () => {
    const before = running!;
    await before.agent.stop();
    // The kubelet's cgroupfs layout for the pods bound to this node.
    for (const name of ["report-1", "etl-1", "after-elsewhere"])
      makePodCgroups(roots.cgroupfs, pods[name]!, "cgroupfs");
    running = await startAgent("cgroupfs");
    await until("report-1 under cgroupfs", () => entryIs(podId("report-1", "cgroupfs"), 150, 10));
    await until("after-elsewhere under cgroupfs", () =>
      entryIs(podId("after-elsewhere", "cgroupfs"), 7, 50),
    );
    assert.match(
      kubeletCgroups(pods["report-1"]!, "cgroupfs").pod,
      /^\/kubepods\/besteffort\/pod[0-9a-f-]+$/,
    );
    // The systemd-layout cgroups are no rule of this agent: their entries are gone.
    await until(
      "the old entries gone",
      async () => (await entry(podId("report-1", "systemd"))) === null,
    );
  },
);

test(
  "API server stopped for 30 s: the last good SLOs stay, the watch resumes without a list",
  { skip },
  async () => {
    const id = podId("after-elsewhere");
    const report = podId("report-1");
    const entries = async () =>
      JSON.stringify(await session!.list(), (_k, v: unknown) =>
        typeof v === "bigint" ? String(v) : v,
      );
    const kept = await entries();
    const mark = Date.now();
    await cp!.stopApiServer();
    for (let s = 0; s < 30; s++) {
      await sleep(1000);
      assert.equal(await entries(), kept, `SLOs changed ${s + 1} s into the outage`);
    }
    assert.equal((await status()).source.loaded, true);
    const readyMs = await cp!.startApiServer();
    const back = Date.now();
    // Changes made as soon as it is back, before the agent's watches have reconnected.
    await annotatePod(cp!, "shop", "after-elsewhere", { "scx-slo.io/budget-ms": "9" });
    const fresh = await addPod("fresh", { annotations: { "scx-slo.io/budget-ms": "11" } });
    await deletePod(cp!, "batch", "report-1");
    await until(
      "the changes applied",
      async () =>
        (await entryIs(id, 9, 50)) &&
        (await entryIs(fresh, 11, 50)) &&
        (await entry(report)) === null,
      20_000,
      100,
    );
    const appliedMs = Date.now() - back;
    console.log(
      `# API server ready again in ${readyMs} ms; changes applied ${appliedMs} ms after that`,
    );
    // The informers retry at most 7.5 s apart (informer.ts: DEFAULT_BACKOFF, jittered).
    assert.ok(appliedMs < 12_000, `applied ${appliedMs} ms after the API server was back`);
    // Each informer resumes on its own back-off: the changes above may arrive through the first.
    await until(
      "every watch resumed",
      async () =>
        ["pods", "slopolicies", "nodes"].every(
          (r) => (agentRequests(mark)[`watch ${r}`] ?? 0) >= 1,
        ),
      20_000,
      200,
    );
    const counts = agentRequests(mark);
    console.log(`# the agent's requests from the outage on: ${JSON.stringify(counts)}`);
    for (const r of ["pods", "slopolicies", "nodes"]) {
      assert.equal(counts[`list ${r}`] ?? 0, 0, `no new list of ${r}: the watch resumed`);
      assert.ok((counts[`watch ${r}`] ?? 0) >= 1, `watch ${r} again`);
    }
  },
);

test(
  "an etcd compaction that forces 410 Gone leads to one list per informer",
  { skip },
  async () => {
    // Writes the agent's watches do not select, so each watch's last resourceVersion falls behind
    // the compaction; the API server's restart then makes each resume from it.
    for (let i = 0; i < 3; i++)
      await cp!.kubectlOk(["create", "configmap", `filler-${i}`, "-n", "batch"]);
    const mark = Date.now();
    await cp!.compactEtcd();
    await cp!.stopApiServer();
    await cp!.startApiServer();
    await until(
      "a list by each informer after 410",
      async () =>
        ["pods", "slopolicies", "nodes"].every((r) => (agentRequests(mark)[`list ${r}`] ?? 0) >= 1),
      30_000,
      200,
    );
    await sleep(3000); // room for a second list, if there were one
    const counts = agentRequests(mark);
    console.log(`# the agent's requests after the compaction: ${JSON.stringify(counts)}`);
    for (const r of ["pods", "slopolicies", "nodes"])
      assert.equal(counts[`list ${r}`], 1, `one list of ${r}`);
    // Still right afterwards.
    await until("SLOs kept", () => entryIs(podId("fresh"), 11, 50));
  },
);

test("the node's safe-mode annotation turns safe mode on within 2 s", { skip }, async () => {
  // With sched_ext, safe mode detaches scx_slo through the same supervisor path the VM tests drive
  // with the flag file (test/vm/agent.test.ts); here the agent's own word for it is /status.
  const t0 = Date.now();
  await cp!.kubectlOk(["annotate", "node", NODE, "scx-slo.io/safe-mode=true"]);
  await until("safe mode on", async () => (await status()).safe_mode.on, 2000, 20);
  const ms = Date.now() - t0;
  console.log(`# node annotation to safe mode in ${ms} ms`);
  assert.match((await status()).safe_mode.reason, /node annotation scx-slo\.io\/safe-mode=true/);
  await cp!.kubectlOk(["annotate", "node", NODE, "scx-slo.io/safe-mode-"]);
  await until("safe mode off", async () => !(await status()).safe_mode.on, 2000, 20);
});
