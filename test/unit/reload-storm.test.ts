// A storm of SIGHUPs with config rewrites in between, against the agent as an operator runs it
// (`scx-slo run`, here without sched_ext): the reloads are served, and the agent's memory does not
// grow with their number.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { findProjectRoot } from "../../src/util/project-root.js";

const MAIN = path.join(findProjectRoot(), "dist", "src", "cli", "main.js");
const RULES = 50;
const RELOADS = 4000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssMiB(pid: number): number {
  const kib = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  assert.ok(kib !== undefined, "VmRSS");
  return Number(kib) / 1024;
}

test(`${RELOADS} SIGHUP reloads with rewrites: RSS stays within a few MiB`, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "scx-storm-"));
  const cg = path.join(dir, "cgroup");
  for (let i = 0; i < RULES; i++) mkdirSync(path.join(cg, "svc", `c${i}`), { recursive: true });
  const config = path.join(dir, "config");
  const text = (k: number) =>
    Array.from({ length: RULES }, (_, i) => `/svc/c${i} ${1 + ((i + k) % 50)} ${1 + i}`).join(
      "\n",
    ) + "\n";
  // Rewritten in place: a reload may catch the file half-written and reject it, as in the field.
  const rewrite = (k: number) => writeFileSync(config, text(k));
  rewrite(0);
  const logFile = path.join(dir, "agent.log");
  const child = spawn(
    process.execPath,
    [MAIN, "run", "--config", config, "--listen", "127.0.0.1:0", "--cgroup-root", cg].concat([
      "--mode",
      "enforce",
      "--safe-mode-file",
      path.join(dir, "safe-mode"),
    ]),
    { stdio: ["ignore", "ignore", openSync(logFile, "w")] },
  );
  const exited = once(child, "exit");
  const log = () => readFileSync(logFile, "utf8");
  try {
    const end = Date.now() + 10_000;
    while (!/config \S+ loaded \(start\)/.test(log())) {
      assert.ok(Date.now() < end, `agent did not load its config:\n${log()}`);
      await sleep(50);
    }
    await sleep(1000);
    const pid = child.pid!;
    const before = rssMiB(pid);
    let half = 0;
    for (let k = 1; k <= RELOADS; k++) {
      rewrite(k);
      process.kill(pid, "SIGHUP");
      await sleep(2);
      if (k === RELOADS / 2) half = rssMiB(pid);
    }
    await sleep(500);
    const after = rssMiB(pid);
    const reloads = (log().match(/SIGHUP: reloading/g) ?? []).length;
    const applied = (log().match(/ loaded \((SIGHUP|change)\)/g) ?? []).length;
    console.log(
      `# RSS MiB: before ${before.toFixed(1)}, after ${RELOADS / 2} reloads ${half.toFixed(1)}, after ${RELOADS} ${after.toFixed(1)} (${reloads} SIGHUPs served, ${applied} changes applied)`,
    );
    assert.ok(reloads >= RELOADS / 2, `only ${reloads} SIGHUPs served`);
    assert.ok(applied >= RELOADS / 4, `only ${applied} changes applied`);
    // Each reload leaves garbage in V8's old space until its next full collection: RSS rises to
    // a plateau in the first thousands of reloads and stays there; it must not grow with the
    // number of reloads. A read buffer of the size limit (1 MiB) allocated per reload would add
    // its own, lasting growth through the C allocator.
    assert.ok(
      after - half <= 3,
      `RSS grew ${(after - half).toFixed(1)} MiB from ${RELOADS / 2} to ${RELOADS} reloads`,
    );
    assert.ok(
      after - before <= 30,
      `RSS grew ${(after - before).toFixed(1)} MiB over ${RELOADS} reloads`,
    );
  } finally {
    child.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true });
  }
});
