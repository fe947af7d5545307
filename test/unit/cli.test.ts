// The CLI as an operator runs it: spawned, exit codes 0/1/2, messages on the right stream.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import net from "node:net";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { findProjectRoot } from "../../src/util/project-root.js";
import { EXAMPLE_CONFIG_LINE, EXAMPLE_CONFIG_YAML } from "../../src/sources/file/example.js";

const MAIN = path.join(findProjectRoot(), "dist", "src", "cli", "main.js");

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8", timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** cli() without blocking this process (for tests that serve something to the CLI). */
function cliAsync(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, out, err })));
}

function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), "scx-cli-"));
}

test("the built entry point keeps its shebang", () => {
  assert.match(readFileSync(MAIN, "utf8"), /^#!\/usr\/bin\/env node\n/);
});

test("usage errors exit 2 with the usage on stderr", () => {
  for (const args of [
    [],
    ["frobnicate"],
    ["run", "--bogus"],
    ["config"],
    ["config", "check"],
    ["safe-mode", "maybe"],
    ["version", "x"],
    ["run", "--listen", "nope"],
    ["run", "--source", "ldap"],
    ["run", "--default-budget-ms", "0"],
  ]) {
    const r = cli(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err, /^scx-slo: /, args.join(" "));
    assert.match(r.err, /usage: scx-slo/, args.join(" "));
    assert.equal(r.out, "");
  }
});

test("--source kubernetes without a node name is a usage error naming NODE_NAME", () => {
  const r = spawnSync(process.execPath, [MAIN, "run", "--source", "kubernetes"], {
    encoding: "utf8",
    env: { ...process.env, NODE_NAME: "" },
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /NODE_NAME/);
});

test("--source kubernetes outside a pod: without credentials it says where to get them", () => {
  const dir = tmp();
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, NODE_NAME: "n1" };
    delete env.KUBERNETES_SERVICE_HOST;
    delete env.KUBECONFIG;
    const run = (...extra: string[]) =>
      spawnSync(
        process.execPath,
        [MAIN, "run", "--source", "kubernetes", "--listen", "127.0.0.1:0"].concat([
          "--safe-mode-file",
          path.join(dir, "safe-mode"),
          ...extra,
        ]),
        { encoding: "utf8", env, timeout: 30_000 },
      );
    const none = run();
    assert.equal(none.status, 1, none.stderr);
    assert.match(none.stderr, /not running in a Kubernetes pod.*--kubeconfig FILE/);
    const missing = run("--kubeconfig", path.join(dir, "nope"));
    assert.equal(missing.status, 1, missing.stderr);
    assert.match(missing.stderr, /cannot load kubeconfig .*nope/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("help and version exit 0 on stdout", () => {
  assert.equal(cli("--help").code, 0);
  assert.match(cli("--help").out, /config init/);
  assert.match(cli("run", "--help").out, /--default-budget-ms/);
  const v = cli("version");
  assert.equal(v.code, 0);
  assert.match(v.out, /^scx-slo \d+\.\d+\.\d+\n$/);
});

test("config init writes the example, refuses to overwrite without --force", () => {
  const dir = tmp();
  try {
    const file = path.join(dir, "etc", "config");
    const r = cli("config", "init", file);
    assert.equal(r.code, 0, r.err);
    assert.equal(readFileSync(file, "utf8"), EXAMPLE_CONFIG_LINE);
    writeFileSync(file, "/mine 1 1\n");
    const again = cli("config", "init", file);
    assert.equal(again.code, 1);
    assert.match(again.err, /already exists; not overwriting it \(use --force/);
    assert.equal(readFileSync(file, "utf8"), "/mine 1 1\n");
    const forced = cli("config", "init", file, "--force", "--yaml");
    assert.equal(forced.code, 0, forced.err);
    assert.equal(readFileSync(file, "utf8"), EXAMPLE_CONFIG_YAML);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("--create-config is the original tool's alias of config init", () => {
  const dir = tmp();
  try {
    const file = path.join(dir, "config");
    const r = cli("--create-config", "--config", file);
    assert.equal(r.code, 0, r.err);
    assert.equal(readFileSync(file, "utf8"), EXAMPLE_CONFIG_LINE);
    assert.equal(cli("--create-config", file).code, 1);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("config check: 0 for the examples, 1 with formatted errors, 1 for a missing file", () => {
  const dir = tmp();
  try {
    const good = path.join(dir, "good");
    writeFileSync(good, EXAMPLE_CONFIG_YAML);
    const ok = cli("config", "check", good);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /: OK, 3 rules\n$/);
    const bad = path.join(dir, "bad");
    writeFileSync(bad, "/a 10 50\n/b 99999 50\nrelative 1 1\n");
    const r = cli("config", "check", bad);
    assert.equal(r.code, 1);
    assert.match(r.err, new RegExp(`^${bad}:2: budget_ms: .*\\(fix: `, "m"));
    assert.match(r.err, new RegExp(`^${bad}:3: `, "m"));
    assert.match(r.err, /invalid \(2 errors\)/);
    const missing = cli("config", "check", path.join(dir, "nope"));
    assert.equal(missing.code, 1);
    assert.match(missing.err, /no such file/);
    // No SLOs: said explicitly in either format, never by an empty file.
    const empty = path.join(dir, "empty");
    writeFileSync(empty, "# nothing here\n");
    const e = cli("config", "check", empty);
    assert.equal(e.code, 1);
    assert.match(e.err, /the file has no rules .*\(fix: .*`none`.*`slos: \[\]`/);
    for (const text of ["none\n", "version: 1\nslos: []\n"]) {
      writeFileSync(empty, text);
      const n = cli("config", "check", empty);
      assert.equal(n.code, 0, n.err);
      assert.match(n.out, /: OK, no SLOs \(on purpose\)\n$/);
    }
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("safe-mode on/off/status through a flag file", () => {
  const dir = tmp();
  try {
    const flag = path.join(dir, "run", "safe-mode");
    const on = cli("safe-mode", "on", "--safe-mode-file", flag, "--reason", "maintenance");
    assert.equal(on.code, 0, on.err);
    assert.ok(existsSync(flag));
    assert.match(readFileSync(flag, "utf8"), /^cli: turned on by .* at .*: maintenance\n$/);
    assert.match(cli("safe-mode", "status", "--safe-mode-file", flag).out, /safe mode is ON/);
    const off = cli("safe-mode", "off", "--safe-mode-file", flag);
    assert.equal(off.code, 0, off.err);
    assert.ok(!existsSync(flag));
    assert.match(cli("safe-mode", "off", "--safe-mode-file", flag).out, /was not on/);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test("status answers without an agent or a scheduler, in text and JSON", () => {
  const r = cli("status", "--listen", "127.0.0.1:1", "--safe-mode-file", "/nonexistent/flag");
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^scheduler /m);
  assert.match(
    r.out,
    /^agent +no agent is listening at http:\/\/127.0.0.1:1 \(connection refused\)/m,
  );
  const j = cli("status", "--json", "--listen", "127.0.0.1:1");
  assert.equal(j.code, 0, j.err);
  const parsed = JSON.parse(j.out) as { scheduler: { state: string }; agent: unknown };
  assert.equal(typeof parsed.scheduler.state, "string");
  assert.equal(parsed.agent, null);
});

test("status tells an agent that is slow to answer from one that is not there", async () => {
  // Accepts connections and never answers: an agent starved of CPU looks like this.
  const silent = net.createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
  const port = (silent.address() as net.AddressInfo).port;
  try {
    const r = await cliAsync("status", "--listen", `127.0.0.1:${port}`, "--timeout", "0.5");
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.out,
      new RegExp(
        `^agent +the agent at http://127.0.0.1:${port} accepted the connection but did not answer within 0.5 s`,
        "m",
      ),
    );
  } finally {
    silent.close();
  }
});
