// A real Kubernetes control plane for tests: etcd and kube-apiserver built from source by
// test/cluster/build.sh (`make cluster`), started on 127.0.0.1 with free ports, stopped by the test.
// No kubelet, scheduler or controller-manager runs: pods are API objects only (set spec.nodeName
// yourself), and a namespace's "default" ServiceAccount, which the controller-manager would make,
// is made by ensureNamespace(). Works on the host and inside the sched_ext VM guest (loopback only).
//
// Certificates come from openssl (a CA, the API server's serving certificate, an admin client
// certificate in system:masters); the service-account signing key from node:crypto. etcd serves
// plain HTTP on loopback so tests can reach its JSON gateway (forced compaction) without a client
// certificate.
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import http from "node:http";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { freePorts } from "../../src/util/free-ports.js";

const execFileP = promisify(execFile);

/** The folder holding this module's go.mod (test/cluster), found from dist/ or from the source. */
function clusterModuleDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, "test", "cluster", "go.mod");
    if (existsSync(candidate)) return path.dirname(candidate);
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error("control-plane: cannot find test/cluster/go.mod");
    dir = parent;
  }
}

/** The Kubernetes version test/cluster/go.mod pins (build.sh builds exactly that one). */
export function kubernetesVersion(): string {
  const mod = readFileSync(path.join(clusterModuleDir(), "go.mod"), "utf8");
  const m = /^\s*k8s\.io\/kubernetes\s+(v\S+)/m.exec(mod);
  if (!m?.[1]) throw new Error("control-plane: test/cluster/go.mod names no k8s.io/kubernetes");
  return m[1];
}

/** Where build.sh puts kube-apiserver, kubectl and etcd (outside /root and /tmp: the VM sees it). */
export function controlPlaneBinDir(): string {
  const root = process.env.SCX_SLO_CACHE_ROOT || "/var/cache/scx-slo";
  return path.join(root, "k8s", kubernetesVersion(), "bin");
}

const BINARIES = ["etcd", "kube-apiserver", "kubectl"] as const;

/** The binaries build.sh has not built yet (empty when all are there). */
export function missingBinaries(binDir = controlPlaneBinDir()): string[] {
  return BINARIES.filter((b) => !existsSync(path.join(binDir, b)));
}

export interface ControlPlaneOptions {
  binDir?: string;
  /** Parent of the control plane's temporary folder (certificates, etcd data, logs). */
  tmpRoot?: string;
  /** How long the API server may take to report /readyz (software-emulated VMs are slow). */
  readyTimeoutMs?: number;
  /**
   * The API server's watch cache. Off by default: it is the largest part of an idle API server's
   * memory, and without it every watch reads etcd, so compactEtcd() makes a watch from an older
   * resourceVersion fail with 410 Gone at once, as a watch that fell behind does in production.
   */
  watchCache?: boolean;
  /** GOMAXPROCS for etcd and kube-apiserver. */
  goMaxProcs?: number;
  extraApiServerArgs?: readonly string[];
  /** More environment for etcd and kube-apiserver (GOGC, GOMEMLIMIT, GODEBUG, ...). */
  env?: Readonly<Record<string, string>>;
}

export interface KubectlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface ApiResponse {
  status: number;
  body: string;
}

export interface ControlPlane {
  /** https://127.0.0.1:<port> */
  readonly server: string;
  readonly caFile: string;
  /** A kubeconfig for an admin (client certificate in group system:masters). */
  readonly kubeconfig: string;
  /** The service-account token issuer, also the default audience of minted tokens. */
  readonly issuer: string;
  /** http://127.0.0.1:<port> (plain HTTP, loopback only). */
  readonly etcdUrl: string;
  /** The temporary folder: pki/, etcd data, etcd.log, kube-apiserver.log. */
  readonly dir: string;
  /** Milliseconds from start to the API server's first 200 on /readyz. */
  readonly startupMs: number;
  /** kubectl with the admin kubeconfig; never throws on a non-zero exit. */
  kubectl(args: readonly string[], opts?: { input?: string }): Promise<KubectlResult>;
  /** kubectl that throws with its stderr when it exits non-zero; returns stdout. */
  kubectlOk(args: readonly string[], opts?: { input?: string }): Promise<string>;
  /** A namespace and its "default" ServiceAccount (no controller-manager makes that here). */
  ensureNamespace(name: string): Promise<void>;
  /** A token for a ServiceAccount (TokenRequest API through `kubectl create token`). */
  createToken(
    namespace: string,
    serviceAccount: string,
    opts?: { audience?: string; durationSeconds?: number },
  ): Promise<string>;
  /** One HTTPS request to the API server: as the admin, or with a bearer token. */
  request(
    pathAndQuery: string,
    opts?: {
      token?: string;
      method?: string;
      body?: string;
      contentType?: string;
      timeoutMs?: number;
    },
  ): Promise<ApiResponse>;
  /** Compacts etcd's history up to its current revision; returns that revision. */
  compactEtcd(): Promise<number>;
  /** Stops the API server alone (etcd keeps running); the port stays reserved for its return. */
  stopApiServer(): Promise<void>;
  /** Starts the API server again on the same port and etcd; resolves when /readyz says ok. */
  startApiServer(): Promise<number>;
  /** Resident memory in KiB (0 for a process that is not running). */
  rss(): { etcdKiB: number; apiServerKiB: number };
  /** Stops both (SIGTERM, then SIGKILL) and removes the temporary folder. */
  stop(): Promise<void>;
}

/**
 * The API server labels its identity Lease with the machine's hostname. The VM guest has none
 * ("(none)"), which is no valid label value, so the Lease is refused over and over; there the API
 * server runs in its own UTS namespace under a valid name (root only, as the guest always is).
 */
function apiServerHostname(): string | undefined {
  const name = os.hostname();
  return /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$/.test(name)
    ? undefined
    : "scx-slo-test";
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

function rssKiB(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m?.[1] ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  try {
    await execFileP("openssl", args, { cwd });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`control-plane: openssl ${args[0]} failed: ${e.stderr ?? e.message}`);
  }
}

interface Pki {
  caFile: string;
  serverCert: string;
  serverKey: string;
  adminCert: string;
  adminKey: string;
  saPublic: string;
  saPrivate: string;
}

/** A fresh CA and the certificates and keys one control plane needs, valid for a week. */
async function makePki(dir: string): Promise<Pki> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "7"];
  await openssl(
    ["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=scx-slo-test-ca"]
      .concat(["-addext", "basicConstraints=critical,CA:TRUE"])
      .concat(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]),
    dir,
  );
  const leaf = (name: string, subj: string, usage: string, extra: string[] = []) =>
    openssl(
      ["req", "-x509", ...ec, "-CA", "ca.crt", "-CAkey", "ca.key"]
        .concat(["-keyout", `${name}.key`, "-out", `${name}.crt`, "-subj", subj])
        .concat(["-addext", "basicConstraints=critical,CA:FALSE"])
        .concat(["-addext", "keyUsage=critical,digitalSignature"])
        .concat(["-addext", `extendedKeyUsage=${usage}`, ...extra]),
      dir,
    );
  // The serving certificate also names the in-cluster service address and names, so a client
  // configured as a pod would be (KUBERNETES_SERVICE_HOST) can verify it too.
  const sans = [
    "IP:127.0.0.1",
    "IP:10.96.0.1",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
  ];
  await Promise.all([
    leaf("apiserver", "/CN=kube-apiserver", "serverAuth", [
      "-addext",
      `subjectAltName=${sans.join(",")}`,
    ]),
    leaf("admin", "/O=system:masters/CN=scx-slo-test-admin", "clientAuth"),
  ]);
  const sa = generateKeyPairSync("ec", { namedCurve: "P-256" });
  writeFileSync(path.join(dir, "sa.pub"), sa.publicKey.export({ type: "spki", format: "pem" }));
  writeFileSync(path.join(dir, "sa.key"), sa.privateKey.export({ type: "sec1", format: "pem" }), {
    mode: 0o600,
  });
  const p = (f: string) => path.join(dir, f);
  return {
    caFile: p("ca.crt"),
    serverCert: p("apiserver.crt"),
    serverKey: p("apiserver.key"),
    adminCert: p("admin.crt"),
    adminKey: p("admin.key"),
    saPublic: p("sa.pub"),
    saPrivate: p("sa.key"),
  };
}

interface Proc {
  child: ChildProcess;
  exited: Promise<void>;
  hasExited: () => boolean;
}

/**
 * Starts a binary with its output appended to logFile. setpriv's parent-death signal ends it if
 * the test process dies without calling stop(), so no etcd or API server outlives its test.
 */
function startProcess(
  bin: string,
  args: string[],
  logFile: string,
  env: NodeJS.ProcessEnv,
  opts: { hostname?: string } = {},
): Proc {
  const fd = openSync(logFile, "a");
  // unshare and sh exec in turn, so the pid stays the binary's.
  const argv =
    opts.hostname === undefined
      ? [bin, ...args]
      : [
          "unshare",
          "--uts",
          "--",
          "/bin/sh",
          "-c",
          'hostname "$0" && exec "$@"',
          opts.hostname,
        ].concat([bin, ...args]);
  const child = spawn("setpriv", ["--pdeathsig", "TERM", "--", ...argv], {
    stdio: ["ignore", fd, fd],
    env,
  });
  closeSync(fd);
  let done = false;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      done = true;
      resolve();
    });
    child.once("error", () => {
      done = true;
      resolve();
    });
  });
  return { child, exited, hasExited: () => done };
}

async function terminate(proc: Proc | undefined, graceMs = 10_000): Promise<void> {
  if (!proc || proc.hasExited()) return;
  proc.child.kill("SIGTERM");
  const timer = setTimeout(() => proc.child.kill("SIGKILL"), graceMs);
  await proc.exited;
  clearTimeout(timer);
}

function httpJson(url: string, body: unknown): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: "POST", headers: { "Content-Type": "application/json" }, timeout: 10_000 },
      (res) => {
        let data = "";
        res.on("data", (d: Buffer) => (data += d.toString()));
        res.on("end", () => {
          if (res.statusCode !== 200) {
            reject(new Error(`etcd ${url}: HTTP ${res.statusCode}: ${data}`));
            return;
          }
          try {
            resolve(JSON.parse(data) as Record<string, unknown>);
          } catch (err) {
            reject(err as Error);
          }
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`etcd ${url}: timed out`)));
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

async function etcdHealthy(etcdUrl: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`${etcdUrl}/health`, { timeout: 2000 }, (res) => {
      let data = "";
      res.on("data", (d: Buffer) => (data += d.toString()));
      res.on("end", () => resolve(res.statusCode === 200 && /"health":\s*"true"/.test(data)));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
  });
}

function yamlString(s: string): string {
  return JSON.stringify(s);
}

/** Starts etcd and kube-apiserver; resolves once the API server reports ready. */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const binDir = opts.binDir ?? controlPlaneBinDir();
  const missing = missingBinaries(binDir);
  if (missing.length > 0) {
    throw new Error(
      `control-plane: ${missing.join(", ")} not built in ${binDir}; run \`make cluster\``,
    );
  }
  const readyTimeoutMs = opts.readyTimeoutMs ?? 180_000;
  const started = Date.now();
  const dir = mkdtempSync(path.join(opts.tmpRoot ?? os.tmpdir(), "scx-slo-k8s-"));
  const procs: { etcd?: Proc; apiserver?: Proc } = {};
  // A test process that exits without stop() (an uncaught error) takes both with it.
  const killAll = () => {
    for (const p of [procs.apiserver, procs.etcd]) if (p && !p.hasExited()) p.child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", killAll);

  try {
    const pki = await makePki(path.join(dir, "pki"));
    const [etcdPort, peerPort, apiPort] = (await freePorts(3)) as [number, number, number];
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const server = `https://127.0.0.1:${apiPort}`;
    const issuer = "https://kubernetes.default.svc.cluster.local";
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: dir,
      GOMAXPROCS: String(opts.goMaxProcs ?? Math.min(2, os.availableParallelism())),
      ...opts.env,
    };

    const peerUrl = `http://127.0.0.1:${peerPort}`;
    procs.etcd = startProcess(
      path.join(binDir, "etcd"),
      [
        "--name=default",
        `--data-dir=${path.join(dir, "etcd")}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        "--initial-cluster-state=new",
        // Test data is thrown away: no fsync, and a small raft log kept in memory.
        "--unsafe-no-fsync",
        "--snapshot-count=1000",
        "--quota-backend-bytes=268435456",
        "--log-level=warn",
      ],
      path.join(dir, "etcd.log"),
      env,
    );
    while (!(await etcdHealthy(etcdUrl))) {
      if (procs.etcd.hasExited())
        throw new Error(`control-plane: etcd exited:\n${tail(path.join(dir, "etcd.log"))}`);
      if (Date.now() - started > readyTimeoutMs)
        throw new Error(`control-plane: etcd not healthy:\n${tail(path.join(dir, "etcd.log"))}`);
      await sleep(100);
    }

    const apiArgs = [
      `--etcd-servers=${etcdUrl}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${pki.serverCert}`,
      `--tls-private-key-file=${pki.serverKey}`,
      `--client-ca-file=${pki.caFile}`,
      "--authorization-mode=Node,RBAC",
      `--service-account-issuer=${issuer}`,
      `--service-account-key-file=${pki.saPublic}`,
      `--service-account-signing-key-file=${pki.saPrivate}`,
      `--api-audiences=${issuer}`,
      "--service-cluster-ip-range=10.96.0.0/12",
      // The "kubernetes" Service's endpoints would name the loopback address, which Endpoints
      // validation refuses; nothing here routes to it anyway.
      "--endpoint-reconciler-type=none",
      `--watch-cache=${opts.watchCache ?? false}`,
      // etcd's history is compacted only when a test asks (compactEtcd), so 410 Gone is on cue.
      "--etcd-compaction-interval=0",
      "--max-requests-inflight=100",
      "--max-mutating-requests-inflight=50",
      // The OpenAPI documents are built on first request; under software emulation that takes
      // longer than the default one-minute limit, and kubectl's first write needs /openapi/v2.
      "--request-timeout=5m",
      "--profiling=false",
      "--enable-logs-handler=false",
      ...(opts.extraApiServerArgs ?? []),
    ];
    const apiLog = path.join(dir, "kube-apiserver.log");
    const agent = new https.Agent({
      ca: readFileSync(pki.caFile),
      cert: readFileSync(pki.adminCert),
      key: readFileSync(pki.adminKey),
      // One connection for the readiness polls and requests: a TLS handshake per poll costs much
      // CPU under software emulation.
      keepAlive: true,
      maxSockets: 4,
    });

    const request: ControlPlane["request"] = (pathAndQuery, o = {}) =>
      new Promise((resolve, reject) => {
        const headers: Record<string, string> = { Accept: "application/json" };
        if (o.token !== undefined) headers.Authorization = `Bearer ${o.token}`;
        if (o.body !== undefined) headers["Content-Type"] = o.contentType ?? "application/json";
        const req = https.request(
          new URL(pathAndQuery, server),
          {
            method: o.method ?? (o.body === undefined ? "GET" : "POST"),
            headers,
            // A token request carries the token alone, not the admin's client certificate.
            ...(o.token === undefined ? { agent } : { ca: readFileSync(pki.caFile), agent: false }),
            timeout: o.timeoutMs ?? 30_000,
          },
          (res) => {
            let body = "";
            res.on("data", (d: Buffer) => (body += d.toString()));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on("timeout", () => req.destroy(new Error(`${pathAndQuery}: timed out`)));
        req.on("error", reject);
        req.end(o.body);
      });

    const startApiServer = async (): Promise<number> => {
      const t0 = Date.now();
      procs.apiserver = startProcess(path.join(binDir, "kube-apiserver"), apiArgs, apiLog, env, {
        hostname: apiServerHostname(),
      });
      const proc = procs.apiserver;
      let lastReadyz = "(no answer yet)";
      for (;;) {
        if (proc.hasExited())
          throw new Error(`control-plane: kube-apiserver exited:\n${tail(apiLog)}`);
        if (Date.now() - t0 > readyTimeoutMs)
          throw new Error(
            `control-plane: kube-apiserver not ready in ${readyTimeoutMs} ms; last /readyz: ` +
              `${lastReadyz
                .split("\n")
                .filter((l) => !l.startsWith("[+]"))
                .join("\n")}\n` +
              `log:\n${tail(apiLog)}`,
          );
        const ready = await request("/readyz?verbose").then(
          (r) => r,
          (err: Error) => ({ status: 0, body: err.message }),
        );
        if (ready.status === 200) return Date.now() - t0;
        lastReadyz = ready.body;
        await sleep(Date.now() - t0 < 10_000 ? 250 : 1000);
      }
    };
    await startApiServer();

    const kubeconfig = path.join(dir, "admin.kubeconfig");
    writeFileSync(
      kubeconfig,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "  - name: scx-slo-test",
        "    cluster:",
        `      server: ${yamlString(server)}`,
        `      certificate-authority: ${yamlString(pki.caFile)}`,
        "users:",
        "  - name: admin",
        "    user:",
        `      client-certificate: ${yamlString(pki.adminCert)}`,
        `      client-key: ${yamlString(pki.adminKey)}`,
        "contexts:",
        "  - name: admin",
        "    context: { cluster: scx-slo-test, user: admin }",
        "current-context: admin",
        "",
      ].join("\n"),
      { mode: 0o600 },
    );

    const kubectl: ControlPlane["kubectl"] = (args, o = {}) =>
      new Promise((resolve, reject) => {
        const child = spawn(
          path.join(binDir, "kubectl"),
          [`--kubeconfig=${kubeconfig}`, `--cache-dir=${path.join(dir, "kubectl-cache")}`, ...args],
          { stdio: ["pipe", "pipe", "pipe"], env },
        );
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("error", reject);
        child.on("close", (code) => resolve({ code, stdout, stderr }));
        child.stdin.end(o.input ?? "");
      });
    const kubectlOk: ControlPlane["kubectlOk"] = async (args, o) => {
      const r = await kubectl(args, o);
      if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: exit ${r.code}: ${r.stderr}`);
      return r.stdout;
    };

    const startupMs = Date.now() - started;
    let stopped = false;
    return {
      server,
      caFile: pki.caFile,
      kubeconfig,
      issuer,
      etcdUrl,
      dir,
      startupMs,
      kubectl,
      kubectlOk,
      async ensureNamespace(name) {
        // Straight to the API: no kubectl process, and no OpenAPI download before the first write.
        const create = async (path: string, obj: object) => {
          const r = await request(path, { body: JSON.stringify(obj) });
          if (r.status !== 201 && r.status !== 409)
            throw new Error(`control-plane: POST ${path}: HTTP ${r.status}: ${r.body}`);
        };
        await create("/api/v1/namespaces", {
          apiVersion: "v1",
          kind: "Namespace",
          metadata: { name },
        });
        await create(`/api/v1/namespaces/${name}/serviceaccounts`, {
          apiVersion: "v1",
          kind: "ServiceAccount",
          metadata: { name: "default" },
        });
      },
      async createToken(namespace, serviceAccount, o = {}) {
        const args = ["create", "token", serviceAccount, "-n", namespace];
        if (o.audience !== undefined) args.push(`--audience=${o.audience}`);
        if (o.durationSeconds !== undefined) args.push(`--duration=${o.durationSeconds}s`);
        return (await kubectlOk(args)).trim();
      },
      request,
      async compactEtcd() {
        // Any range read reports the store's current revision in its header.
        const range = await httpJson(`${etcdUrl}/v3/kv/range`, {
          key: Buffer.from("/").toString("base64"),
          limit: 1,
        });
        const header = range.header as { revision?: string } | undefined;
        const revision = Number(header?.revision);
        if (!Number.isFinite(revision) || revision <= 0)
          throw new Error(`control-plane: etcd reported no revision: ${JSON.stringify(range)}`);
        await httpJson(`${etcdUrl}/v3/kv/compaction`, {
          revision: String(revision),
          physical: true,
        });
        return revision;
      },
      async stopApiServer() {
        await terminate(procs.apiserver);
      },
      startApiServer: async () => {
        if (procs.apiserver && !procs.apiserver.hasExited())
          throw new Error("control-plane: kube-apiserver is already running");
        return startApiServer();
      },
      rss() {
        const alive = (p?: Proc) => (p && !p.hasExited() ? p.child.pid : undefined);
        return { etcdKiB: rssKiB(alive(procs.etcd)), apiServerKiB: rssKiB(alive(procs.apiserver)) };
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        agent.destroy();
        await terminate(procs.apiserver);
        await terminate(procs.etcd);
        process.removeListener("exit", killAll);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await terminate(procs.apiserver, 2000);
    await terminate(procs.etcd, 2000);
    process.removeListener("exit", killAll);
    // The error carries the tail of the log that says why.
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
