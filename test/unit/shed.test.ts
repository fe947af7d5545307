// Early load shedding over real HTTP on 127.0.0.1: a fake agent whose /overload answer the test
// flips, a counting upstream, the sidecar between them, the middleware alone, and the CLI spawned.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { once } from "node:events";
import { findProjectRoot } from "../../src/util/project-root.js";
import { parseVerdict, type OverloadVerdict } from "../../src/api/overload.js";
import {
  OverloadSignal,
  retryAfterSeconds,
  type SignalState,
} from "../../src/shed/overload-signal.js";
import { shedMiddleware } from "../../src/shed/middleware.js";
import { startSidecar, type RunningSidecar } from "../../src/shed/sidecar.js";

const MAIN = path.join(findProjectRoot(), "dist", "src", "shed", "main.js");
const INTERVAL = 100;
/** Poll timeout in these tests: near the interval, so a busy test machine does not time out. */
const POLL_TIMEOUT = 90;
const T = { timeout: 15_000 };

const OK: OverloadVerdict = {
  overloaded: false,
  misses: 0,
  runs: 500,
  window_s: 10,
  retry_after_s: 0,
};
const OVER: OverloadVerdict = {
  overloaded: true,
  misses: 40,
  runs: 500,
  window_s: 10,
  retry_after_s: 2.3,
};

// ---- real servers -------------------------------------------------------------------------------

interface Served {
  readonly url: string;
  readonly port: number;
  /** TCP connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

async function serve(handler: http.RequestListener): Promise<Served> {
  const server = http.createServer(handler);
  let connections = 0;
  server.on("connection", () => connections++);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    connections: () => connections,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** The agent's /overload, answering whatever `reply` holds; it records the queries it gets. */
async function fakeAgent() {
  const state = {
    reply: { status: 200, body: JSON.stringify(OK) as string, delayMs: 0 },
    queries: [] as URLSearchParams[],
  };
  const set = (v: OverloadVerdict) => {
    state.reply = { status: 200, body: JSON.stringify({ ...v, cgroups: ["/x"] }), delayMs: 0 };
  };
  const served = await serve((req, res) => {
    const url = new URL(req.url ?? "/", "http://agent");
    if (url.pathname !== "/overload") {
      res.writeHead(404).end();
      return;
    }
    state.queries.push(url.searchParams);
    const { status, body, delayMs } = state.reply;
    const answer = () => {
      if (res.destroyed) return;
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(body);
    };
    if (delayMs > 0) setTimeout(answer, delayMs).unref();
    else answer();
  });
  set(OK);
  return { ...served, state, set };
}

/** Counts requests; /echo streams the body back; anything else answers what it received. */
async function fakeUpstream() {
  const seen: { method: string; url: string; headers: http.IncomingHttpHeaders }[] = [];
  const served = await serve((req, res) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
    if (req.url === "/echo") {
      res.writeHead(200, { "Content-Type": "application/octet-stream" });
      req.pipe(res);
      return;
    }
    const hash = createHash("sha256");
    let bytes = 0;
    req.on("data", (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
    });
    req.on("end", () => {
      res.writeHead(200, { "Content-Type": "application/json", "X-Upstream": "yes" });
      res.end(JSON.stringify({ url: req.url, bytes, sha256: hash.digest("hex") }));
    });
  });
  return { ...served, seen };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function request(
  url: string,
  opts: { method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer | Buffer[] } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: opts.method ?? "GET",
      headers: opts.headers,
      agent: false,
    });
    req.setTimeout(5000, () => req.destroy(new Error(`no answer from ${url} in 5 s`)));
    req.on("error", reject);
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    const body = opts.body;
    if (Array.isArray(body)) {
      // Streamed in pieces, each after the last one drained: chunked transfer encoding.
      let i = 0;
      const pump = () => {
        while (i < body.length) {
          if (!req.write(body[i++])) {
            req.once("drain", pump);
            return;
          }
        }
        req.end();
      };
      pump();
    } else req.end(body);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean, ms: number): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) assert.fail(`${what}: not within ${ms} ms`);
    await sleep(5);
  }
  return Date.now() - t0;
}

interface Change {
  readonly state: SignalState;
  /** Polls started when the change was seen (the change's own poll included). */
  readonly polls: number;
}

/** A signal that records its state changes with the poll that made each one. */
function trackedSignal(
  agentUrl: string,
  target: { cgroup: string } | { namespace: string; pod: string },
) {
  const changes: Change[] = [];
  const signal: OverloadSignal = new OverloadSignal({
    agentUrl,
    target,
    intervalMs: INTERVAL,
    timeoutMs: POLL_TIMEOUT,
    onChange: (state) => changes.push({ state, polls: signal.stats().polls }),
  });
  return { signal, changes };
}

/**
 * Waits for the signal to reach `state` after the agent's answer changed, and checks that it took
 * at most two polls: "within two poll intervals" counted in polls, so a slow machine that delays
 * the poll timer does not make the test flaky, while a signal that needs more rounds still fails.
 */
async function withinTwoPolls(
  t: { signal: OverloadSignal; changes: Change[] },
  state: SignalState,
) {
  const p0 = t.signal.stats().polls;
  await waitFor(`signal ${state}`, () => t.signal.state === state, 3000);
  const at = t.changes.findLast((c) => c.state === state);
  assert.ok(at !== undefined && at.polls - p0 <= 2, `${state} after ${at && at.polls - p0} polls`);
}

/** Agent + upstream + signal + sidecar, torn down in one call. */
async function rig(shed: { allowPaths?: string[]; fraction?: number } = {}) {
  const agent = await fakeAgent();
  const upstream = await fakeUpstream();
  const tracked = trackedSignal(agent.url, { namespace: "shop", pod: "web-1" });
  const signal = tracked.signal;
  signal.start();
  await signal.ready();
  const sidecar = await startSidecar({
    listen: { host: "127.0.0.1", port: 0 },
    upstream: upstream.url,
    signal,
    shed,
  });
  return {
    agent,
    upstream,
    signal,
    changes: tracked.changes,
    sidecar,
    async close() {
      signal.stop();
      await sidecar.close();
      await agent.close();
      await upstream.close();
    },
  };
}

// ---- the signal ---------------------------------------------------------------------------------

test("verdict parsing: the agent's JSON or a reason it is not one; Retry-After rounding", () => {
  assert.deepEqual(parseVerdict({ ...OVER, cgroups: ["/a"] }), OVER);
  assert.match(parseVerdict(null) as string, /not a JSON object/);
  assert.match(parseVerdict([]) as string, /not a JSON object/);
  assert.match(parseVerdict({ ...OK, overloaded: "yes" }) as string, /overloaded/);
  assert.match(parseVerdict({ ...OK, retry_after_s: -1 }) as string, /retry_after_s/);
  assert.match(parseVerdict({ overloaded: true }) as string, /misses/);
  assert.equal(retryAfterSeconds(2.3), 3);
  assert.equal(retryAfterSeconds(3), 3);
  assert.equal(retryAfterSeconds(0), 1);
  assert.equal(retryAfterSeconds(0.2), 1);
  assert.equal(retryAfterSeconds(NaN), 1);
});

test("Retry-After never exceeds the agent's window, nor the longest window it accepts", () => {
  assert.equal(retryAfterSeconds(1e300, 10), 10);
  assert.equal(retryAfterSeconds(Infinity, 10), 1, "not a number of seconds");
  assert.equal(retryAfterSeconds(9.2, 10), 10);
  assert.equal(retryAfterSeconds(12, 10), 10);
  assert.equal(retryAfterSeconds(4, 0.5), 1);
  assert.equal(retryAfterSeconds(1e300, 1e300), 3600);
  assert.equal(retryAfterSeconds(1e300), 3600);
  assert.equal(retryAfterSeconds(1e300, NaN), 3600);
  assert.equal(retryAfterSeconds(100, 3600), 100);
});

test("an absurd retry_after_s from the agent reaches clients as the window", T, async () => {
  const agent = await fakeAgent();
  const t = trackedSignal(agent.url, { cgroup: "/a" });
  const { signal } = t;
  const shed = shedMiddleware(signal);
  const app = await serve((req, res) => shed(req, res, () => res.end("done")));
  try {
    signal.start();
    agent.set({ ...OVER, retry_after_s: 1e300, window_s: 10 });
    await waitFor("overloaded", () => signal.state === "overloaded", 3000);
    assert.equal(signal.retryAfterS, 10);
    const res = await request(`${app.url}/x`);
    assert.equal(res.status, 429);
    assert.equal(res.headers["retry-after"], "10");
  } finally {
    signal.stop();
    await app.close();
    await agent.close();
  }
});

test("options are checked: the timeout must stay below the interval; http agents only", () => {
  const target = { cgroup: "/a" };
  assert.throws(() => new OverloadSignal({ target, intervalMs: 100, timeoutMs: 100 }), /below/);
  assert.throws(() => new OverloadSignal({ target, intervalMs: 5 }), /intervalMs/);
  assert.throws(() => new OverloadSignal({ target, agentUrl: "https://x:1" }), /http:/);
  assert.throws(() => new OverloadSignal({ target: { cgroup: "rel" } }), /absolute/);
  assert.throws(() => new OverloadSignal({ target: { namespace: "", pod: "p" } }), /non-empty/);
  const s = new OverloadSignal({ target: { namespace: "a b", pod: "p&q" } });
  assert.equal(s.url.href, "http://127.0.0.1:9617/overload?namespace=a+b&pod=p%26q");
  assert.equal(s.timeoutMs, 50);
  assert.equal(s.state, "unknown", "not started: unknown, so nothing is shed");
  assert.equal(s.overloaded, false);
});

test(
  "the signal follows the agent, within two poll intervals, and stop() ends polling",
  T,
  async () => {
    const agent = await fakeAgent();
    const t = trackedSignal(agent.url, { cgroup: "/kubepods.slice/pod-a" });
    const { signal, changes } = t;
    try {
      signal.start();
      await waitFor("first verdict", () => signal.state === "ok", 3000);
      assert.equal(agent.state.queries[0]?.get("cgroup"), "/kubepods.slice/pod-a");
      agent.set(OVER);
      await withinTwoPolls(t, "overloaded");
      assert.deepEqual(signal.verdict, OVER);
      assert.equal(signal.retryAfterS, 3);
      agent.set(OK);
      await withinTwoPolls(t, "ok");
      const failures = signal.stats().pollFailures;
      // A poll over its timeout on a busy machine is a (correct) passing "unknown".
      assert.deepEqual(
        changes.map((c) => c.state).filter((c) => failures === 0 || c !== "unknown"),
        ["ok", "overloaded", "ok"],
      );
      // Keep-alive: the polls share one connection (a timed-out poll costs a new one).
      assert.ok(agent.state.queries.length >= 3);
      assert.ok(agent.connections() <= 1 + failures, `${agent.connections()} connections`);
      signal.stop();
      assert.equal(signal.state, "unknown");
      const n = agent.state.queries.length;
      await sleep(3 * INTERVAL);
      assert.equal(agent.state.queries.length, n, "no poll after stop()");
    } finally {
      signal.stop();
      await agent.close();
    }
  },
);

test("garbage, error statuses and slow answers make the signal unknown, counted", T, async () => {
  const agent = await fakeAgent();
  const signal = new OverloadSignal({
    agentUrl: agent.url,
    target: { cgroup: "/a" },
    intervalMs: 1000,
    timeoutMs: 300,
  });
  try {
    const cases: [number, string, number, RegExp][] = [
      [200, "not json", 0, /not JSON/],
      [200, JSON.stringify({ overloaded: "yes" }), 0, /boolean 'overloaded'/],
      [404, JSON.stringify({ error: "no SLO cgroup /a on this node" }), 0, /404.*no SLO/],
      [200, JSON.stringify(OVER), 600, /within 300 ms/], // past the timeout
    ];
    let failures = 0;
    for (const [status, body, delayMs, why] of cases) {
      agent.state.reply = { status: 200, body: JSON.stringify(OVER), delayMs: 0 };
      await signal.pollOnce();
      assert.equal(signal.state, "overloaded");
      agent.state.reply = { status, body, delayMs };
      await signal.pollOnce();
      failures++;
      assert.equal(signal.state, "unknown", body);
      assert.equal(signal.overloaded, false, "fail-open");
      assert.equal(signal.stats().pollFailures, failures);
      assert.match(signal.stats().lastError ?? "", why);
    }
  } finally {
    signal.stop();
    await agent.close();
  }
});

test(
  "a kept-alive connection the agent drops is retried once, not counted as a failure",
  T,
  async () => {
    // Answers the first request on each connection, and drops the connection on the second.
    const perSocket = new WeakMap<object, number>();
    const agent = await serve((req, res) => {
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      if (n > 1) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify(OVER));
    });
    const signal = new OverloadSignal({
      agentUrl: agent.url,
      target: { cgroup: "/a" },
      timeoutMs: 90,
    });
    try {
      for (let i = 0; i < 3; i++) {
        await signal.pollOnce();
        assert.equal(signal.state, "overloaded", `poll ${i}: ${signal.stats().lastError}`);
      }
      assert.equal(signal.stats().pollFailures, 0);
      assert.equal(agent.connections(), 3);
    } finally {
      signal.stop();
      await agent.close();
    }
  },
);

// ---- the sidecar --------------------------------------------------------------------------------

test("(a) not overloaded: requests pass and reach the upstream", T, async () => {
  const r = await rig();
  try {
    const res = await request(`${r.sidecar.url}/cart?id=7`, {
      headers: { Connection: "x-drop-me", "X-Drop-Me": "1" },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers["x-upstream"], "yes");
    assert.equal(JSON.parse(res.body.toString()).url, "/cart?id=7");
    assert.equal(r.upstream.seen.length, 1);
    const h = r.upstream.seen[0]!.headers;
    assert.equal(h["x-drop-me"], undefined, "a header named in Connection is hop-by-hop");
    assert.equal(h["x-forwarded-for"], "127.0.0.1");
    assert.match(h.host ?? "", /^127\.0\.0\.1:\d+$/);
    const q = r.agent.state.queries[0]!;
    assert.equal(q.get("namespace"), "shop");
    assert.equal(q.get("pod"), "web-1");
    assert.deepEqual(r.sidecar.stats(), {
      shed: 0,
      passed: 1,
      allowListed: 0,
      proxied: 1,
      upstreamErrors: 0,
      clientAborts: 0,
    });
  } finally {
    await r.close();
  }
});

test(
  "(b) overloaded: 429 + Retry-After within two poll intervals, upstream sees nothing",
  T,
  async () => {
    const r = await rig();
    try {
      assert.equal((await request(`${r.sidecar.url}/`)).status, 200);
      const before = r.upstream.seen.length;
      r.agent.set(OVER); // retry_after_s 2.3
      await withinTwoPolls(r, "overloaded");
      for (const [method, body] of [
        ["GET", undefined],
        ["POST", Buffer.alloc(100_000, 1)],
        ["HEAD", undefined],
      ] as const) {
        const res = await request(`${r.sidecar.url}/checkout`, { method, body });
        assert.equal(res.status, 429, method);
        assert.equal(res.headers["retry-after"], "3", method);
        assert.equal(res.body.toString(), method === "HEAD" ? "" : "overloaded, retry after 3 s\n");
      }
      // Expect: 100-continue is answered 429 before the client sends its body.
      const expect = await new Promise<{ status: number; continued: boolean }>(
        (resolve, reject) => {
          const req = http.request(`${r.sidecar.url}/upload`, {
            method: "PUT",
            headers: { Expect: "100-continue", "Content-Length": "5" },
            agent: false,
          });
          let continued = false;
          req.on("continue", () => {
            continued = true;
            req.end("hello");
          });
          req.on("response", (res) => {
            res.resume();
            req.destroy();
            resolve({ status: res.statusCode ?? 0, continued });
          });
          req.on("error", reject);
          req.setTimeout(5000, () => req.destroy(new Error("no answer to Expect in 5 s")));
          req.flushHeaders();
        },
      );
      assert.deepEqual(expect, { status: 429, continued: false });
      assert.equal(r.upstream.seen.length, before, "the upstream saw no shed request");
      assert.equal(r.sidecar.stats().shed, 4);

      r.agent.set({ ...OVER, retry_after_s: 0 });
      await waitFor("retry 0", () => r.signal.verdict?.retry_after_s === 0, 3000);
      assert.equal(
        (await request(`${r.sidecar.url}/`)).headers["retry-after"],
        "1",
        "at least 1 s",
      );

      r.agent.set(OK);
      await withinTwoPolls(r, "ok");
      assert.equal((await request(`${r.sidecar.url}/`)).status, 200);
      assert.equal(r.upstream.seen.length, before + 1);
    } finally {
      await r.close();
    }
  },
);

test("(c) allow-listed paths pass while overloaded", T, async () => {
  const r = await rig({ allowPaths: ["/healthz"] });
  try {
    r.agent.set(OVER);
    await withinTwoPolls(r, "overloaded");
    assert.equal((await request(`${r.sidecar.url}/healthz`)).status, 200);
    assert.equal((await request(`${r.sidecar.url}/healthz?verbose=1`)).status, 200);
    assert.equal((await request(`${r.sidecar.url}/healthz/deep`)).status, 429, "exact paths only");
    assert.equal((await request(`${r.sidecar.url}/`)).status, 429);
    assert.deepEqual(
      r.upstream.seen.map((s) => s.url),
      ["/healthz", "/healthz?verbose=1"],
    );
    const st = r.sidecar.stats();
    assert.equal(st.allowListed, 2);
    assert.equal(st.shed, 2);
  } finally {
    await r.close();
  }
});

test("(d) agent down: fail-open, requests pass, poll failures are counted", T, async () => {
  const r = await rig();
  try {
    r.agent.set(OVER);
    await withinTwoPolls(r, "overloaded");
    assert.equal((await request(`${r.sidecar.url}/`)).status, 429);
    await r.agent.close(); // the agent goes away while the pod is overloaded
    await withinTwoPolls(r, "unknown");
    const res = await request(`${r.sidecar.url}/pay`);
    assert.equal(res.status, 200, "not shed on a broken agent");
    assert.equal(r.upstream.seen.at(-1)?.url, "/pay");
    await waitFor("failures counted", () => r.signal.stats().consecutiveFailures >= 2, 3000);
    const st = r.signal.stats();
    assert.match(st.lastError ?? "", /unreachable/);
    assert.ok(st.pollFailures >= st.consecutiveFailures);
    assert.equal(r.signal.state, "unknown");
  } finally {
    await r.close();
  }
});

test(
  "(d) an agent that was never there: unknown from the start, everything passes",
  T,
  async () => {
    const gone = await serve(() => {});
    await gone.close(); // a port with nothing on it
    const upstream = await fakeUpstream();
    const signal = new OverloadSignal({
      agentUrl: gone.url,
      target: { cgroup: "/a" },
      intervalMs: INTERVAL,
      timeoutMs: POLL_TIMEOUT,
    });
    signal.start();
    await signal.ready();
    const sidecar = await startSidecar({
      listen: { host: "127.0.0.1", port: 0 },
      upstream: upstream.url,
      signal,
    });
    try {
      assert.equal(signal.state, "unknown");
      assert.ok(signal.stats().pollFailures >= 1);
      for (let i = 0; i < 3; i++) assert.equal((await request(`${sidecar.url}/${i}`)).status, 200);
      assert.equal(upstream.seen.length, 3);
    } finally {
      signal.stop();
      await sidecar.close();
      await upstream.close();
    }
  },
);

test("(e) a large POST streams to the upstream intact, and a large answer back", T, async () => {
  const r = await rig();
  try {
    const pieces = Array.from({ length: 128 }, () => randomBytes(64 * 1024)); // 8 MiB, chunked
    const all = Buffer.concat(pieces);
    const sha = createHash("sha256").update(all).digest("hex");
    const res = await request(`${r.sidecar.url}/upload`, { method: "POST", body: pieces });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body.toString()), {
      url: "/upload",
      bytes: all.length,
      sha256: sha,
    });
    assert.equal(r.upstream.seen.at(-1)?.headers["transfer-encoding"], "chunked");
    // With Content-Length, echoed back through the proxy.
    const echo = await request(`${r.sidecar.url}/echo`, {
      method: "POST",
      headers: { "Content-Length": String(all.length) },
      body: all,
    });
    assert.equal(echo.status, 200);
    assert.equal(echo.body.length, all.length);
    assert.ok(echo.body.equals(all), "echoed body differs");
  } finally {
    await r.close();
  }
});

test("an upstream that is down is a 502, not a hang", T, async () => {
  const gone = await serve(() => {});
  await gone.close();
  const signal = { overloaded: false, retryAfterS: 1 };
  let sidecar: RunningSidecar | undefined;
  try {
    sidecar = await startSidecar({
      listen: { host: "127.0.0.1", port: 0 },
      upstream: gone.url,
      signal,
    });
    const res = await request(`${sidecar.url}/x`, { method: "POST", body: Buffer.alloc(1000) });
    assert.equal(res.status, 502);
    assert.equal(sidecar.stats().upstreamErrors, 1);
  } finally {
    await sidecar?.close();
  }
});

test(
  "a silent upstream is a 504; a client that leaves cancels its upstream request",
  T,
  async () => {
    const held: http.ServerResponse[] = [];
    let upstreamClosed = 0;
    const upstream = await serve((req, res) => {
      held.push(res); // never answered
      res.on("close", () => upstreamClosed++);
    });
    const signal = { overloaded: false, retryAfterS: 1 };
    const sidecar = await startSidecar({
      listen: { host: "127.0.0.1", port: 0 },
      upstream: upstream.url,
      signal,
      upstreamTimeoutMs: 200,
    });
    try {
      const res = await request(`${sidecar.url}/slow`);
      assert.equal(res.status, 504);
      // A client that gives up: its upstream request is torn down too.
      const gone = http.get(`${sidecar.url}/slow`, { agent: false });
      gone.on("error", () => {});
      await waitFor("upstream got it", () => held.length === 2, 3000);
      gone.destroy();
      await waitFor("upstream request closed", () => upstreamClosed === 2, 3000);
      await waitFor("abort counted", () => sidecar.stats().clientAborts === 1, 3000);
      assert.equal(sidecar.stats().upstreamErrors, 1);
    } finally {
      await sidecar.close();
      await upstream.close();
    }
  },
);

// ---- the middleware alone -----------------------------------------------------------------------

test("middleware: node:http with next, a deterministic fraction, counters", T, async () => {
  const signal = { overloaded: true, retryAfterS: 4 };
  const shed = shedMiddleware(signal, { fraction: 0.25, allowPaths: [/^\/internal\//] });
  let handled = 0;
  const app = await serve((req, res) =>
    shed(req, res, () => {
      handled++;
      res.end("done");
    }),
  );
  try {
    const codes: number[] = [];
    for (let i = 0; i < 8; i++) codes.push((await request(`${app.url}/`)).status);
    assert.deepEqual(codes, [429, 200, 200, 200, 429, 200, 200, 200], "every 4th, first one shed");
    assert.equal((await request(`${app.url}/internal/x`)).status, 200);
    signal.overloaded = false;
    assert.equal((await request(`${app.url}/`)).status, 200);
    assert.deepEqual({ ...shed.counters }, { shed: 2, passed: 8, allowListed: 1 });
    assert.equal(handled, 8);
  } finally {
    await app.close();
  }
  assert.throws(() => shedMiddleware(signal, { fraction: 1.5 }), /fraction/);
});

// ---- the command line ---------------------------------------------------------------------------

test("(f) bad flags exit 2 with a message naming the flag", T, () => {
  const base = ["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1", "--cgroup", "/a"];
  const cases: [string[], RegExp][] = [
    [[], /--listen is required/],
    [["--upstream", "http://127.0.0.1:1", "--cgroup", "/a"], /--listen is required/],
    [
      ["--listen", "nope", "--upstream", "http://x:1", "--cgroup", "/a"],
      /--listen "nope".*HOST:PORT/,
    ],
    [["--listen", ":8080", "--cgroup", "/a"], /--upstream is required/],
    [["--listen", ":8080", "--upstream", "ftp://x", "--cgroup", "/a"], /--upstream.*http:\/\//],
    [["--listen", ":8080", "--upstream", "http://x:1"], /--namespace NS --pod NAME, or --cgroup/],
    [
      ["--listen", ":8080", "--upstream", "http://x:1", "--namespace", "ns"],
      /--namespace needs --pod/,
    ],
    [
      ["--listen", ":8080", "--upstream", "http://x:1", "--cgroup", "rel"],
      /--cgroup "rel".*absolute/,
    ],
    [[...base, "--pod", "p"], /--cgroup and --namespace\/--pod exclude/],
    [[...base, "--agent", "https://a:1"], /--agent.*http:\/\//],
    [[...base, "--shed-fraction", "2"], /--shed-fraction must be a number from 0 to 1/],
    [
      [...base, "--interval-ms", "100", "--timeout-ms", "100"],
      /--timeout-ms must be an integer from 1 to 99/,
    ],
    [[...base, "--allow", "healthz"], /--allow "healthz".*--allow \/healthz/],
    [[...base, "--bogus"], /--bogus/],
  ];
  for (const [args, re] of cases) {
    const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8", timeout: 10_000 });
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /^scx-slo-shed: /, args.join(" "));
    assert.match(r.stderr, re, args.join(" "));
    assert.match(r.stderr, /usage: scx-slo-shed/);
    assert.equal(r.stdout, "");
  }
  const help = spawnSync(process.execPath, [MAIN, "--help"], { encoding: "utf8", timeout: 10_000 });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--upstream URL/);
});

test("the CLI end to end: forwards, sheds, exits 0 on SIGTERM", T, async () => {
  const agent = await fakeAgent();
  const upstream = await fakeUpstream();
  const child = spawn(
    process.execPath,
    [MAIN, "--listen", "127.0.0.1:0", "--upstream", upstream.url, "--agent", agent.url].concat([
      "--namespace",
      "shop",
      "--pod",
      "web-1",
      "--allow",
      "/healthz",
      "--grace-ms",
      "1000",
    ]),
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exited = once(child, "exit");
  const kill = setTimeout(() => child.kill("SIGKILL"), 12_000);
  try {
    await waitFor("listening line", () => /listening on http:\/\/[\d.]+:\d+/.test(stderr), 8000);
    const url = /listening on (http:\/\/[\d.]+:\d+)/.exec(stderr)![1]!;
    assert.equal((await request(`${url}/a`)).status, 200);
    agent.set(OVER);
    await waitFor("shed line", () => /overloaded: 40 misses/.test(stderr), 2000);
    const res = await request(`${url}/b`);
    assert.equal(res.status, 429);
    assert.equal(res.headers["retry-after"], "3");
    assert.equal((await request(`${url}/healthz`)).status, 200);
    assert.deepEqual(
      upstream.seen.map((s) => s.url),
      ["/a", "/healthz"],
    );
    child.kill("SIGTERM");
    const [code] = await exited;
    assert.equal(code, 0, stderr);
    assert.match(stderr, /stopped: 1 shed, 2 passed \(1 allow-listed\), 2 proxied/);
  } finally {
    clearTimeout(kill);
    if (child.exitCode === null) child.kill("SIGKILL");
    await agent.close();
    await upstream.close();
  }
});
