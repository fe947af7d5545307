// The Kubernetes SLO source against recorded API payloads (test/fixtures/k8s/: a PodList, a pod
// watch stream, an SloPolicyList, written after the Kubernetes API reference). No API server can run
// here, so the parsing is fed the payloads directly, and the list+watch loop talks to a local
// node:http server that serves them, goes away and comes back.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { podCgroupPath, podPathResolver, type QosClass } from "../../src/cgroup/kubepods.js";
import { NS_PER_MS, type SloRule } from "../../src/slo/model.js";
import {
  ANNOTATION_BUDGET_MS,
  decidePodSlo,
  parseSloPolicy,
  type SloPolicy,
} from "../../src/sources/kubernetes/annotations.js";
import {
  consumeWatchStream,
  KubeApiError,
  KubeClient,
  loadInClusterConfig,
  parseList,
  parseWatchLine,
  readLines,
  statusError,
  type KubeObject,
  type V1Pod,
  type WatchEvent,
} from "../../src/sources/kubernetes/client.js";
import { kubernetesPodSource, PodSource } from "../../src/sources/kubernetes/pod-source.js";

const PREFIX = "recorded API payloads (no API server can run here)";
const t = (name: string, fn: (ctx: TestContext) => void | Promise<void>): void => {
  test(`${PREFIX}: ${name}`, fn);
};

const FIXTURES = new URL("../../../test/fixtures/k8s/", import.meta.url);
const fixture = (name: string): string => new URL(name, FIXTURES).pathname;
const podListText = readFileSync(fixture("podlist-worker-1.json"), "utf8");
const watchText = readFileSync(fixture("watch-pods-worker-1.ndjson"), "utf8");
const policyListText = readFileSync(fixture("slopolicies.json"), "utf8");

const podList = parseList<V1Pod>(podListText, "fixture");
const byName = (name: string, pods: readonly V1Pod[] = podList.items): V1Pod => {
  const pod = pods.find((p) => p.metadata?.name === name);
  assert.ok(pod, `fixture pod ${name}`);
  return pod;
};

// The fixtures come from a systemd-driver node, the kubeadm default.
const podPath = podPathResolver("/nonexistent", "systemd");
const expectedPath = (name: string, pods?: readonly V1Pod[]): string => {
  const pod = byName(name, pods);
  return podCgroupPath(
    { uid: pod.metadata!.uid!, qosClass: pod.status!.qosClass as QosClass },
    "systemd",
  );
};
const ruleFor = (rules: readonly SloRule[], pod: string): SloRule | undefined =>
  rules.find((r) => r.labels.pod === pod);
const summary = (rules: readonly SloRule[]): Record<string, [number, number]> =>
  Object.fromEntries(rules.map((r) => [r.labels.pod!, [r.budgetNs / NS_PER_MS, r.importance]]));

function sourceWithoutApi(): PodSource {
  const never = (): never => {
    throw new Error("no API in this test");
  };
  return new PodSource({ pods: { list: never, watch: never }, podPath });
}

// ---------------------------------------------------------------------------------------------

t("the PodList parses: all pods, the list's resourceVersion", () => {
  assert.equal(podList.resourceVersion, "48213");
  assert.equal(podList.items.length, 8);
  const qos = new Set(podList.items.map((p) => p.status?.qosClass));
  assert.deepEqual([...qos].sort(), ["BestEffort", "Burstable", "Guaranteed"]);
});

t("annotated live pods become path rules; others are skipped or reported", () => {
  const changes: unknown[] = [];
  const source = new PodSource({
    pods: {
      list: () => Promise.reject(new Error("unused")),
      watch: () => Promise.reject(new Error("unused")),
    },
    podPath,
    onChange: (s) => changes.push(s),
  });
  source.replacePods(podList.items);

  assert.deepEqual(summary(source.rules), {
    "fraud-scorer-0": [15, 70], // Pending, BestEffort, no container yet: its pod cgroup is still known
    "payment-api-7d9f8b6c5-x2k4p": [5, 90], // Guaranteed
    "web-frontend-6b8f9c7d4-qz7lm": [20, 50], // Burstable, importance defaulted
  });
  const api = ruleFor(source.rules, "payment-api-7d9f8b6c5-x2k4p")!;
  assert.deepEqual(api, {
    match: { kind: "path", path: expectedPath("payment-api-7d9f8b6c5-x2k4p") },
    budgetNs: 5 * NS_PER_MS,
    importance: 90,
    labels: { namespace: "payments", pod: "payment-api-7d9f8b6c5-x2k4p" },
    origin: { source: "k8s:pod/payments/payment-api-7d9f8b6c5-x2k4p" },
  });
  assert.match(
    api.match.kind === "path" ? api.match.path : "",
    /^\/kubepods\.slice\/kubepods-pod[0-9a-f_]+\.slice$/,
  );
  assert.match(
    (ruleFor(source.rules, "fraud-scorer-0")!.match as { path: string }).path,
    /^\/kubepods\.slice\/kubepods-besteffort\.slice\/kubepods-besteffort-pod[0-9a-f_]+\.slice$/,
  );
  // Succeeded pod with an annotation: no rule. Pods without annotations: no rule, no error.
  assert.equal(ruleFor(source.rules, "db-migrate-28912340-zx9vb"), undefined);
  assert.equal(ruleFor(source.rules, "coredns-76f75df574-9lq2w"), undefined);

  assert.equal(source.errors.length, 1);
  const [err] = source.errors;
  assert.match(err!, /pod shop\/cart-5f7d8c9b6-mm2rt/);
  assert.match(err!, new RegExp(ANNOTATION_BUDGET_MS.replace(".", "\\.")));
  assert.match(err!, /"fast"/);
  assert.match(err!, /set it to a number of milliseconds from 1 to 10000/);
  assert.equal(changes.length, 1);
});

t("SloPolicies apply to pods without annotations; annotations win; lowest budget wins", () => {
  const policies = parseList<KubeObject>(policyListText, "fixture");
  const source = sourceWithoutApi();
  source.replacePolicies(policies.items);
  source.replacePods(podList.items);
  const s = summary(source.rules);
  // batch/batch-default (200 ms) and batch/reports (500 ms) both select it: 200 ms wins.
  assert.deepEqual(s["report-builder-28912345-h7k2x"], [200, 10]);
  // payments/backend (25 ms) selects payment-api, but its own annotation (5 ms) wins.
  assert.deepEqual(s["payment-api-7d9f8b6c5-x2k4p"], [5, 90]);
  // kube-system/broken is invalid, so coredns gets nothing, and the error names the policy.
  assert.equal(s["coredns-76f75df574-9lq2w"], undefined);
  assert.ok(
    source.errors.some((e) => /SloPolicy kube-system\/broken: spec\.budgetMs=0 is invalid/.test(e)),
  );
  assert.ok(source.errors.some((e) => /cart-5f7d8c9b6-mm2rt/.test(e)));
});

t("policy order in the list does not change the outcome", () => {
  const items = parseList<KubeObject>(policyListText, "fixture").items;
  const policies = items.flatMap((o) => {
    const r = parseSloPolicy(o);
    return "policy" in r ? [r.policy] : [];
  });
  const pod = { namespace: "batch", name: "x", labels: { app: "report-builder" } };
  const tie = (name: string, importance: number): SloPolicy => ({
    ...policies[0]!,
    metadata: { name, namespace: "batch" },
    spec: { selector: {}, budgetMs: 200, importance },
  });
  const all = [...policies, tie("aaa", 10), tie("zzz", 40)];
  const reversed = [...all].reverse();
  assert.deepEqual(decidePodSlo(pod, all), decidePodSlo(pod, reversed));
  assert.deepEqual(decidePodSlo(pod, all), {
    kind: "slo",
    budgetMs: 200,
    importance: 40,
    from: "SloPolicy batch/zzz",
  });
});

t("importance annotation alone: overrides a policy, is an error without one", () => {
  const policies = [parseSloPolicy(JSON.parse(policyListText).items[2])].flatMap((r) =>
    "policy" in r ? [r.policy] : [],
  );
  const pod = (annotations: Record<string, string>, labels = { tier: "backend" }) => ({
    namespace: "payments",
    name: "p",
    labels,
    annotations,
  });
  assert.deepEqual(decidePodSlo(pod({ "scx-slo.io/importance": "99" }), policies), {
    kind: "slo",
    budgetMs: 25,
    importance: 99,
    from: "SloPolicy payments/backend",
  });
  const lone = decidePodSlo(pod({ "scx-slo.io/importance": "99" }, { tier: "web" }), policies);
  assert.equal(lone.kind, "error");
  assert.match((lone as { message: string }).message, /add scx-slo\.io\/budget-ms/);
  for (const bad of ["0", "101", "1.5", "high"]) {
    const d = decidePodSlo(pod({ "scx-slo.io/budget-ms": "10", "scx-slo.io/importance": bad }));
    assert.equal(d.kind, "error", bad);
    assert.match(
      (d as { message: string }).message,
      /pod payments\/p: annotation scx-slo\.io\/importance=/,
    );
  }
  for (const bad of ["0", "10001", "-5", "5ms", "", "2.0000001"]) {
    assert.equal(decidePodSlo(pod({ "scx-slo.io/budget-ms": bad })).kind, "error", bad);
  }
  assert.deepEqual(decidePodSlo(pod({ "scx-slo.io/budget-ms": " 2.5 " })), {
    kind: "slo",
    budgetMs: 2.5,
    importance: 50,
    from: "annotations",
  });
});

t("the watch stream: every event type, split across arbitrary chunk boundaries", async () => {
  const events: WatchEvent<V1Pod>[] = [];
  // 61-byte reads split lines and multi-byte characters alike.
  const stream = createReadStream(fixture("watch-pods-worker-1.ndjson"), { highWaterMark: 61 });
  const end = await consumeWatchStream<V1Pod>(stream, (e) => events.push(e), "fixture");
  assert.equal(end, "expired", "410 Gone ends the watch with a relist");
  assert.deepEqual(
    events.map((e) => e.type),
    ["ADDED", "MODIFIED", "MODIFIED", "BOOKMARK", "DELETED"],
  );
  assert.deepEqual(events[3], { type: "BOOKMARK", resourceVersion: "48255" });

  const source = sourceWithoutApi();
  source.replacePods(podList.items);
  for (const e of events) if (e.type !== "BOOKMARK") source.applyPodEvent(e);
  const s = summary(source.rules);
  assert.deepEqual(s["ledger-writer-7c9d5b8f6-p4n8s"], [10, 50], "added, then Running");
  assert.deepEqual(s["payment-api-7d9f8b6c5-x2k4p"], [8, 90], "annotation changed 5 -> 8");
  assert.equal(s["web-frontend-6b8f9c7d4-qz7lm"], undefined, "deleted");
  assert.equal(Object.keys(s).length, 3);
});

t(
  "readLines: multi-byte characters split between chunks, blank lines, no final newline",
  async () => {
    const text = '{"a":"é€"}\n\n{"b":1}';
    const bytes = Buffer.from(text);
    const chunks = [...bytes].map((b) => Uint8Array.of(b));
    const lines: string[] = [];
    for await (const l of readLines(
      (async function* () {
        yield* chunks;
      })(),
    )) {
      lines.push(l);
    }
    assert.deepEqual(lines, ['{"a":"é€"}', '{"b":1}']);
  },
);

t("watch errors other than 410 are thrown with code and message", () => {
  const line = JSON.stringify({
    type: "ERROR",
    object: {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: "etcdserver: request timed out",
      reason: "InternalError",
      code: 500,
    },
  });
  assert.throws(
    () => parseWatchLine(line, "WATCH /api/v1/pods"),
    (err: unknown) =>
      err instanceof KubeApiError &&
      err.code === 500 &&
      /InternalError: etcdserver/.test(err.message),
  );
  assert.throws(() => parseWatchLine("<html>", "w"), KubeApiError);
  assert.throws(
    () => parseWatchLine('{"type":"SURPRISE","object":{}}', "w"),
    /unknown watch event type/,
  );
  const gone = watchText.trim().split("\n").at(-1)!;
  assert.deepEqual(parseWatchLine(gone, "w"), { kind: "expired" });
});

t(
  "Status errors name the fix: RBAC for 403, token for 401, CRD for a missing custom resource",
  () => {
    const forbidden = JSON.stringify({
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message:
        'pods is forbidden: User "system:serviceaccount:scx-slo:scx-slo-agent" cannot list resource "pods" in API group "" at the cluster scope',
      reason: "Forbidden",
      details: { kind: "pods" },
      code: 403,
    });
    assert.match(
      statusError(403, forbidden, "pods").message,
      /403 Forbidden: pods is forbidden.*ClusterRole in deploy/,
    );
    assert.match(
      statusError(
        401,
        '{"kind":"Status","reason":"Unauthorized","message":"Unauthorized","code":401}',
        "pods",
      ).message,
      /token/,
    );
    assert.match(
      statusError(404, "404 page not found", "slopolicies.scx-slo.io").message,
      /CustomResourceDefinition is not installed/,
    );
  },
);

t("status-only MODIFIED events do not re-emit unchanged rules", () => {
  const emitted: unknown[] = [];
  const source = new PodSource({
    pods: {
      list: () => Promise.reject(new Error("unused")),
      watch: () => Promise.reject(new Error("unused")),
    },
    podPath,
    onChange: (s) => emitted.push(s),
  });
  source.replacePods(podList.items);
  const pod = structuredClone(byName("web-frontend-6b8f9c7d4-qz7lm")) as {
    metadata: { resourceVersion: string };
    status: { conditions: unknown[] };
  };
  pod.metadata.resourceVersion = "48300";
  pod.status.conditions.push({ type: "Ready", status: "False" });
  source.applyPodEvent({ type: "MODIFIED", object: pod as V1Pod });
  assert.equal(emitted.length, 1);
});

t("in-cluster config: service account files and KUBERNETES_SERVICE_* (IPv6 bracketed)", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "scx-sa-"));
  try {
    writeFileSync(path.join(dir, "token"), "eyJhbGciOiJSUzI1NiJ9.sa.sig\n");
    writeFileSync(
      path.join(dir, "ca.crt"),
      "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    );
    writeFileSync(path.join(dir, "namespace"), "scx-slo");
    const paths = {
      tokenFile: path.join(dir, "token"),
      caFile: path.join(dir, "ca.crt"),
      namespaceFile: path.join(dir, "namespace"),
    };
    const cfg = loadInClusterConfig(paths, {
      KUBERNETES_SERVICE_HOST: "10.96.0.1",
      KUBERNETES_SERVICE_PORT: "443",
    });
    assert.equal(cfg.server, "https://10.96.0.1:443");
    assert.equal(cfg.token, "eyJhbGciOiJSUzI1NiJ9.sa.sig");
    assert.equal(cfg.namespace, "scx-slo");
    assert.match(String(cfg.ca), /BEGIN CERTIFICATE/);
    const v6 = loadInClusterConfig(paths, {
      KUBERNETES_SERVICE_HOST: "fd00:10:96::1",
      KUBERNETES_SERVICE_PORT: "443",
    });
    assert.equal(v6.server, "https://[fd00:10:96::1]:443");
    assert.throws(() => loadInClusterConfig(paths, {}), /KUBERNETES_SERVICE_HOST.*DaemonSet/);
    assert.throws(
      () =>
        loadInClusterConfig(
          { ...paths, tokenFile: path.join(dir, "nope") },
          { KUBERNETES_SERVICE_HOST: "h", KUBERNETES_SERVICE_PORT: "1" },
        ),
      /service account token .*automountServiceAccountToken/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// A local API server made of the recorded payloads. It keeps the pod set as state: a watch streams
// the recorded events (applying them), then the 410; a list returns the current state.

interface Seen {
  readonly path: string;
  readonly query: URLSearchParams;
  readonly auth: string | undefined;
}

class RecordedApiServer {
  readonly seen: Seen[] = [];
  readonly pods = new Map<string, V1Pod>();
  rv = podList.resourceVersion;
  watches = 0;
  private server: http.Server | https.Server;
  port = 0;

  constructor(tls?: { key: string; cert: string }) {
    for (const p of podList.items) this.pods.set(p.metadata!.uid!, p);
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void =>
      this.handle(req, res);
    this.server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  }

  get url(): string {
    return `${this.server instanceof https.Server ? "https" : "http"}://127.0.0.1:${this.port}`;
  }

  lists(): Seen[] {
    return this.seen.filter((s) => s.query.get("watch") === null);
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(this.port, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://x");
    this.seen.push({
      path: url.pathname,
      query: url.searchParams,
      auth: req.headers.authorization,
    });
    if (url.pathname !== "/api/v1/pods") {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("404 page not found");
      return;
    }
    if (url.searchParams.get("watch") === null) {
      const body = {
        kind: "PodList",
        apiVersion: "v1",
        metadata: { resourceVersion: this.rv },
        items: [...this.pods.values()],
      };
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(body));
      return;
    }
    res.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    res.flushHeaders();
    this.watches++;
    // Only the first watch replays the recording; later ones stay open and quiet, like a real
    // watch on an idle node, until the server goes away.
    if (this.watches === 1) void this.replay(res);
  }

  private async replay(res: http.ServerResponse): Promise<void> {
    for (const line of watchText.trim().split("\n")) {
      const ev = JSON.parse(line) as {
        type: string;
        object: V1Pod & { code?: number; message?: string };
      };
      if (ev.type === "ERROR") {
        this.rv = /\((\d+)\)/.exec(ev.object.message ?? "")?.[1] ?? this.rv;
      } else {
        this.rv = ev.object.metadata!.resourceVersion!;
        if (ev.type !== "BOOKMARK") {
          // List items carry no kind/apiVersion; watch objects do.
          const stored: V1Pod = { ...ev.object };
          delete (stored as { kind?: string }).kind;
          delete (stored as { apiVersion?: string }).apiVersion;
          if (ev.type === "DELETED") this.pods.delete(stored.metadata!.uid!);
          else this.pods.set(stored.metadata!.uid!, stored);
        }
      }
      // Each event in two writes, so the client sees lines cut mid-JSON.
      const cut = Math.floor(line.length / 2);
      res.write(line.slice(0, cut));
      await new Promise((r) => setTimeout(r, 5));
      res.write(line.slice(cut) + "\n");
    }
    res.end();
  }
}

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

t(
  "served by a local HTTP server: listPods sends the node's field selector and the bearer token",
  async () => {
    const api = new RecordedApiServer();
    await api.start();
    try {
      const client = new KubeClient({ server: api.url, token: "sa-token-1" });
      const list = await client.listPods("worker-1");
      assert.equal(list.items.length, 8);
      assert.equal(list.resourceVersion, "48213");
      const [req] = api.seen;
      assert.equal(req!.query.get("fieldSelector"), "spec.nodeName=worker-1");
      assert.equal(req!.auth, "Bearer sa-token-1");

      const events: string[] = [];
      const end = await client.watchPods("worker-1", list.resourceVersion, (e) =>
        events.push(e.type),
      );
      assert.equal(end, "expired");
      assert.deepEqual(events, ["ADDED", "MODIFIED", "MODIFIED", "BOOKMARK", "DELETED"]);
      const watch = api.seen[1]!;
      assert.equal(watch.query.get("watch"), "true");
      assert.equal(watch.query.get("resourceVersion"), "48213");
      assert.equal(watch.query.get("allowWatchBookmarks"), "true");
      assert.equal(watch.query.get("fieldSelector"), "spec.nodeName=worker-1");

      // A projected token is read from its file, which the kubelet rewrites as it rotates.
      const dir = mkdtempSync(path.join(tmpdir(), "scx-token-"));
      try {
        writeFileSync(path.join(dir, "token"), "sa-token-from-file\n");
        await new KubeClient({ server: api.url, tokenFile: path.join(dir, "token") }).listPods("w");
        assert.equal(api.seen.at(-1)!.auth, "Bearer sa-token-from-file");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }

      await assert.rejects(
        client.custom("scx-slo.io", "v1alpha1", "slopolicies").list(),
        /404.*slopolicies\.scx-slo\.io CustomResourceDefinition is not installed/,
      );
    } finally {
      await api.stop();
    }
  },
);

t(
  "served by a local HTTP server: list+watch, 410 relist, outage keeps the last good SLOs, recovery",
  async () => {
    const api = new RecordedApiServer();
    await api.start();
    const client = new KubeClient({ server: api.url, token: "sa-token-1" });
    const source = kubernetesPodSource(client, "worker-1", {
      podPath,
      backoff: { initialMs: 10, maxMs: 50 },
    });
    const stop = new AbortController();
    const running = source.run(stop.signal);
    try {
      // List, watch replay, 410, relist from the new resourceVersion, quiet watch.
      await waitFor("relist after 410", () => api.lists().length === 2 && api.watches === 2);
      const watchRvs = api.seen
        .filter((s) => s.query.get("watch") !== null)
        .map((s) => s.query.get("resourceVersion"));
      assert.deepEqual(watchRvs, ["48213", "48990"]);
      assert.equal(source.connected, true);
      assert.equal(source.lastError, null);
      const good = source.rules;
      assert.deepEqual(summary(good), {
        "fraud-scorer-0": [15, 70],
        "ledger-writer-7c9d5b8f6-p4n8s": [10, 50],
        "payment-api-7d9f8b6c5-x2k4p": [8, 90],
      });

      // The API server goes away mid-watch: the SLOs stay as they were.
      await api.stop();
      await waitFor("disconnect noticed", () => !source.connected && source.lastError !== null);
      assert.match(source.lastError!, /unreachable|ECONNRESET|ECONNREFUSED|aborted|socket hang up/);
      await new Promise((r) => setTimeout(r, 150)); // several failed retries
      assert.deepEqual(source.rules, good);
      const listsDuringOutage = api.lists().length;

      // While it was away, fraud-scorer-0 started and its budget changed.
      const fraud = structuredClone(byName("fraud-scorer-0")) as V1Pod & {
        metadata: { annotations: Record<string, string>; resourceVersion: string };
        status: { phase: string };
      };
      fraud.metadata.annotations[ANNOTATION_BUDGET_MS] = "12";
      fraud.metadata.resourceVersion = "49001";
      fraud.status.phase = "Running";
      api.pods.set(fraud.metadata.uid!, fraud);
      api.rv = "49001";

      await api.start(); // same port
      await waitFor(
        "reconnected",
        () => source.connected && api.lists().length > listsDuringOutage,
      );
      assert.equal(source.lastError, null);
      assert.deepEqual(summary(source.rules)["fraud-scorer-0"], [12, 70]);
      assert.equal(ruleFor(source.rules, "fraud-scorer-0")!.match.kind, "path");
      assert.deepEqual(
        (ruleFor(source.rules, "fraud-scorer-0")!.match as { path: string }).path,
        expectedPath("fraud-scorer-0"),
      );
    } finally {
      stop.abort();
      await running;
      await api.stop().catch(() => undefined);
    }
  },
);

function selfSignedCert(dir: string): { key: string; cert: string } | null {
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        path.join(dir, "key.pem"),
        "-out",
        path.join(dir, "cert.pem"),
        "-days",
        "1",
        "-subj",
        "/CN=kubernetes",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
      ],
      { stdio: "ignore" },
    );
  } catch {
    return null;
  }
  return {
    key: readFileSync(path.join(dir, "key.pem"), "utf8"),
    cert: readFileSync(path.join(dir, "cert.pem"), "utf8"),
  };
}

t(
  "served by a local HTTPS server: the service account CA is trusted, nothing else is",
  async (ctx) => {
    const dir = mkdtempSync(path.join(tmpdir(), "scx-tls-"));
    const tls = selfSignedCert(dir);
    if (tls === null) {
      ctx.skip("openssl not available");
      rmSync(dir, { recursive: true, force: true });
      return;
    }
    const api = new RecordedApiServer(tls);
    await api.start();
    try {
      const trusted = new KubeClient({ server: api.url, ca: tls.cert, token: "t" });
      assert.equal((await trusted.listPods("worker-1")).items.length, 8);
      const untrusted = new KubeClient({ server: api.url, token: "t" });
      await assert.rejects(
        untrusted.listPods("worker-1"),
        /unreachable: .*(self-signed|certificate)/,
      );
    } finally {
      await api.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
