// The VM harness's shell entry, as an operator runs it: --help and usage errors answer at once,
// without booting anything.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { findProjectRoot } from "../../src/util/project-root.js";

const CLI = path.join(findProjectRoot(), "dist", "vm", "cli.js");

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("vm/cli.js --help prints the usage on stdout and exits 0", () => {
  for (const flag of ["--help", "-h"]) {
    const r = cli(flag);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^usage: node dist\/vm\/cli\.js \[OPTIONS\] -- COMMAND/);
    assert.match(r.out, /--kernel-arg WORD/);
    assert.equal(r.err, "");
  }
});

test("vm/cli.js usage errors exit 2 with one message and the usage, no stack trace", () => {
  for (const [args, message] of [
    [["--bogus", "--", "true"], /Unknown option '--bogus'/],
    [["--cpus", "x", "--", "true"], /--cpus must be an integer from 1 to 64, got "x"/],
    [["--timeout", "0", "--", "true"], /--timeout must be an integer from 1 to 86400, got "0"/],
    [[], /no COMMAND to run/],
  ] as const) {
    const r = cli(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err, new RegExp(`^vm/cli\\.js: ${message.source}`), args.join(" "));
    assert.match(r.err, /\nusage: node dist\/vm\/cli\.js/);
    assert.doesNotMatch(r.err, /^\s+at /m, "no stack trace");
    assert.equal(r.out, "");
  }
});
