// Kubernetes mode of the agent against a local fake API server: no rules until the first list,
// the node's pods become rules with kubelet cgroup paths, an API outage keeps the last good rules,
// and the node's scx-slo.io/safe-mode annotation is read.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  KubernetesRuleSource,
  NODE_SAFE_MODE_ANNOTATION,
} from "../../src/sources/kubernetes/source.js";
import { KubeClient } from "../../src/sources/kubernetes/client.js";
import { findProjectRoot } from "../../src/util/project-root.js";

const podList = JSON.parse(
  readFileSync(path.join(findProjectRoot(), "test/fixtures/k8s/podlist-worker-1.json"), "utf8"),
) as { items: unknown[] };

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test("kubernetes rule source: first list, outage keeps rules, node safe-mode annotation", async () => {
  let annotation: string | undefined;
  let listsServed = 0;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const json = (body: unknown) =>
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(body));
    if (url.pathname === "/api/v1/pods" && url.searchParams.get("watch") === null) {
      listsServed++;
      json({ kind: "PodList", metadata: { resourceVersion: "1" }, items: podList.items });
    } else if (url.pathname === "/api/v1/nodes") {
      assert.equal(url.searchParams.get("fieldSelector"), "metadata.name=worker-1");
      const annotations =
        annotation === undefined ? {} : { [NODE_SAFE_MODE_ANNOTATION]: annotation };
      json({
        kind: "NodeList",
        metadata: { resourceVersion: "1" },
        items: [{ metadata: { name: "worker-1", annotations } }],
      });
    } else if (url.searchParams.get("watch") !== null) {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.flushHeaders(); // a quiet watch
    } else if (url.pathname.startsWith("/apis/scx-slo.io/")) {
      json({ kind: "SloPolicyList", metadata: { resourceVersion: "1" }, items: [] });
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const root = mkdtempSync(path.join(tmpdir(), "scx-k8s-"));
  mkdirSync(path.join(root, "kubepods.slice")); // the kubelet's systemd driver
  const source = new KubernetesRuleSource({
    nodeName: "worker-1",
    cgroupRoot: root,
    client: new KubeClient({ server: `http://127.0.0.1:${port}`, token: "t" }),
    backoff: { initialMs: 10, maxMs: 50 },
    nodePollMs: 30,
    refreshMs: 20,
  });
  let changes = 0;
  try {
    assert.equal(source.current(), null, "no rules before the first list");
    await source.start(() => changes++);
    await until("first list", () => source.current() !== null);
    const rules = source.current()!;
    assert.ok(rules.length > 0);
    for (const r of rules) {
      assert.equal(r.match.kind, "path");
      if (r.match.kind === "path") assert.match(r.match.path, /^\/kubepods\.slice\//);
      assert.ok(r.labels.namespace && r.labels.pod);
    }
    assert.ok(changes >= 1);
    assert.equal(source.safeMode().on, false);
    annotation = "true";
    await until("annotation read", () => source.safeMode().on);
    assert.match(source.safeMode().reason, /scx-slo.io\/safe-mode=true/);

    // The API server goes away: the rules stay exactly as they were.
    const before = JSON.stringify(source.current());
    await new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(JSON.stringify(source.current()), before);
    assert.equal(source.safeMode().on, true, "the last known annotation stays too");
    assert.ok(listsServed >= 1);
  } finally {
    await source.stop();
    server.close();
    rmSync(root, { recursive: true });
  }
});
