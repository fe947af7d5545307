// The agent's Kubernetes mode measured against a real API server on this machine (no VM): etcd and
// kube-apiserver from `make cluster`, the project's deploy/ applied, the agent as `scx-slo run
// --source kubernetes` with the scx-slo ServiceAccount's token, in observe mode (this kernel has no
// sched_ext, so the SLOs go to the tracing observer's map, as in test/unit/k8s-cluster.test.ts).
//
//   node dist/bench/kubernetes.js [--pods 1000] [--changes 200] [--steady-s 300] [--label L]
//
// What it measures:
//   start         the agent's start in Kubernetes mode: to /healthz, and to /readyz (the first
//                 pod list reconciled); the official client's import alone, in a fresh process
//   latency       an annotation change (scx-slo.io/budget-ms) to the new budget in the BPF map:
//                 from sending the PATCH to the first read of the map that shows it, --changes
//                 times, on a node with 1 pod and again with --pods pods
//   fill          --pods annotated pods created (status patched as a kubelet would, cgroups made):
//                 from the first create to the last SLO in the map
//   steady        --steady-s seconds with nothing changing: the agent's requests to the API
//                 server (its audit log), and the agent's RSS every 5 s
//   file mode     the same agent binary with a config file naming the same --pods cgroups, for
//                 the RSS the Kubernetes mode adds
// Needs root, `make build` and `make cluster`. Writes results.json and a NOTES.md stub to
// bench/results/<date>-kubernetes[-label]/. The figures move with the host's load, which is
// recorded at the start and the end.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import path from "node:path";
import { intOption, parseOptions } from "../src/util/args.js";
import { findProjectRoot } from "../src/util/project-root.js";
import { defaultObserverPaths, stopObserver } from "../src/sched/observer.js";
import { LoaderSession } from "../src/sched/session.js";
import { NS_PER_MS } from "../src/slo/model.js";
import { auditOf, countByVerb, readAudit } from "../test/cluster/audit.js";
import { startControlPlane, type ControlPlane } from "../test/cluster/control-plane.js";
import {
  annotatePod,
  applyDeploy,
  createNode,
  createPod,
  kubeletCgroups,
  makePodCgroups,
  removeCgroupTree,
  writeTokenKubeconfig,
  type TestPod,
} from "../test/cluster/kubelet.js";
import { cgroup2Root, ensureBpffs } from "../test/observer-rig.js";
import { resultsDir } from "./host.js";
import { quantile } from "./stats.js";

const { values } = parseOptions(process.argv.slice(2), {
  pods: { type: "string", default: "1000" },
  changes: { type: "string", default: "200" },
  "steady-s": { type: "string", default: "300" },
  label: { type: "string" },
  out: { type: "string" },
});
const PODS = intOption("pods", values.pods, 1, 4000);
const CHANGES = intOption("changes", values.changes, 1, 100_000);
const STEADY_S = intOption("steady-s", values["steady-s"], 10, 3600);

const NODE = "node-1";
const NS = "bench";
const AGENT_USER = "system:serviceaccount:kube-system:scx-slo";
const root = findProjectRoot();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const started = new Date();
const loadStart = loadavg();

function log(msg: string): void {
  process.stderr.write(`[bench-k8s] ${msg}\n`);
}

function rssKiB(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** RSS of the agent's node process, and of its children (the loader sessions), in KiB. */
function agentRss(pid: number): { agent: number; children: number } {
  let children = 0;
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const list = readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").trim();
      for (const c of list ? list.split(" ") : []) children += rssKiB(Number(c));
    }
  } catch {
    // gone
  }
  return { agent: rssKiB(pid), children };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function until(what: string, fn: () => Promise<boolean>, ms: number, every = 20) {
  const end = Date.now() + ms;
  while (!(await fn().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(every);
  }
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const r = await fetch(url);
    await r.arrayBuffer();
    return r.ok;
  } catch {
    return false;
  }
}

interface AgentProc {
  child: ChildProcess;
  url: string;
  healthzMs: number;
  readyzMs: number;
  stderr: string[];
}

async function startAgent(args: string[], env: NodeJS.ProcessEnv): Promise<AgentProc> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [path.join(root, "dist/src/cli/main.js"), "run", "--listen", `127.0.0.1:${port}`, ...args],
    { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] },
  );
  const stderr: string[] = [];
  child.stderr!.on("data", (d: Buffer) => stderr.push(d.toString()));
  let exited = false;
  child.on("exit", () => (exited = true));
  const check = (f: () => Promise<boolean>) => async () => {
    if (exited) throw new Error(`the agent exited:\n${stderr.join("")}`);
    return f();
  };
  await until(
    "/healthz",
    check(() => httpOk(`${url}/healthz`)),
    60_000,
    5,
  );
  const healthzMs = performance.now() - t0;
  await until(
    "/readyz",
    check(() => httpOk(`${url}/readyz`)),
    60_000,
    5,
  );
  const readyzMs = performance.now() - t0;
  return { child, url, healthzMs, readyzMs, stderr };
}

async function stopAgent(a: AgentProc): Promise<void> {
  if (a.child.exitCode !== null) return;
  const done = new Promise((r) => a.child.once("exit", r));
  a.child.kill("SIGTERM");
  await done;
}

/** The agent's largest RSS in each phase, sampled every 250 ms. */
class PeakRss {
  readonly peaks: Record<string, number> = {};
  private phase = "start";
  private timer: NodeJS.Timeout;
  constructor(pid: number) {
    this.timer = setInterval(() => {
      const kib = rssKiB(pid);
      this.peaks[this.phase] = Math.max(this.peaks[this.phase] ?? 0, kib);
    }, 250);
  }
  enter(phase: string): void {
    this.phase = phase;
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

/** The official client's import alone, in a fresh Node process: ms and the RSS it adds (KiB). */
function importCost(): { ms: number; rssAddedKiB: number } {
  const script =
    "const r0=process.memoryUsage().rss;const t=performance.now();" +
    "await import('@kubernetes/client-node');" +
    "console.log(JSON.stringify({ms:performance.now()-t,rssAddedKiB:(process.memoryUsage().rss-r0)/1024}))";
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    cwd: root,
    encoding: "utf8",
  });
  return JSON.parse(r.stdout) as { ms: number; rssAddedKiB: number };
}

/** Annotation PATCH to map: one latency per change, in ms. */
async function changeLatencies(
  cp: ControlPlane,
  session: LoaderSession,
  pod: TestPod,
  id: bigint,
  n: number,
): Promise<number[]> {
  const out: number[] = [];
  let budget = Number((await session.get(id))?.budgetNs ?? 0) / NS_PER_MS;
  for (let i = 0; i < n; i++) {
    const next = budget === 20 ? 21 : 20 + ((i % 40) + 1);
    const t0 = performance.now();
    await annotatePod(cp, pod.namespace, pod.name, { "scx-slo.io/budget-ms": String(next) });
    for (;;) {
      const e = await session.get(id);
      if (e !== null && e.budgetNs === next * NS_PER_MS) break;
      if (performance.now() - t0 > 30_000) throw new Error(`change ${i} not applied in 30 s`);
    }
    out.push(performance.now() - t0);
    budget = next;
    await sleep(50);
  }
  return out;
}

const summary = (xs: readonly number[]) => ({
  n: xs.length,
  p50_ms: Number(quantile(xs, 0.5).toFixed(2)),
  p99_ms: Number(quantile(xs, 0.99).toFixed(2)),
  max_ms: Number(Math.max(...xs).toFixed(2)),
});

// ---------------------------------------------------------------------------------------------

if (process.getuid?.() !== 0) {
  console.error("bench/kubernetes: needs root (cgroups, BPF)");
  process.exit(2);
}
ensureBpffs();
const tmp = mkdtempSync(path.join(tmpdir(), "scx-bench-k8s-"));
const cgRoot = path.join(cgroup2Root(), `scx-slo-k8s-bench-${process.pid}`);
mkdirSync(cgRoot);
const observerPinDir = `/sys/fs/bpf/scx_slo_k8s_bench_${process.pid}`;
const agentEnv = {
  SCX_SLO_OBSERVE_PIN_DIR: observerPinDir,
  SCX_SLO_PIN_DIR: path.join(tmp, "scx-pins"),
};
const common = [
  "--node-name",
  NODE,
  "--cgroup-root",
  cgRoot,
  "--safe-mode-file",
  path.join(tmp, "safe-mode"),
  "--self-budget-ms",
  "0",
];
const audit = auditOf(AGENT_USER, tmp);
let cp: ControlPlane | undefined;
let agent: AgentProc | undefined;
let session: LoaderSession | undefined;

try {
  const imp = importCost();
  log(`client import ${imp.ms.toFixed(0)} ms, +${(imp.rssAddedKiB / 1024).toFixed(1)} MiB RSS`);
  cp = await startControlPlane({
    extraApiServerArgs: ["--allow-privileged=true", ...audit.apiServerArgs],
  });
  log(`control plane ready in ${cp.startupMs} ms`);
  await applyDeploy(cp, path.join(root, "deploy"));
  await createNode(cp, NODE);
  await cp.ensureNamespace(NS);
  const token = await cp.createToken("kube-system", "scx-slo", { durationSeconds: 7200 });
  const kubeconfig = writeTokenKubeconfig(cp, token, path.join(tmp, "agent.kubeconfig"));

  agent = await startAgent(
    ["--source", "kubernetes", "--kubeconfig", kubeconfig, ...common],
    agentEnv,
  );
  const agentStart = {
    healthz_ms: Math.round(agent.healthzMs),
    readyz_ms: Math.round(agent.readyzMs),
  };
  log(
    `agent: /healthz after ${agentStart.healthz_ms} ms, /readyz after ${agentStart.readyz_ms} ms`,
  );
  await sleep(2000);
  const rssEmpty = agentRss(agent.child.pid!);
  const peak = new PeakRss(agent.child.pid!);
  session = new LoaderSession({ ...defaultObserverPaths(), pinDir: observerPinDir });

  // Latency on a node with one pod.
  const pods: TestPod[] = [];
  const ids: bigint[] = [];
  const addPod = async (i: number) => {
    const pod = await createPod(cp!, {
      namespace: NS,
      name: `p-${String(i).padStart(4, "0")}`,
      nodeName: NODE,
      qos: (["Burstable", "Guaranteed", "BestEffort"] as const)[i % 3],
      annotations: { "scx-slo.io/budget-ms": String(5 + (i % 50)) },
      labels: { app: `app-${i % 20}` },
    });
    pods[i] = pod;
    ids[i] = makePodCgroups(cgRoot, pod, "systemd");
  };
  await addPod(0);
  await until("the first pod's SLO", async () => (await session!.get(ids[0]!)) !== null, 30_000);
  log(`${CHANGES} annotation changes, 1 pod on the node`);
  peak.enter("changes_1_pod");
  const latSmall = await changeLatencies(cp, session, pods[0]!, ids[0]!, CHANGES);
  log(`  ${JSON.stringify(summary(latSmall))}`);

  // Fill the node.
  log(`creating ${PODS - 1} more pods`);
  peak.enter("fill");
  const fill0 = performance.now();
  let next = 1;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < PODS) await addPod(next++);
    }),
  );
  const createdMs = performance.now() - fill0;
  await until(
    `${PODS} SLOs in the map`,
    async () => (await session!.list()).length >= PODS,
    300_000,
    200,
  );
  const filledMs = performance.now() - fill0;
  log(`  created in ${createdMs.toFixed(0)} ms, all in the map after ${filledMs.toFixed(0)} ms`);

  log(`${CHANGES} annotation changes, ${PODS} pods on the node`);
  peak.enter("changes_full_node");
  const latFull = await changeLatencies(cp, session, pods[0]!, ids[0]!, CHANGES);
  log(`  ${JSON.stringify(summary(latFull))}`);

  // Steady state.
  log(`steady state for ${STEADY_S} s`);
  peak.enter("steady");
  const steadyFrom = Date.now();
  const rssSamples: { t_s: number; agent_kib: number; children_kib: number }[] = [];
  while (Date.now() - steadyFrom < STEADY_S * 1000) {
    const r = agentRss(agent.child.pid!);
    rssSamples.push({
      t_s: Math.round((Date.now() - steadyFrom) / 1000),
      agent_kib: r.agent,
      children_kib: r.children,
    });
    await sleep(5000);
  }
  const steadyTo = Date.now();
  const requests = readAudit(audit.logFile).filter((r) => r.at >= steadyFrom && r.at < steadyTo);
  const steadyCounts = countByVerb(requests);
  const perMinute = requests.length / ((steadyTo - steadyFrom) / 60_000);
  // Each watch lasts 5-10 minutes (informer.ts), so a window of a few minutes sees a few renewals
  // or none: the figure per 5 minutes, window by window.
  const fiveMinutes: number[] = [];
  for (let t = steadyFrom; t + 300_000 <= steadyTo + 1000; t += 300_000) {
    fiveMinutes.push(requests.filter((r) => r.at >= t && r.at < t + 300_000).length);
  }
  log(
    `  ${requests.length} requests (${perMinute.toFixed(2)}/min): ${JSON.stringify(steadyCounts)}`,
  );
  peak.stop();
  const allRequests = readAudit(audit.logFile);
  const allCounts = countByVerb(allRequests);
  await stopAgent(agent);
  const agentLog = agent.stderr.join("");
  agent = undefined;

  // The same cgroups from a config file, for the RSS of file mode.
  const config = path.join(tmp, "config");
  writeFileSync(
    config,
    pods.map((p, i) => `${kubeletCgroups(p, "systemd").pod} ${5 + (i % 50)} 50`).join("\n") + "\n",
  );
  agent = await startAgent(["--source", "file", "--config", config, ...common], agentEnv);
  await until("file-mode SLOs", async () => (await session!.list()).length >= PODS, 120_000, 200);
  const fileSamples: number[] = [];
  for (let i = 0; i < 12; i++) {
    await sleep(5000);
    fileSamples.push(agentRss(agent.child.pid!).agent);
  }
  log(`file mode RSS ${(fileSamples.at(-1)! / 1024).toFixed(1)} MiB`);
  await stopAgent(agent);
  agent = undefined;

  const last = rssSamples.at(-1)!;
  const results = {
    schema: 1,
    kind: "kubernetes",
    machine: `${cpus()[0]?.model ?? "?"}, ${cpus().length} CPUs, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, kernel ${readFileSync("/proc/sys/kernel/osrelease", "utf8").trim()}, Node ${process.version}`,
    started: started.toISOString(),
    loadavg_start: loadStart,
    loadavg_end: loadavg(),
    control_plane_startup_ms: cp.startupMs,
    pods: PODS,
    client_import: { ms: Math.round(imp.ms), rss_added_kib: Math.round(imp.rssAddedKiB) },
    agent_start: agentStart,
    latency_1_pod: summary(latSmall),
    latency_full_node: summary(latFull),
    latency_samples_ms: {
      one_pod: latSmall.map((x) => +x.toFixed(2)),
      full_node: latFull.map((x) => +x.toFixed(2)),
    },
    fill: { created_ms: Math.round(createdMs), all_in_map_ms: Math.round(filledMs) },
    steady: {
      seconds: Math.round((steadyTo - steadyFrom) / 1000),
      requests: requests.length,
      per_minute: Number(perMinute.toFixed(2)),
      per_5_minutes: fiveMinutes,
      by_verb: steadyCounts,
    },
    requests_whole_run: allCounts,
    rss_kib: {
      kubernetes_empty_node: rssEmpty.agent,
      kubernetes_full_node_end: last.agent_kib,
      kubernetes_full_node_max: Math.max(...rssSamples.map((s) => s.agent_kib)),
      loader_children_end: last.children_kib,
      file_mode_same_slos_end: fileSamples.at(-1),
      file_mode_same_slos_max: Math.max(...fileSamples),
    },
    rss_peak_kib_by_phase: peak.peaks,
    rss_samples: rssSamples,
  };
  const dir =
    values.out ??
    resultsDir(
      path.join(root, "bench", "results"),
      started,
      values.label ? `kubernetes-${values.label}` : "kubernetes",
    );
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "results.json"), JSON.stringify(results, null, 1) + "\n");
  // Raw: the Kubernetes-mode agent's own log, and every request the API server had from it.
  writeFileSync(path.join(dir, "agent.log"), agentLog);
  writeFileSync(
    path.join(dir, "audit.json"),
    JSON.stringify(
      allRequests.map((r) => ({
        at: new Date(r.at).toISOString(),
        verb: r.verb,
        code: r.code,
        uri: r.uri,
      })),
      null,
      1,
    ) + "\n",
  );
  const mib = (k: number | undefined) => ((k ?? 0) / 1024).toFixed(1);
  const lines = [
    `# The agent in Kubernetes mode, ${started.toISOString().slice(0, 10)}`,
    "",
    `${results.machine}. Load average at start ${loadStart.map((l) => l.toFixed(2)).join(" ")}, ` +
      `at the end ${results.loadavg_end.map((l) => l.toFixed(2)).join(" ")}.`,
    "",
    "| what | figure |",
    "| --- | --- |",
    `| official client import (fresh process) | ${results.client_import.ms} ms, +${mib(results.client_import.rss_added_kib)} MiB RSS |`,
    `| agent start, Kubernetes mode: /healthz, /readyz | ${agentStart.healthz_ms} ms, ${agentStart.readyz_ms} ms |`,
    `| annotation change to BPF map, 1 pod (n=${latSmall.length}) | p50 ${results.latency_1_pod.p50_ms} ms, p99 ${results.latency_1_pod.p99_ms} ms, max ${results.latency_1_pod.max_ms} ms |`,
    `| annotation change to BPF map, ${PODS} pods (n=${latFull.length}) | p50 ${results.latency_full_node.p50_ms} ms, p99 ${results.latency_full_node.p99_ms} ms, max ${results.latency_full_node.max_ms} ms |`,
    `| ${PODS - 1} pods created; all ${PODS} SLOs in the map | ${results.fill.created_ms} ms; ${results.fill.all_in_map_ms} ms |`,
    `| API requests at steady state (${results.steady.seconds} s) | ${results.steady.requests}, ${results.steady.per_minute}/min (per 5 min: ${fiveMinutes.join(", ")}): ${JSON.stringify(results.steady.by_verb)} |`,
    `| agent RSS: empty node; ${PODS} pods (end, max) | ${mib(results.rss_kib.kubernetes_empty_node)} MiB; ${mib(results.rss_kib.kubernetes_full_node_end)}, ${mib(results.rss_kib.kubernetes_full_node_max)} MiB |`,
    `| agent RSS peaks by phase (sampled every 250 ms) | ${Object.entries(peak.peaks)
      .map(([k, v]) => `${k} ${mib(v)}`)
      .join(", ")} MiB |`,
    `| loader children RSS | ${mib(results.rss_kib.loader_children_end)} MiB |`,
    `| file mode, the same ${PODS} SLOs (end, max) | ${mib(results.rss_kib.file_mode_same_slos_end)}, ${mib(results.rss_kib.file_mode_same_slos_max)} MiB |`,
    "",
  ];
  writeFileSync(path.join(dir, "summary.md"), lines.join("\n"));
  log(`wrote ${dir}`);
  process.stdout.write(lines.join("\n"));
} finally {
  if (agent) await stopAgent(agent);
  await session?.close();
  await stopObserver({ ...defaultObserverPaths(), pinDir: observerPinDir }, true).catch(() => {});
  await cp?.stop();
  removeCgroupTree(cgRoot);
  rmSync(tmp, { recursive: true, force: true });
}
